"""The dashboard in a real browser: Debian's Chromium headless shell, driven by Playwright (no browser download).

The test setup installs the `chromium-headless-shell` Debian package when it is missing (the whole `chromium` serves
where the shell cannot be installed). Each test saves a screenshot under reports/screenshots/.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests
from ivh_mock.client import Client, ParameterError
from ivh_mock.mock_server.serving.testing import CallbackReceiver, MockServer, debian_command

from .conftest import TEXT_PAYLOAD, TIMING


def expect(*args, **kwargs):
    """Playwright's `expect`. Playwright is imported by the browser fixture, on the one worker these tests run on (its
    modules took half a second to compile in a fresh clone, before any test ran), not by every worker's collection."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(*args, **kwargs)


SCREENSHOTS = Path("reports/screenshots")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update", "--mute-audio"]


def chromium_path() -> str:
    """Debian's headless shell (Chromium's old headless mode, Playwright's own choice for headless runs) renders these
    pages on half the CPU of the whole browser, whose headless mode still runs its own interface; the whole browser
    serves where the shell cannot be had."""
    try:
        found = debian_command("chromium-headless-shell")
    except (OSError, subprocess.SubprocessError):  # apt-get could not install it: no index, no network
        found = None
    found = found or debian_command("chromium")
    if found is None:
        pytest.skip("the dashboard tests need Debian's chromium-headless-shell or chromium; install one with: "
                    "apt-get install chromium-headless-shell")
    return found


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    path = chromium_path()
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def mock():
    with MockServer(TIMING) as server:
        yield server


@pytest.fixture
def page(browser, request):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    page.close()


def client_of(mock, appkey="studio-app"):
    return Client(appkey, "mock-accesstoken", mock.base_url, clock=mock.now)


def text(**extra):
    return {**TEXT_PAYLOAD, "InputSsml": "你好，我是虚拟主播。欢迎来到直播间！", **extra}


def test_rows_move_from_commit_to_success_with_the_dashboards_own_clock(mock, page):
    studio, shop = client_of(mock), client_of(mock, "shop-app")
    ids = [studio.phototovideonotrain(text()).task_id for _ in range(2)]
    shop.phototovideonotrain(text(), scenario="stuck_in_queue")
    with pytest.raises(ParameterError):
        client_of(mock, "shop-app").phototovideonotrain(text(DriverType="Txt"))
    page.goto(mock.base_url + "/")  # redirects to the dashboard
    assert page.url.endswith("/__mock__/ui")
    status = page.locator(f'tr[data-task-id="{ids[0]}"] .status')
    expect(status).to_have_text("COMMIT")
    expect(page.locator(f'tr[data-task-id="{ids[1]}"] .queue')).to_have_text("1 ahead")
    expect(page.locator("#clock-state")).to_have_text("frozen")

    page.fill("#advance-seconds", "1.5")
    page.click("#advance-button")
    expect(status).to_have_text("MAKING")
    page.fill("#advance-seconds", "60")
    page.click("#advance-button")
    expect(status).to_have_text("SUCCESS")
    expect(page.locator(f'tr[data-task-id="{ids[1]}"] .status')).to_have_text("SUCCESS")
    assert mock.now() > 60  # the dashboard moved the mock's own clock


def test_the_task_page_plays_the_video_and_shows_the_callback(mock, page):
    receiver = CallbackReceiver()
    try:
        task_id = client_of(mock).phototovideonotrain(text(CallbackUrl=receiver.url)).task_id
        mock.advance(60)
        receiver.wait_for(1)
        page.goto(f"{mock.base_url}/__mock__/ui")
        page.click(f'tr[data-task-id="{task_id}"] a')
        expect(page.locator("#task-request")).to_contain_text('"InputSsml": "你好，我是虚拟主播。欢迎来到直播间！"')
        expect(page.locator("#task-timeline")).to_contain_text("SUCCESS")
        expect(page.locator("#task-subtitles")).to_contain_text("欢迎来到直播间！")
        expect(page.locator(".callback-status")).to_have_text("HTTP 200")
        # the callback's body (its long URLs, in a <pre> of a table cell) had widened the page to 1,597 px
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        page.wait_for_function("document.getElementById('task-video').readyState >= 2", timeout=10_000)
        duration = page.evaluate("document.getElementById('task-video').duration")
        assert abs(duration - 3.75) < 0.1  # 15 spoken characters at 4 a second
        page.evaluate("const v = document.getElementById('task-video'); v.muted = true; v.play()")
        page.wait_for_function("document.getElementById('task-video').currentTime > 0.3", timeout=10_000)
        assert page.evaluate("document.getElementById('task-video').error") is None
    finally:
        receiver.close()


def test_the_journal_shows_why_a_request_was_rejected(mock, page):
    studio = Client("studio-app", "mock-accesstoken", mock.base_url, clock=mock.now, validate=False)
    with pytest.raises(ParameterError):
        studio.phototovideonotrain(text(InputSsml="hi"))
    page.goto(f"{mock.base_url}/__mock__/ui")
    rejected = page.locator(".journal-row.verdict-rejected").first
    expect(rejected.locator(".code")).to_have_text("100002")
    expect(rejected.locator(".message")).to_contain_text("Payload.InputSsml must be at least 4 characters")


def test_the_journal_shows_what_an_accepted_photo_misses_under_the_cn_profile(page):
    """The cn profile only recommends a photo's sides and aspect: such a photo is accepted, and its note was shown
    nowhere."""
    with MockServer({**TIMING, "profile": "cn"}) as cn:
        photo = cn.sample("photo-4097x2100.jpg")
        client_of(cn).phototovideonotrain({**TEXT_PAYLOAD, "RefPhotoUrl": photo})
        page.goto(f"{cn.base_url}/__mock__/ui")
        accepted = page.locator(".journal-row.verdict-accepted").first
        expect(accepted.locator(".note")).to_contain_text("accepted with a note: Payload.RefPhotoUrl: the photo is "
                                                          "4097x2100 px")


def test_choosing_a_scenario_in_the_dashboard_changes_the_next_task(mock, page):
    studio = client_of(mock)
    studio.phototovideonotrain(text())  # makes the account appear
    page.goto(f"{mock.base_url}/__mock__/ui")
    # the select shows its new value at once; the task below must wait until the mock has taken it
    with page.expect_response(lambda answer: answer.request.method == "PUT") as saved:
        page.select_option('.account[data-appkey="studio-app"] .scenario-select', "content_safety")
    assert saved.value.url.endswith("/__mock__/accounts/studio-app")
    assert saved.value.json()["scenario"] == "content_safety"
    failing = studio.phototovideonotrain(text()).task_id
    page.fill("#advance-seconds", "60")
    page.click("#advance-button")
    expect(page.locator(f'tr[data-task-id="{failing}"] .status')).to_have_text("FAIL")
    assert studio.getprogress(failing).fail_code == 801005


def test_with_a_control_token_the_dashboard_demands_it(page):
    with MockServer({**TIMING, "control_token": "s3cret"}) as guarded:
        task_id = client_of(guarded).phototovideonotrain(text()).task_id
        assert page.goto(f"{guarded.base_url}/__mock__/ui").status == 401
        page.goto(f"{guarded.base_url}/?token=s3cret")
        expect(page.locator(f'tr[data-task-id="{task_id}"] .status')).to_have_text("COMMIT")


def test_a_busy_dashboard(mock, page):
    studio, shop = client_of(mock), client_of(mock, "shop-app")
    studio_ids = [studio.phototovideonotrain(text()).task_id for _ in range(7)]
    shop.phototovideonotrain(text(), scenario="content_safety")
    shop.phototovideonotrain(text(), scenario="slow_render")
    with pytest.raises(ParameterError):
        Client("shop-app", "mock-accesstoken", mock.base_url, clock=mock.now, validate=False).phototovideonotrain(
            text(SpeechParam={"TimbreKey": "female_1", "Speed": 2.0}))
    mock.advance(2.0)
    page.goto(f"{mock.base_url}/__mock__/ui")
    statuses = [page.locator(f'tr[data-task-id="{task_id}"] .status') for task_id in studio_ids]
    for status in statuses[:5]:
        expect(status).to_have_text("MAKING")
    for status in statuses[5:]:
        expect(status).to_have_text("COMMIT")
    expect(page.locator(f'tr[data-task-id="{studio_ids[6]}"] .queue')).to_have_text("1 ahead")
    expect(page.locator(".status-FAIL").first).to_have_text("FAIL")
    expect(page.locator(".journal-row.verdict-rejected .message").first).to_contain_text(
        "Payload.SpeechParam.Speed must be at most 1.5")


SLOW_ACCOUNTS = """
window.accountCalls = [];
const realFetch = window.fetch;
window.fetch = async (url, options) => {
  if (!String(url).includes("/__mock__/accounts?")) return realFetch(url, options);
  const call = { began: performance.now(), ended: null };
  window.accountCalls.push(call);
  await new Promise((resolve) => setTimeout(resolve, 600));  // a store so large its overview takes 0.6 s
  try { return await realFetch(url, options); } finally { call.ended = performance.now(); }
};
"""


def test_a_slow_refresh_is_never_overlapped_and_waits_four_times_its_length(mock, page):
    """The dashboard's refresh waits for the last to end, then four times as long as it took (at least a second): a
    store whose overview takes long costs the mock a fifth of a worker, not every second of it in overlapping polls."""
    page.add_init_script(SLOW_ACCOUNTS)
    page.goto(f"{mock.base_url}/__mock__/ui")
    page.wait_for_function("window.accountCalls.length >= 2", timeout=15_000)
    calls = page.evaluate("window.accountCalls")
    first, second = calls[0], calls[1]
    assert first["ended"] is not None and first["ended"] <= second["began"]
    # the refresh took the 0.6 s of the overview and a little more; the next starts four of those later
    assert second["began"] - first["ended"] >= 4 * (first["ended"] - first["began"]) - 50


def test_the_task_page_shows_each_upload_and_what_the_storage_answered(mock, page):
    from .s3 import S3Server

    with S3Server() as s3:
        bucket = s3.bucket()
        video = s3.put_url(bucket, "v.mp4", "video/mp4")
        refused = s3.put_url(bucket, "v.srt", "application/x-subrip").replace("Signature=", "Signature=0")
        task_id = client_of(mock).phototovideonotrain(
            text(VideoStorageS3Url=video, SubtitleStorageS3Url=refused)).task_id
        mock.advance(60)
    page.goto(f"{mock.base_url}/__mock__/ui#/task/{task_id}")
    expect(page.locator(".upload-state")).to_have_text("failed")
    expect(page.locator(".upload-status").nth(0)).to_contain_text("HTTP 200")
    expect(page.locator(".upload-status").nth(1)).to_contain_text("HTTP 403")
    expect(page.locator("#task-uploads")).to_contain_text(f"{s3.url}/{bucket}/v.srt")
    expect(page.locator("#task-summary")).to_contain_text("FailCode 801015: Payload.SubtitleStorageS3Url")
    assert "X-Amz-Signature" not in page.locator("#task-uploads").inner_text()


def test_the_clock_shows_how_far_it_is_from_real_time_and_returns_to_it(mock, page):
    import time

    page.goto(mock.base_url + "/__mock__/ui")
    expect(page.locator("#clock-state")).to_have_text("frozen")
    page.click("#real-time-button")
    expect(page.locator("#clock-state")).to_have_text("real time")
    page.fill("#advance-seconds", "21065")
    page.click("#advance-button")
    expect(page.locator("#clock-state")).to_have_text("5 h 51 min ahead")
    page.click("#real-time-button")
    expect(page.locator("#clock-state")).to_have_text("real time")
    assert not mock.clock.frozen and abs(mock.now() - time.time()) < 5
    # a contract-suite run holds it: the page says by whom, and a move from it is refused saying so (D89)
    requests.post(f"{mock.base_url}/__mock__/clock", json={"by": "contract-suite-0a1b", "hold": 600}, timeout=10)
    expect(page.locator("#clock-state")).to_have_text("real time, held by contract-suite-0a1b")
    page.click("#advance-button")
    expect(page.locator("#error")).to_contain_text("the clock is held by 'contract-suite-0a1b' for ")
    assert abs(mock.now() - time.time()) < 5


def test_odd_appkeys_long_ones_and_more_tasks_than_listed_keep_the_overview_whole(mock, page):
    """An appkey `constructor` or `__proto__` (the name of an object's own property) blanked the whole overview; a
    long appkey made the page 24,000 px wide; an account whose tasks were all older than the 200 listed said "No
    tasks." beside its counts; the page asked for a favicon the mock does not have (a console error)."""
    from .conftest import in_process
    from .test_lifecycle import submit

    problems = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("response", lambda response: response.status >= 400 and problems.append(response.url))
    odd = {appkey: client_of(mock, appkey).phototovideonotrain(text()).task_id
           for appkey in ("constructor", "__proto__", "toString", "k" * 128)}
    bulk = in_process(mock.app, mock.clock, appkey="bulk")
    for _ in range(201):
        submit(bulk, TEXT_PAYLOAD)
    page.goto(f"{mock.base_url}/__mock__/ui")
    expect(page.locator('.account[data-appkey="bulk"] .tasks-note')).to_have_text(
        "The 200 newest of its 201 tasks, among the 200 newest of all accounts.")
    for appkey in odd:
        expect(page.locator(f'.account[data-appkey="{appkey}"] .tasks-note')).to_have_text(
            "Its 1 task is older than the 200 newest of all accounts, which are listed here.")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    mock.reset("bulk")
    for appkey, task_id in odd.items():
        expect(page.locator(f'tr[data-task-id="{task_id}"] .status')).to_have_text("COMMIT")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert problems == []


def test_the_page_of_a_task_that_is_gone_shows_it_is_gone(mock, page):
    """After "Reset all" the task page said `no task` in its error line and went on showing the task and its video."""
    task_id = client_of(mock).phototovideonotrain(text()).task_id
    mock.advance(60)
    page.goto(f"{mock.base_url}/__mock__/ui#/task/{task_id}")
    expect(page.locator("#task-summary")).to_contain_text("SUCCESS")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#reset-all-button")
    expect(page.locator(".task-gone")).to_contain_text(f"no task '{task_id}'")
    expect(page.locator("#task-summary")).to_have_count(0)
    expect(page.locator("#task-video")).to_have_count(0)


def test_a_right_to_left_override_in_an_appkey_turns_nothing_else_round(mock, page):
    """An appkey holding U+202E (right-to-left override) reversed the rest of the task's summary line as shown
    (`-1% · 000108=edoc:liaf oiranecs · txeT`): the caller's words are each isolated now (<bdi>)."""
    appkey = "\u202eevil\u200b"
    studio = Client(appkey, "mock-accesstoken", mock.base_url, clock=mock.now, validate=False)
    task_id = studio.phototovideonotrain(text()).task_id
    with pytest.raises(ParameterError):
        studio.phototovideonotrain(text(InputSsml="\u202ehi"))
    page.goto(f"{mock.base_url}/__mock__/ui#/task/{task_id}")
    expect(page.locator("#task-summary")).to_contain_text("COMMIT")
    isolated = page.evaluate("[...document.querySelectorAll('#task-summary bdi')].map((node) => node.textContent)")
    assert isolated == [appkey, "success"]
    page.goto(f"{mock.base_url}/__mock__/ui")
    message = page.locator(".journal-row.verdict-rejected .message bdi").first
    expect(message).to_contain_text("Payload.InputSsml must be at least 4 characters")

