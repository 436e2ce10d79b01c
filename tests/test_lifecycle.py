"""Tasks walk COMMIT -> MAKING -> SUCCESS|FAIL on the virtual clock: queueing, progress, duration, retention."""

import copy
import unicodedata

import pytest
import requests
from ivh_mock.mock_server.lifecycle.speech import Rates, speak

from ivh_mock import spec as spec_module

from .conftest import AUDIO_PAYLOAD, TEXT_PAYLOAD, TIMING, serving

CONFIG = {**TIMING, "background": False}
pytestmark = pytest.mark.all_stores
SENTENCE = "你好，我是虚拟主播。"  # 8 Chinese characters: 2.0 s at 4 per second


def text(ssml=SENTENCE, speed=1.0, **extra):
    payload = copy.deepcopy(TEXT_PAYLOAD)
    payload["InputSsml"] = ssml
    payload["SpeechParam"]["Speed"] = speed
    return {**payload, **extra}


def submit(api, payload, scenario=None):
    answer = api.call("phototovideonotrain", payload, **({"scenario": scenario} if scenario else {}))
    assert answer.code == 0, answer.message
    return answer.payload["TaskId"]


def poll(api, task_id):
    answer = api.call("getprogress", {"TaskId": task_id})
    assert answer.code == 0, answer.message
    return answer.payload


def test_a_clock_set_back_before_a_submission_leaves_its_plan_and_a_reset_starts_over(app, api, clock):
    """What D41's limits and the README say: plans are fixed when accepted, so a task submitted on a clock later set
    back waits for its planned start, the account's later tasks queue behind it, and resetting the account frees
    it."""
    now = clock.now()
    clock.set(253_402_300_000)  # near the latest time the clock takes
    ahead = submit(api, text())
    clock.set(now)
    behind = submit(api, text())
    clock.advance(3600)
    assert (poll(api, ahead)["Status"], poll(api, behind)["Status"], poll(api, behind)["ArrayCount"]) == \
        ("COMMIT", "COMMIT", 1)
    assert app.test_client().post("/__mock__/reset", json={"appkey": api.appkey}).status_code == 200
    fresh = submit(api, text())
    clock.advance(60)
    assert poll(api, fresh)["Status"] == "SUCCESS"


def test_seven_tasks_under_concurrency_five_queue_fifo_and_finish(api, clock):
    ids = [submit(api, text()) for _ in range(7)]
    # every task spends the queue time in COMMIT; ArrayCount counts the account's queued tasks ahead of it
    assert [poll(api, i)["Status"] for i in ids] == ["COMMIT"] * 7
    assert [poll(api, i)["ArrayCount"] for i in ids] == [0, 1, 2, 3, 4, 5, 6]

    # render time = 2.0 + 0.25 * 2.0 s = 2.5 s; five start at t+1, two wait for a free slot
    clock.advance(1.0)
    states = [poll(api, i) for i in ids]
    assert [s["Status"] for s in states] == ["MAKING"] * 5 + ["COMMIT"] * 2
    assert [s["ArrayCount"] for s in states] == [0, 0, 0, 0, 0, 0, 1]
    assert all(s["Progress"] == 0 for s in states)

    history = {i: [] for i in ids}
    for _ in range(30):
        clock.advance(0.25)  # a power of two: the steps add up exactly
        for i in ids:
            history[i].append(poll(api, i))
    for i in ids:
        statuses = [s["Status"] for s in history[i]]
        order = ["COMMIT", "MAKING", "SUCCESS"]
        assert [order.index(s) for s in statuses] == sorted(order.index(s) for s in statuses)
        progress = [s["Progress"] for s in history[i]]
        assert progress == sorted(progress), progress
        assert all(0 <= p <= 99 for p, s in zip(progress, statuses, strict=True) if s == "MAKING")
        counts = [s["ArrayCount"] for s in history[i]]
        assert counts == sorted(counts, reverse=True)
        final = history[i][-1]
        assert final["Status"] == "SUCCESS" and final["Progress"] == 100
        assert final["Duration"] == 2000
    # the sixth and seventh started when the first five finished, 2.5 s after they started (step 10)
    assert [s["Status"] for s in history[ids[5]]].index("MAKING") == 9
    assert [s["Status"] for s in history[ids[6]]].index("MAKING") == 9
    assert [s["Status"] for s in history[ids[0]]].index("SUCCESS") == 9


def test_making_progress_rises_steadily_below_100(api, clock):
    task_id = submit(api, text())
    clock.advance(1.0)
    seen = []
    for _ in range(20):
        seen.append(poll(api, task_id)["Progress"])
        clock.advance(0.125)
    assert seen[0] == 0 and max(seen) <= 99 and seen == sorted(seen) and len(set(seen)) > 10
    assert poll(api, task_id)["Progress"] == 100


def test_success_report_has_media_subtitles_and_timestamps(api, clock):
    task_id = submit(api, text("你好。<break time=\"500ms\"/>世界好！"))
    clock.advance(60)
    report = poll(api, task_id)
    assert report["Status"] == "SUCCESS" and report["Progress"] == 100 and report["FailCode"] == 0
    assert report["MediaUrl"].endswith(f"/broadcast/Basic/video/{task_id}.mp4")
    assert report["SubtitlesUrl"].endswith(f"/broadcast/Basic/subtitle/{task_id}.srt")
    sentences = report["TextTimestampResult"]
    assert [s["Sentence"] for s in sentences] == ["你好。", "世界好！"]
    words = [w for s in sentences for w in s["Words"]]
    assert [w["Word"] for w in words] == list("你好世界好")
    # 0.25 s per character (2.5 M ticks), and a 0.5 s break between the sentences
    assert [(w["StartTimestamp"], w["EndTimestamp"]) for w in words[:3]] == [
        (0, 2_500_000), (2_500_000, 5_000_000), (10_000_000, 12_500_000)]
    assert report["Duration"] == words[-1]["EndTimestamp"] // 10_000 == 1750  # 5 x 0.25 s + 0.5 s


def _spoken(ssml: str):
    speech = speak(spec_module.load().ssml_checker.segments(ssml), 1.0, Rates(4.0, 2.5))
    words = [unicodedata.normalize("NFC", w["Word"]) for s in speech.sentences for w in s["Words"]]
    return [s["Sentence"] for s in speech.sentences], words, speech.duration_ms


@pytest.mark.parametrize("ssml, sentences", [
    ('He said "Hi!" then left.', ['He said "Hi!"', "then left."]),  # the quote had opened the next sentence
    ("你好！！世界……", ["你好！！", "世界……"]),  # the second ！ had moved on, the last … been dropped
    ("HELLO WORLD!!!", ["HELLO WORLD!!!"]),
    ("Hello. 🙂🙂", ["Hello. 🙂🙂"]),  # what speaks no word had been dropped
    ('Hi! "Go," he said.', ["Hi!", '"Go," he said.']),  # an opening quote starts the next sentence
    ("他说：“你好！”然后走了。", ["他说：“你好！”", "然后走了。"]),  # a closing quote ends its sentence
    ("你好。“世界”（笑）", ["你好。", "“世界”（笑）"]),  # an opening one, unspaced, starts the next
    ('Hello<break time="1s"/>world', ["Hello world"]),  # two words, not "Helloworld"
    ('你好<break time="1s"/>世界', ["你好世界"]),
])
def test_a_sentence_keeps_its_punctuation_and_no_character_is_lost(ssml, sentences):
    assert _spoken(ssml)[0] == sentences


@pytest.mark.parametrize("text, words", [
    ("café crème brûlée", ["café", "crème", "brûlée"]),
    ("नमस्ते दुनिया", ["नमस्ते", "दुनिया"]),  # vowel signs and the virama are marks, not word breaks
])
def test_a_word_with_combining_marks_is_one_word_however_it_is_encoded(text, words):
    """Decomposed (as some systems paste text) `crème` had been two words, `cre` and `me`, and the speech twice as
    long; Hindi words fell apart at every vowel sign."""
    composed, decomposed = _spoken(unicodedata.normalize("NFC", text)), _spoken(unicodedata.normalize("NFD", text))
    assert composed[1] == decomposed[1] == words
    assert composed[2] == decomposed[2] == len(words) * 400  # 2.5 words a second


def test_audio_task_has_no_subtitles(api, clock):
    task_id = submit(api, AUDIO_PAYLOAD)
    clock.advance(60)
    report = poll(api, task_id)
    assert report["Status"] == "SUCCESS"
    assert report["SubtitlesUrl"] == "" and report["TextTimestampResult"] == []
    assert report["Duration"] == 10_000  # the stand-in until audio files are measured


@pytest.mark.parametrize("ssml, speed, expected_ms", [
    ("你好世界", 1.0, 1000),  # 4 characters at 4 per second
    ("你好世界", 0.5, 2000),  # half speed, twice as long
    ("你好世界", 1.5, 667),
    ("Hello there my friend", 1.0, 1600),  # 4 words at 2.5 per second
    ("你好<break time=\"2s\"/>世界", 1.0, 3000),
    ("你好<break strength=\"strong\"/>世界", 1.0, 1750),
    ("<sub alias=\"语音合成\">TTS</sub>好", 1.0, 1250),  # the alias is spoken, not the content
    ("Hello, 世界!", 1.0, 900),  # one word and two characters
])
def test_duration_follows_the_documented_estimate(api, clock, ssml, speed, expected_ms):
    task_id = submit(api, text(ssml, speed=speed))
    clock.advance(600)
    assert poll(api, task_id)["Duration"] == expected_ms


def test_the_same_text_at_the_same_speed_is_estimated_once_and_kept_as_json_writes_it():
    import json

    from ivh_mock import spec
    from ivh_mock.mock_server.lifecycle import speech
    from ivh_mock.mock_server.lifecycle.speech import Rates, estimate

    contract, rates = spec.load(), Rates(4.0, 2.5)
    payload = text("Hello, 世界! Line\u2028two \"quoted\" 你好", speed=1.0)
    first = estimate(contract, rates, payload)
    assert estimate(contract, rates, copy.deepcopy(payload)) is first
    assert estimate(contract, rates, text(payload["InputSsml"], speed=0.5)).ticks == 2 * first.ticks
    assert first.text == json.dumps(first.sentences, ensure_ascii=False, separators=(",", ":"))
    long = text("好" * (speech.REMEMBERED_CHARACTERS + 1))  # a long text is laid out each time, not kept
    assert estimate(contract, rates, long) == estimate(contract, rates, long)
    assert estimate(contract, rates, long) is not estimate(contract, rates, long)


def test_text_longer_than_60_seconds_fails_with_801009(api, clock):
    task_id = submit(api, text("好" * 245))  # 61.25 s at 4 characters per second
    assert poll(api, task_id)["Status"] == "COMMIT"
    clock.advance(1.0)
    report = poll(api, task_id)
    assert report["Status"] == "FAIL" and report["Progress"] == -1
    assert report["FailCode"] == 801009
    assert "61.2 s; the limit is 60 s" in report["FailMessage"]
    ok = submit(api, text("好" * 240))  # exactly 60 s is allowed
    clock.advance(600)
    assert poll(api, ok)["Status"] == "SUCCESS"


@pytest.mark.parametrize("characters, speed", [(216, 0.9), (228, 0.95), (156, 0.65), (168, 0.7), (180, 0.75),
                                               (288, 1.2)])
def test_a_text_of_exactly_60_seconds_at_any_speed_succeeds_and_lasts_60000_ms(api, clock, characters, speed):
    """Each character's length was rounded to whole ticks and added up: 216 characters at 0.9 (60 s) spoke for
    60.00000001 s and failed, saying "speaks for 60.0 s; the limit is 60 s"; 300 at 1.5 lasted 50001 ms."""
    task_id = submit(api, text("好" * characters, speed=speed))
    clock.advance(600)
    report = poll(api, task_id)
    assert (report["Status"], report["Duration"]) == ("SUCCESS", 60_000), report
    assert report["TextTimestampResult"][-1]["Words"][-1]["EndTimestamp"] == 600_000_000
    fifty = submit(api, text("好" * 300, speed=1.5))
    clock.advance(600)
    assert poll(api, fifty)["Duration"] == 50_000


def test_a_text_a_little_past_60_seconds_is_said_to_be_past_them(api, clock):
    """240 characters at 0.9999 (60.006 s) failed, saying "speaks for 60.0 s; the limit is 60 s"."""
    task_id = submit(api, text("好" * 240, speed=0.9999))
    clock.advance(600)
    assert poll(api, task_id)["FailMessage"] == "InputSsml speaks for 60.01 s; the limit is 60 s"


def test_result_urls_serve_until_retention_ends(app, api, clock):
    task_id = submit(api, text())
    client = app.test_client()
    report = poll(api, task_id)
    video_path = f"/broadcast/Basic/video/{task_id}.mp4"
    assert client.get(video_path).status_code == 404  # not finished yet
    clock.advance(60)
    report = poll(api, task_id)
    assert report["MediaUrl"].endswith(video_path)
    video = client.get(video_path)
    assert video.status_code == 200 and video.mimetype == "video/mp4" and len(video.data) > 1000
    subtitles = client.get(report["SubtitlesUrl"].split("localhost", 1)[1])
    assert subtitles.status_code == 200
    assert subtitles.data.decode() == "1\n00:00:00,000 --> 00:00:02,000\n你好，我是虚拟主播。\n"

    finished = 1.0 + 2.5
    clock.advance(7 * 86400 - 60 + finished - 0.5)  # half a second before the 7 days run out
    assert client.get(video_path).status_code == 200
    clock.advance(1.0)
    expired = client.get(video_path)
    assert expired.status_code == 404 and expired.mimetype == "application/xml"
    assert b"<Code>NoSuchKey</Code>" in expired.data
    assert client.get(f"/broadcast/Basic/subtitle/{task_id}.srt").status_code == 404
    assert poll(api, task_id)["Status"] == "SUCCESS"  # getprogress still reports the task


def test_the_video_is_a_real_mp4_of_the_reported_duration(app, api, clock):
    import io

    import av

    task_id = submit(api, text())
    clock.advance(60)
    data = app.test_client().get(f"/broadcast/Basic/video/{task_id}.mp4").data
    with av.open(io.BytesIO(data)) as container:
        kinds = sorted(stream.type for stream in container.streams)
        seconds = container.duration / 1_000_000
    assert kinds == ["audio", "video"]
    assert abs(seconds - poll(api, task_id)["Duration"] / 1000) <= 0.05


def test_byte_ranges_are_served(app, api, clock):
    task_id = submit(api, text())
    clock.advance(60)
    with serving(app) as served:
        url = f"{served}/broadcast/Basic/video/{task_id}.mp4"
        whole = requests.get(url, timeout=10).content
        part = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=10)
    assert part.status_code == 206 and part.content == whole[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(whole)}"


def test_unknown_media_is_no_such_key(app):
    response = app.test_client().get("/broadcast/Basic/video/" + "0" * 32 + ".mp4")
    assert response.status_code == 404 and b"NoSuchKey" in response.data
    import xml.dom.minidom

    odd = app.test_client().get("/broadcast/Basic/video/%00%1b%EF%BF%BF.mp4")  # no XML 1.0 document holds these
    assert b"<Resource>/broadcast/Basic/video/\\u0000\\u001b\\uffff.mp4</Resource>" in odd.data
    xml.dom.minidom.parseString(odd.data)  # a raw U+0000 made it no XML at all
