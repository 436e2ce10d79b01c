"""Results uploaded to the caller's storage (VideoStorageS3Url, SubtitleStorageS3Url), against a real S3-compatible
server: moto in server mode on 127.0.0.1, its URLs pre-signed by boto3 (tests/s3.py)."""

import io
import socket
import time

import av
import pytest
import requests
from ivh_mock.client import Client, TaskFailedError
from ivh_mock.mock_server import MockServer, VirtualClock, create_app
from ivh_mock.mock_server.serving.testing import CallbackReceiver, in_process_session
from ivh_mock.spec.signing import signed_query

from .conftest import AUDIO_PAYLOAD, T0, TIMING, RawServer, Redirector, close_waits, locked_at_first
from .test_lifecycle import text

FRAME_MS = 40  # the video's time base is 25 frames a second
SENTENCE_SRT = "1\n00:00:00,000 --> 00:00:02,000\n你好，我是虚拟主播。\n"


@pytest.fixture(scope="module")
def s3():
    from .s3 import S3Server  # moto and boto3: imported by the one worker these tests run on, not by every worker

    with S3Server() as server:
        yield server


@pytest.fixture
def mock():
    with MockServer(TIMING, clock=VirtualClock(start=T0)) as server:
        yield server


@pytest.fixture
def client(mock, request):
    return Client(request.node.name[:40].replace("[", "-").replace("]", ""), "mock-accesstoken", mock.base_url,
                  clock=mock.now, sleep=mock.advance, monotonic=mock.now)


def video_seconds(data: bytes) -> tuple[str, float]:
    with av.open(io.BytesIO(data)) as container:
        return container.streams.video[0].codec_context.name, container.duration / 1_000_000


def test_a_text_task_uploads_its_video_and_subtitles_then_succeeds(s3, mock, client):
    bucket = s3.bucket()
    receiver = CallbackReceiver()
    try:
        task = client.phototovideonotrain(
            **text(CallbackUrl=receiver.url, VideoStorageS3Url=s3.put_url(bucket, "out/video.mp4", "video/mp4"),
                   SubtitleStorageS3Url=s3.put_url(bucket, "out/video.srt", "application/x-subrip")))
        result = client.wait(task.task_id)
        assert result.succeeded and result.duration_ms == 2000
        video, video_type = s3.get(bucket, "out/video.mp4")
        codec, seconds = video_seconds(video)
        assert (video_type, codec) == ("video/mp4", "h264") and abs(seconds * 1000 - result.duration_ms) <= FRAME_MS
        assert video == requests.get(result.media_url, timeout=10).content  # the same file the mock serves
        subtitles, subtitles_type = s3.get(bucket, "out/video.srt")
        assert subtitles_type == "application/x-subrip" and subtitles.decode() == SENTENCE_SRT
        [callback] = receiver.wait_for(1)
        assert callback["body"]["Payload"]["Status"] == "SUCCESS"
    finally:
        receiver.close()
    record = mock.task(task.task_id)
    assert record["uploads"]["state"] == "done"
    assert [(f["field"], f["status"], f["content_type"]) for f in record["uploads"]["files"]] == [
        ("VideoStorageS3Url", 200, "video/mp4"), ("SubtitleStorageS3Url", 200, "application/x-subrip")]
    assert record["uploads"]["files"][0]["url"] == f"{s3.url}/{bucket}/out/video.mp4"  # the query is a secret
    assert "X-Amz-Signature" not in str(record["uploads"])
    assert [step["Status"] for step in record["timeline"]] == ["COMMIT", "MAKING", "SUCCESS"]
    # once per task: moving on uploads nothing more
    mock.advance(3600)
    assert s3.puts("out/video.mp4") == [200] and s3.puts("out/video.srt") == [200]


def test_the_task_stays_making_until_its_upload_is_done(s3, mock, client):
    bucket = s3.bucket()
    task = client.phototovideonotrain(**text(VideoStorageS3Url=s3.put_url(bucket, "slow.mp4", "video/mp4")))
    s3.check.delay = 1.5  # the storage takes its time to answer
    try:
        mock.clock.advance(60)  # past the render, without waiting for the upload as MockServer.advance would
        mock.app.extensions["ivh_mock_dispatcher"].wake()
        time.sleep(0.5)
        report = client.getprogress(task.task_id)
        assert (report.status, report.progress, report.media_url) == ("MAKING", 99, "")
        assert mock.task(task.task_id)["uploads"]["state"] == "pending"
        assert requests.get(f"{mock.base_url}/broadcast/Basic/video/{task.task_id}.mp4", timeout=10).status_code == 404
    finally:
        assert mock.app.extensions["ivh_mock_dispatcher"].settle(10)
        s3.check.delay = 0.0
    assert client.getprogress(task.task_id).status == "SUCCESS"


@pytest.mark.parametrize("case, answer", [
    ("wrongly signed", "answered HTTP 403 SignatureDoesNotMatch: The request signature we calculated"),
    ("signed for another Content-Type", "answered HTTP 403 SignatureDoesNotMatch"),
    ("expired", "answered HTTP 403 AccessDenied: Request has expired"),
    ("for a bucket that does not exist", "answered HTTP 404 NoSuchBucket: The specified bucket does not exist"),
])
def test_a_refused_upload_fails_the_task_with_801015_naming_the_url_and_its_answer(s3, mock, client, case, answer):
    bucket = s3.bucket()
    url = {"wrongly signed": lambda: s3.put_url(bucket, "v.mp4", "video/mp4").replace("Signature=", "Signature=0"),
           "signed for another Content-Type": lambda: s3.put_url(bucket, "v.mp4", "image/png"),
           "expired": lambda: s3.put_url(bucket, "v.mp4", "video/mp4", expires=1),
           "for a bucket that does not exist": lambda: s3.put_url("no-such-bucket", "v.mp4", "video/mp4")}[case]()
    if case == "expired":
        time.sleep(2.1)  # S3 counts expiry in real time
    receiver = CallbackReceiver()
    try:
        task = client.phototovideonotrain(**text(VideoStorageS3Url=url, CallbackUrl=receiver.url))
        with pytest.raises(TaskFailedError) as failure:
            client.wait(task.task_id)
        assert failure.value.fail_code == 801015
        assert failure.value.fail_message.startswith(f"Payload.VideoStorageS3Url ({url.split('?')[0]}) {answer}")
        report = client.getprogress(task.task_id)
        assert (report.status, report.progress, report.media_url, report.subtitles_url) == ("FAIL", -1, "", "")
        assert receiver.wait_for(1)[0]["body"]["Payload"]["Status"] == "FAIL"
    finally:
        receiver.close()
    with pytest.raises(Exception):  # nothing was stored
        s3.get(bucket, "v.mp4")
    record = mock.task(task.task_id)
    assert record["uploads"]["state"] == "failed" and record["status"] == "FAIL"
    assert [step["Status"] for step in record["timeline"]] == ["COMMIT", "MAKING", "FAIL"]


def test_an_unreachable_storage_fails_the_task_and_a_good_file_beside_it_is_still_named(s3, mock, client):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/bucket/v.srt?X-Amz-Signature=secret"
    bucket = s3.bucket()
    task = client.phototovideonotrain(**text(VideoStorageS3Url=s3.put_url(bucket, "v.mp4", "video/mp4"),
                                             SubtitleStorageS3Url=dead))
    with pytest.raises(TaskFailedError) as failure:
        client.wait(task.task_id)
    assert failure.value.fail_message == (f"Payload.SubtitleStorageS3Url ({dead.split('?')[0]}) could not be "
                                          "reached (ConnectionError)")
    files = mock.task(task.task_id)["uploads"]["files"]
    assert [(f["field"], f["status"]) for f in files] == [("VideoStorageS3Url", 200), ("SubtitleStorageS3Url", None)]
    account = requests.get(f"{mock.base_url}/__mock__/accounts/{client.appkey}", timeout=10).json()
    assert account["balance_left_seconds"] == 360_000 - 2.0  # the video was made: its seconds stay used (D52)
    assert account["tasks"] == {"COMMIT": 0, "MAKING": 0, "SUCCESS": 0, "FAIL": 1}  # failed by its upload, not plan


def test_an_upload_leaves_no_connection_its_storage_host_closed(mock, client):
    """Kept alive in the uploader's pool, a connection the storage host then closed stayed in CLOSE_WAIT until its
    host's pool was pushed out, as a callback's did."""
    with RawServer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") as storage:
        task = client.phototovideonotrain(**text(VideoStorageS3Url=f"{storage.url}/bucket/v.mp4?X-Amz-Signature=s",
                                                 SubtitleStorageS3Url=f"{storage.url}/bucket/v.srt?X-Amz-Signature=s"))
        assert client.wait(task.task_id).status == "SUCCESS" and storage.requests == 2
        time.sleep(0.3)  # the host closed its end as it answered
        assert close_waits({int(storage.url.rsplit(":", 1)[1])}) == 0


def test_an_audio_task_uploads_its_video_only(s3, mock, client):
    bucket = s3.bucket()
    task = client.phototovideonotrain(**AUDIO_PAYLOAD, VideoStorageS3Url=s3.put_url(bucket, "a.mp4", "video/mp4"),
                                      SubtitleStorageS3Url=s3.put_url(bucket, "a.srt", "application/x-subrip"))
    result = client.wait(task.task_id)
    assert result.succeeded and not result.subtitles_url
    assert abs(video_seconds(s3.get(bucket, "a.mp4")[0])[1] * 1000 - result.duration_ms) <= FRAME_MS
    assert s3.puts("a.srt") == []
    assert [f["field"] for f in mock.task(task.task_id)["uploads"]["files"]] == ["VideoStorageS3Url"]


def test_a_task_planned_to_fail_uploads_nothing(s3, mock, client):
    bucket = s3.bucket()
    task = client.phototovideonotrain(**text(VideoStorageS3Url=s3.put_url(bucket, "f.mp4", "video/mp4")),
                                      scenario="content_safety")
    with pytest.raises(TaskFailedError) as failure:
        client.wait(task.task_id)
    assert failure.value.fail_code == 801005 and s3.puts("f.mp4") == []
    assert mock.task(task.task_id)["uploads"] is None


@pytest.mark.parametrize("url, named", [
    ("ftp://example.com/v.mp4", "Payload.VideoStorageS3Url must be an http or https URL"),
    ("", "Payload.VideoStorageS3Url"),
])
def test_a_storage_url_is_validated_like_the_other_urls(mock, client, url, named):
    answer = requests.post(f"{mock.base_url}/v2/ivh/videomaker/broadcastservice/phototovideonotrain?"
                           f"{client_query(client)}", json={"Header": {}, "Payload": text(VideoStorageS3Url=url)},
                           timeout=10).json()["Header"]
    assert answer["Code"] == 100002 and named in answer["Message"]


def client_query(client):
    return signed_query(client.appkey, client.accesstoken, int(client.clock()))


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/k.mp4", "http:///k.mp4"])
def test_an_upload_url_whose_host_cannot_be_parsed_is_not_blamed_on_a_redirect(url):
    """Such a URL passes the spec's pattern; its failure said "a redirect led to" one, though none had."""
    from ivh_mock.mock_server.lifecycle.uploads import Uploader
    from ivh_mock.mock_server.media_in.fetch import Limits

    uploader = Uploader(None, Limits(connect_timeout=1.0, total_timeout=5.0, redirects=3), workers=1)
    try:
        outcome = uploader.put(url, b"\0" * 100, "video/mp4")
    finally:
        uploader.stop()
    assert outcome["status"] is None and outcome["error"] == "the upload went to a URL whose host cannot be parsed"


def test_uploads_follow_redirects_as_downloads_do_and_no_more_of_them(s3, mock, client):
    bucket = s3.bucket()
    one = Redirector(s3.put_url(bucket, "r.mp4", "video/mp4"))
    chain = [Redirector(one.url)]
    for _ in range(3):  # four hops in all: one more than downloads may take
        chain.append(Redirector(chain[-1].url))
    try:
        result = client.wait(client.phototovideonotrain(**text(VideoStorageS3Url=one.url)).task_id)
        assert result.succeeded and s3.puts("r.mp4") == [200]
        too_far = client.phototovideonotrain(**text(VideoStorageS3Url=chain[-1].url))
        with pytest.raises(TaskFailedError) as failure:
            client.wait(too_far.task_id)
        assert failure.value.fail_message == f"Payload.VideoStorageS3Url ({chain[-1].url}) more than 3 redirects"
        assert s3.puts("r.mp4") == [200]
    finally:
        for hop in [one, *chain]:
            hop.close()


def test_two_workers_sharing_a_store_upload_once(s3, tmp_path):
    clock = VirtualClock(start=T0)
    config = {**TIMING, "store": f"sqlite:{tmp_path / 'shared.sqlite3'}", "data_dir": str(tmp_path / "data")}
    workers = [create_app(config, clock=clock) for _ in range(2)]
    try:
        bucket = s3.bucket()
        api = Client("two-workers", "mock-accesstoken", "http://ivh-mock.local",
                     session=in_process_session(workers[0], "http://ivh-mock.local"), clock=clock.now)
        task = api.phototovideonotrain(**text(VideoStorageS3Url=s3.put_url(bucket, "w.mp4", "video/mp4")))
        clock.advance(60)
        dispatchers = [app.extensions["ivh_mock_dispatcher"] for app in workers]
        for dispatcher in dispatchers:
            dispatcher.wake()
        assert all(dispatcher.settle(15) for dispatcher in dispatchers)
        time.sleep(0.3)  # a second upload, were there one, would have started by now
        assert s3.puts("w.mp4") == [200]
        assert api.getprogress(task.task_id).status == "SUCCESS"
    finally:
        for app in workers:
            app.extensions["ivh_mock_dispatcher"].stop()


@pytest.mark.parametrize("path", ["/headers", "/body"])
def test_an_upload_to_a_trickling_host_ends_at_the_limit_in_all(trickler, path):
    """A storage host that answers a byte every 0.2 s held an upload's thread for as long as it liked: the limit
    bounded each read, not the exchange (so a claim's lease could lapse while the upload still ran)."""
    from ivh_mock.mock_server.lifecycle.uploads import Uploader
    from ivh_mock.mock_server.media_in.fetch import Limits

    uploader = Uploader(None, Limits(connect_timeout=1.0, total_timeout=0.6, redirects=3), workers=1)
    started = time.monotonic()
    outcome = uploader.put(trickler + path, b"\0" * 1000, "video/mp4")
    assert outcome["status"] is None and outcome["error"] == "took longer than the upload limit of 0.6 s"
    assert time.monotonic() - started < 3.0  # the trickle would last 20 s
    uploader.stop()


@pytest.mark.parametrize("location", ["http://[/x.mp4", "http://[abc]/x.mp4", "http://a:b@[/x",
                                      "http://" + "a" * 300 + ".com/x"])
def test_a_redirect_to_an_unparsable_host_ends_the_upload_with_a_clear_error(location):
    """Such a Location ended the upload with a generic failure ("could not be produced (ValueError)")."""
    from ivh_mock.mock_server.lifecycle.uploads import Uploader
    from ivh_mock.mock_server.media_in.fetch import Limits

    redirector = Redirector(location)
    uploader = Uploader(None, Limits(connect_timeout=1.0, total_timeout=5.0, redirects=3), workers=1)
    try:
        outcome = uploader.put(redirector.url, b"\0" * 100, "video/mp4")
    finally:
        uploader.stop()
        redirector.close()
    assert outcome["status"] is None and outcome["error"] == "a redirect led to a URL whose host cannot be parsed"


def test_an_upload_waits_for_its_render_whatever_the_requests_wait_on(s3):
    """The uploader waited for the render in one of the request threads' wait slots (downloads, first downloads of
    videos): with them all taken, by other clients' slow photo hosts or by viewers, the task failed for good with
    801015 "the file could not be produced (TimeoutError)", its storage never asked."""
    from ivh_mock.mock_server.deadline import Waits, holding

    with MockServer({**TIMING, "slow_waits": 1}, clock=VirtualClock(start=T0)) as mock:
        client = Client("slots-taken", "mock-accesstoken", mock.base_url, clock=mock.now, sleep=mock.advance,
                        monotonic=mock.now)
        bucket = s3.bucket()
        task = client.phototovideonotrain(**text(VideoStorageS3Url=s3.put_url(bucket, "out/v.mp4", "video/mp4")))
        waits = mock.ctx.renderer._waits
        assert isinstance(waits, Waits) and waits.limit == 1
        with holding(waits, lambda limit: AssertionError("the slot should be free")):  # a request holds the only one
            result = client.wait(task.task_id)
        assert result.succeeded, (result.fail_code, result.fail_message)
        assert video_seconds(s3.get(bucket, "out/v.mp4")[0])[0] == "h264"


def test_a_storage_host_that_hangs_holds_its_share_and_each_upload_is_sent_once(s3):
    """A storage host that accepts and never answers held all the upload threads, and every due upload was
    claimed and queued behind them: a healthy host's upload (and so its task's end and callback) waited minutes, and
    claims whose lease ran out in the queue were claimed and PUT again."""
    from .conftest import RawServer

    with RawServer(b"", hang=True) as hanging, MockServer({**TIMING, "fetch_total_timeout_seconds": 2.0},
                                                         clock=VirtualClock(start=T0)) as mock:
        client = Client("hangs", "mock-accesstoken", mock.base_url, clock=mock.now, sleep=mock.advance,
                        monotonic=mock.now)
        for n in range(8):  # one video for all: rendered once
            client.phototovideonotrain(**text(VideoStorageS3Url=f"{hanging.url}/v{n}.mp4"))
        bucket = s3.bucket()
        healthy = client.phototovideonotrain(**text(VideoStorageS3Url=s3.put_url(bucket, "ok.mp4", "video/mp4")))
        mock.clock.advance(600)
        mock.app.extensions["ivh_mock_dispatcher"].wake()
        started = time.monotonic()
        while mock.task(healthy.task_id)["status"] != "SUCCESS" and time.monotonic() - started < 10:
            time.sleep(0.05)
        assert time.monotonic() - started < 1.8, "the healthy host's upload waited behind the hanging ones"
        while hanging.requests < 2 and time.monotonic() - started < 1.8:
            time.sleep(0.05)
        time.sleep(0.1)  # more PUTs would have arrived by now, each on a thread of its own
        assert hanging.requests == 2  # the hanging host holds two threads (a quarter of 8), not all of them


def _advance(mock) -> tuple[float, dict]:
    """Move the mock's clock through the control API: the seconds the move took and its answer."""
    started = time.monotonic()
    answer = requests.post(f"{mock.base_url}/__mock__/clock", json={"advance": 600}, timeout=60).json()
    return time.monotonic() - started, answer


def test_a_clock_move_waits_for_due_uploads_a_few_seconds_at_most_and_says_how_many_are_left(s3, monkeypatch):
    """A move waited for the uploads it made due up to the lease of one (95 s), so a storage host that hangs held
    it, and its request's thread, that long; a healthy host's are still done before it answers."""
    from ivh_mock.mock_server.routes import control

    from .conftest import RawServer

    with RawServer(b"", hang=True) as hanging, MockServer({**TIMING, "fetch_total_timeout_seconds": 2.0},
                                                         clock=VirtualClock(start=T0)) as mock:
        client = Client("settles", "mock-accesstoken", mock.base_url, clock=mock.now, sleep=mock.advance,
                        monotonic=mock.now)
        bucket = s3.bucket()
        healthy = client.phototovideonotrain(**text(VideoStorageS3Url=s3.put_url(bucket, "ok.mp4", "video/mp4")))
        took, answer = _advance(mock)  # the render and the PUT take a second or more on a busy machine: the default
        assert answer["uploads_pending"] == 0 and client.getprogress(healthy.task_id).status == "SUCCESS"
        monkeypatch.setattr(control, "SETTLE_SECONDS", 0.3)  # (0.3 s had failed it under a loaded `make test`)
        stuck = client.phototovideonotrain(**text(VideoStorageS3Url=f"{hanging.url}/v.mp4"))
        took, answer = _advance(mock)
        assert took < 1.5 and answer["uploads_pending"] == 1  # the PUT alone may take 2 s
        assert client.getprogress(stuck.task_id).status == "MAKING" and answer["frozen"] is True


def test_a_clock_move_with_every_wait_slot_taken_does_not_wait(monkeypatch):
    """Moves while a storage host hangs each held a thread: nine of them held every thread of a served worker for
    30 s, and a getprogress waited behind them. A move's wait takes a slot of the requests that wait on something
    slow, which leave two threads free; with none free it answers at once."""
    from ivh_mock.mock_server.routes import control

    from .conftest import RawServer

    monkeypatch.setattr(control, "SETTLE_SECONDS", 30.0)
    real_holding = control.deadline.holding
    settings = {**TIMING, "slow_waits": 1, "fetch_total_timeout_seconds": 2.0}
    with RawServer(b"", hang=True) as hanging, MockServer(settings, clock=VirtualClock(start=T0)) as mock:
        client = Client("no-slot", "mock-accesstoken", mock.base_url, clock=mock.now, sleep=mock.advance,
                        monotonic=mock.now)
        held = []
        monkeypatch.setattr(control.deadline, "holding", lambda *args: held.append(1) or real_holding(*args))
        assert _advance(mock)[1]["uploads_pending"] == 0 and not held  # nothing due: no slot taken, no wait said
        client.phototovideonotrain(**text(VideoStorageS3Url=f"{hanging.url}/v.mp4"))
        assert mock.ctx.waits.acquire(blocking=False)  # another request waits on a slow host meanwhile
        try:
            took, answer = _advance(mock)
        finally:
            mock.ctx.waits.release()
        assert took < 3 and answer["uploads_pending"] == 1 and held == [1]


def test_an_upload_the_store_could_not_record_at_once_is_recorded_once_it_can_and_not_made_again(
        s3, mock, client, monkeypatch):
    """As for callbacks: an upload whose record failed (the store out for a moment) was PUT again once its claim's
    lease lapsed. Its record is tried again while the lease holds."""
    failures = locked_at_first(monkeypatch, mock.app.extensions["ivh_mock"].store, "record_upload", 2)
    bucket = s3.bucket()
    task = client.phototovideonotrain(**text(VideoStorageS3Url=s3.put_url(bucket, "again.mp4", "video/mp4")))
    assert client.wait(task.task_id).succeeded and failures == [task.task_id] * 2
    mock.advance(3600)
    assert s3.puts("again.mp4") == [200]


def test_a_clock_moved_past_retention_keeps_the_files_of_tasks_whose_uploads_are_still_to_be_made(s3, mock, client,
                                                                                                  monkeypatch):
    """An app's expiry test moves the clock a week on at once: the files of tasks past their retention went, also
    those of tasks whose uploads were still to be made, whose render then failed them 801015 "the file could not be
    produced (FileNotFoundError)", a traceback in the log. Their files are kept until their uploads are recorded."""
    from ivh_mock.mock_server.routes import control

    monkeypatch.setattr(control, "SETTLE_SECONDS", 0.0)  # the move answers at once, its uploads still to be made
    bucket = s3.bucket()
    tasks = [client.phototovideonotrain(**text(InputSsml=f"{n} 你好，我是虚拟主播。",
                                               VideoStorageS3Url=s3.put_url(bucket, f"week/{n}.mp4", "video/mp4")))
             for n in range(3)]
    moved = requests.post(f"{mock.base_url}/__mock__/clock", json={"advance": 8 * 86_400}, timeout=30).json()
    assert moved["uploads_pending"] >= 1  # else nothing here was swept before its upload
    for task in tasks:
        result = client.wait(task.task_id)
        assert result.succeeded, result
    assert [s3.puts(f"week/{n}.mp4") for n in range(3)] == [[200]] * 3
