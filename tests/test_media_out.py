"""Media out: the rendered MP4 (photo at 720P, the voice track, the task's Duration), the SRT, Range requests,
rendering in the background and once per input, and deletion when retention ends."""

from __future__ import annotations

import hashlib
import io
import math
import re
import time
from array import array

import av
import pytest
from werkzeug.http import http_date
from ivh_mock.mock_server import VirtualClock, create_app
from ivh_mock.mock_server.lifecycle import callbacks
from ivh_mock.mock_server.media_out import render, results
from ivh_mock.mock_server.routes import results as media
from ivh_mock.mock_server.media_in.samples import portrait

from .conftest import AUDIO_PAYLOAD, SAMPLES, TEXT_PAYLOAD, TIMING, in_process
from .test_media_in import upload

FRAME_MS = 1000 / render.FPS
RETENTION = 7 * 24 * 3600
SSML = 'Hello there. <break time="1500ms"/>Good morning to you.'


def finished(api, clock, payload):
    answer = api.call("phototovideonotrain", payload)
    assert answer.code == 0, answer.message
    clock.advance(600)
    report = api.call("getprogress", {"TaskId": answer.payload["TaskId"]}).payload
    assert report["Status"] == "SUCCESS", report
    return answer.payload["TaskId"], report


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def rms(samples: list[float]) -> float:
    return math.sqrt(sum(value * value for value in samples) / max(1, len(samples)))


def decoded(data: bytes):
    """Return (video streams info, container seconds, mono audio samples as floats, sample rate)."""
    with av.open(io.BytesIO(data)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        info = (video.codec_context.name, video.width, video.height, audio.codec_context.name)
        seconds = container.duration / 1_000_000
        samples: list[float] = []
        for frame in container.decode(audio=0):
            samples.extend(array("f", bytes(frame.planes[0]))[: frame.samples])
        return info, seconds, samples, audio.sample_rate


def test_a_text_task_renders_the_photo_at_720p_with_a_voice_where_the_words_are(app, api, clock):
    photo = upload(app, portrait(1080, 1600), "me.jpg")
    task_id, report = finished(api, clock, {**TEXT_PAYLOAD, "RefPhotoUrl": photo, "InputSsml": SSML})
    response = app.test_client().get(path_of(report["MediaUrl"]))
    assert response.status_code == 200 and response.mimetype == "video/mp4"
    assert int(response.headers["Content-Length"]) == len(response.data)
    (video_codec, width, height, audio_codec), seconds, samples, rate = decoded(response.data)
    assert (video_codec, audio_codec) == ("h264", "aac")
    assert (width, height) == (800, 1184)  # what the live service made of a portrait photo at 720P
    assert abs(seconds * 1000 - report["Duration"]) <= FRAME_MS

    words = [word for sentence in report["TextTimestampResult"] for word in sentence["Words"]]
    for word in words:  # every word is voiced in the middle of its time
        middle = (word["StartTimestamp"] + word["EndTimestamp"]) // 2 / 10_000_000
        window = samples[int((middle - 0.05) * rate):int((middle + 0.05) * rate)]
        assert rms(window) > 0.05, word
    pause_start = words[1]["EndTimestamp"] / 10_000_000  # the 1.5 s break after "Hello there."
    assert rms(samples[int((pause_start + 0.2) * rate):int((pause_start + 1.2) * rate)]) < 0.005


def test_an_audio_task_lasts_as_long_as_its_audio_and_carries_it(app, api, clock):
    task_id, report = finished(api, clock, {**AUDIO_PAYLOAD, "InputAudioUrl": SAMPLES + "audio-5s.wav"})
    assert report["Duration"] == 5000 and report["SubtitlesUrl"] == ""
    (_, width, height, _), seconds, samples, rate = decoded(app.test_client().get(path_of(report["MediaUrl"])).data)
    assert (width, height) == render.output_size(720, 960)
    assert abs(seconds - 5.0) <= FRAME_MS / 1000
    assert rms(samples[: rate]) > 0.05  # the sample's babble, not silence


def _tone(rate: int, layout: str = "mono", seconds: float = 3.0) -> bytes:
    """An MP3 of a 440 Hz tone at `rate` in `layout`: bare frames (no ID3 tag, no Xing header), as files are joined."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp3", options={"id3v2_version": "0", "write_xing": "0"}) as container:
        stream = container.add_stream("libmp3lame", rate=rate)
        stream.layout = layout
        channels, size = (2 if layout == "stereo" else 1), 1152
        for block in range(int(seconds * rate) // size):
            frame = av.AudioFrame(format="s16", layout=layout, samples=size)
            frame.planes[0].update(array("h", [int(9000 * math.sin(2 * math.pi * 440 * (block * size + n) / rate))
                                               for n in range(size) for _ in range(channels)]).tobytes())
            frame.sample_rate, frame.pts = rate, block * size
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


@pytest.mark.parametrize("second", [(22050, "mono"), (44100, "stereo")], ids=["rate", "layout"])
def test_audio_that_changes_rate_or_layout_as_it_plays_lasts_as_long_and_renders(app, api, clock, second):
    """Two MP3s joined (3 s at 44.1 kHz mono, then 3 s at another rate or layout), which players play whole: the
    task said SUCCESS with a Duration of 9.1 s, and its video answered 500 for ever (the resampler refused the second
    part's frames). The check now counts each frame at its own rate, and the render takes every part."""
    joined = _tone(44100) + _tone(*second)
    task_id, report = finished(api, clock, {**AUDIO_PAYLOAD, "InputAudioUrl": upload(app, joined, "joined.mp3")})
    assert abs(report["Duration"] - 6000) <= 100, report["Duration"]
    response = app.test_client().get(path_of(report["MediaUrl"]))
    assert response.status_code == 200, response.data[:300]
    _, seconds, samples, rate = decoded(response.data)
    assert abs(seconds * 1000 - report["Duration"]) <= FRAME_MS
    assert rms(samples[int(4 * rate):int(5 * rate)]) > 0.05  # the second part is heard, not padded silence


def test_a_video_that_cannot_be_rendered_is_an_object_stores_internal_error(app, api, clock, monkeypatch):
    task_id, report = finished(api, clock, TEXT_PAYLOAD)

    def broken(*args, **kwargs):
        raise ValueError("Frame does not match AudioResampler setup.")

    monkeypatch.setattr(render, "encode", broken)
    response = app.test_client().get(path_of(report["MediaUrl"]))
    assert response.status_code == 500 and b"<Code>InternalError</Code>" in response.data  # S3's, not InvalidRequest


def test_a_16_bit_grey_photo_keeps_its_greys(tmp_path):
    """A 16-bit greyscale PNG (mode I;16) of mid grey rendered almost white: convert("RGB") clips its values."""
    from PIL import Image, ImageStat

    grey = io.BytesIO()
    Image.new("I;16", (480, 640), 124 * 257).save(grey, "PNG")
    video = tmp_path / "grey.mp4"
    render.encode(render.Job(photo="grey", width=480, height=640, duration_ms=200), grey.getvalue(), None, video)
    with av.open(str(video)) as container:
        frame = next(container.decode(video=0)).to_image().convert("L")
    assert abs(ImageStat.Stat(frame).mean[0] - 124) < 4


def test_a_render_that_is_over_before_it_is_waited_for_holds_nothing(tmp_path):
    """A render that failed at once (an input no longer kept) could end before the renderer registered what to do
    when it ends; that callback then ran in the asking thread, under the renderer's lock, and took the lock again:
    the request, and every later render, waited for ever."""
    import threading
    from concurrent.futures import Future

    from ivh_mock.mock_server.store.blobs import Blobs

    class AtOnce:  # a pool whose work is over by the time submit returns
        def submit(self, work, *args):
            future = Future()
            try:
                future.set_result(work(*args))
            except Exception as error:  # noqa: BLE001 - what the render raised
                future.set_exception(error)
            return future

    renderer = render.Renderer(Blobs(str(tmp_path)))
    renderer._pool = AtOnce()
    job = render.Job(photo="0" * 64, width=720, height=960, duration_ms=1000)
    outcome: list = []
    asking = threading.Thread(target=lambda: outcome.append(renderer.submit(job)), daemon=True)
    asking.start()
    asking.join(5)
    assert not asking.is_alive(), "the renderer's lock was taken twice"
    assert isinstance(outcome[0].exception(), FileNotFoundError) and renderer._pending == {}


def test_1080p_keeps_the_aspect_ratio_at_about_1920x1080_pixels(app, api, clock):
    photo = upload(app, portrait(1080, 1600), "me.jpg")
    _, report = finished(api, clock, {**TEXT_PAYLOAD, "RefPhotoUrl": photo, "VideoParam": {"Resolution": 1}})
    (_, width, height, _), _, _, _ = decoded(app.test_client().get(path_of(report["MediaUrl"])).data)
    assert (width, height) == (1184, 1760)


def test_the_srt_agrees_with_text_timestamp_result(app, api, clock):
    _, report = finished(api, clock, {**TEXT_PAYLOAD, "InputSsml": SSML})
    response = app.test_client().get(path_of(report["SubtitlesUrl"]))
    assert response.status_code == 200 and response.mimetype == "application/x-subrip"
    assert response.mimetype_params == {"charset": "utf-8"}  # not left to a client's guess (requests': cp1125)
    cues = [block.splitlines() for block in response.get_data(as_text=True).strip().split("\n\n")]

    def ticks(stamp: str) -> int:
        hours, minutes, rest = stamp.split(":")
        seconds, millis = rest.split(",")
        return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 10_000_000 + int(millis) * 10_000

    sentences = report["TextTimestampResult"]
    assert len(cues) == len(sentences) == 2
    for number, (cue, sentence) in enumerate(zip(cues, sentences), start=1):
        start, end = cue[1].split(" --> ")
        assert cue[0] == str(number) and cue[2] == sentence["Sentence"]
        assert abs(ticks(start) - sentence["Words"][0]["StartTimestamp"]) < 10_000  # within the SRT's 1 ms
        assert abs(ticks(end) - sentence["Words"][-1]["EndTimestamp"]) < 10_000


def test_a_byte_range_request_gets_206_and_exactly_those_bytes(app, api, clock):
    _, report = finished(api, clock, TEXT_PAYLOAD)
    client = app.test_client()
    whole = client.get(path_of(report["MediaUrl"])).data
    part = client.get(path_of(report["MediaUrl"]), headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.data == whole[100:1100]
    assert part.headers["Content-Range"] == f"bytes 100-1099/{len(whole)}"
    assert part.headers["Content-Length"] == "1000" and part.headers["Accept-Ranges"] == "bytes"
    tail = client.get(path_of(report["MediaUrl"]), headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.data == whole[-10:]
    for longer in (len(whole) + 1, 10**12):  # more last bytes than the file holds: all of it (RFC 9110 14.1.3)
        all_of_it = client.get(path_of(report["MediaUrl"]), headers={"Range": f"bytes=-{longer}"})
        assert all_of_it.status_code == 206 and all_of_it.data == whole
        assert all_of_it.headers["Content-Range"] == f"bytes 0-{len(whole) - 1}/{len(whole)}"
    srt = client.get(path_of(report["SubtitlesUrl"]), headers={"Range": "bytes=-4096"})  # a file in memory
    assert srt.status_code == 206 and srt.data == client.get(path_of(report["SubtitlesUrl"])).data
    for unsatisfiable in (f"bytes={len(whole) + 5}-", "bytes=-0"):  # no byte of the file (RFC 9110), as S3 says
        beyond = client.get(path_of(report["MediaUrl"]), headers={"Range": unsatisfiable})
        assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(whole)}"
        assert b"<Code>InvalidRange</Code>" in beyond.data, beyond.data
    head = client.head(path_of(report["MediaUrl"]))
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(whole)) and not head.data


def test_if_match_and_if_unmodified_since_are_an_object_stores_412_before_any_range(app, api, clock):
    """A failed If-Match was answered 412 with the whole video as its body, and with a Range it was ignored (206);
    If-Unmodified-Since was never read, and the subtitles, with no date, ignored both date conditions."""
    task_id, report = finished(api, clock, TEXT_PAYLOAD)
    client, url = app.test_client(), path_of(report["MediaUrl"])
    whole = client.get(url)
    etag = whole.headers["ETag"]
    for headers in ({"If-Match": '"other"'}, {"If-Match": '"other"', "Range": "bytes=0-9"},
                    {"If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}):
        refused = client.get(url, headers=headers)
        assert refused.status_code == 412 and b"<Code>PreconditionFailed</Code>" in refused.data, headers
        assert refused.mimetype == "application/xml" and len(refused.data) < 1000
    for headers in ({"If-Match": etag}, {"If-Match": "*"}, {"If-Unmodified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}):
        assert client.get(url, headers=headers).data == whole.data, headers
    assert client.get(url, headers={"If-Match": etag, "Range": "bytes=0-9"}).status_code == 206
    # the conditions before an unsatisfiable range (it had been a 416), and If-None-Match and If-Modified-Since
    # before any range (a 206 of a file the client holds had come back)
    for headers in ({"If-Match": '"other"', "Range": "bytes=-0"}, {"If-Match": '"other"', "Range": "bytes=99999999-"},
                    {"If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT", "Range": "bytes=99999999-"}):
        assert client.get(url, headers=headers).status_code == 412, headers
    for headers in ({"If-None-Match": etag, "Range": "bytes=0-3"},
                    {"If-Modified-Since": whole.headers["Last-Modified"], "Range": "bytes=0-3"}):
        held = client.get(url, headers=headers)
        assert held.status_code == 304 and not held.data, headers
    assert client.get(url, headers={"If-None-Match": '"other"', "Range": "bytes=0-3"}).data == whole.data[:4]
    # the subtitles, made anew on each request, are dated when their task finished: they had no date, and both
    # date conditions went unjudged
    subtitles = path_of(report["SubtitlesUrl"])
    srt = client.get(subtitles)
    assert srt.headers["Last-Modified"] == http_date(app.extensions["ivh_mock"].store.get_task(task_id).finish_at)
    assert client.get(subtitles, headers={"If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}).status_code == 412
    held = client.get(subtitles, headers={"If-Modified-Since": srt.headers["Last-Modified"]})
    assert held.status_code == 304 and not held.data
    assert client.get(subtitles, headers={"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}).data == srt.data
    sample = "/__mock__/assets/samples/photo.jpg"  # the asset host's files: the same rules, in the control format
    refused = client.get(sample, headers={"If-Match": '"other"'})
    assert refused.status_code == 412 and refused.is_json and b"\xff\xd8" not in refused.data
    assert client.get(sample, headers={"If-Match": "*"}).data[:2] == b"\xff\xd8"
    # a sample (made in memory) and an upload are tagged by their SHA-256: a sample had no ETag, so no If-None-Match
    # or If-Range could name it
    whole = client.get(sample)
    assert whole.headers["ETag"] == f'"{hashlib.sha256(whole.data).hexdigest()}"'
    assert client.get(sample, headers={"If-None-Match": whole.headers["ETag"]}).status_code == 304
    part = client.get(sample, headers={"Range": "bytes=0-9", "If-Range": whole.headers["ETag"]})
    assert part.status_code == 206 and part.data == whole.data[:10]
    upload = client.post("/__mock__/assets?name=a.jpg", data=whole.data).get_json()
    assert client.get(path_of(upload["Url"])).headers["ETag"] == whole.headers["ETag"]
    # kept in the data directory to be sent from there; one where it cannot be kept (full, or `samples` a file)
    # sends it from memory, as before (it had answered 500)
    ctx = app.extensions["ivh_mock"]
    for kept in (ctx.blobs.root / "samples").iterdir():
        kept.unlink()
    (ctx.blobs.root / "samples").rmdir()
    (ctx.blobs.root / "samples").write_text("in the way")
    again = client.get(sample)
    assert again.status_code == 200 and again.data == whole.data and again.headers["ETag"] == whole.headers["ETag"]


def test_a_video_renders_when_first_asked_for_and_once_per_input(app, api, clock, monkeypatch):
    """Most tasks of a test suite are never downloaded: nothing is rendered until a video is asked for, and the
    same inputs render once."""
    calls = []
    original = render.encode

    def counting(job, photo, audio, target):
        calls.append(job.key)
        original(job, photo, audio, target)

    monkeypatch.setattr(render, "encode", counting)
    ctx = app.extensions["ivh_mock"]
    first = api.call("phototovideonotrain", TEXT_PAYLOAD).payload["TaskId"]
    second = api.call("phototovideonotrain", TEXT_PAYLOAD).payload["TaskId"]
    key = ctx.store.get_task(first).video
    assert ctx.store.get_task(second).video == key
    clock.advance(600)
    assert api.call("getprogress", {"TaskId": first}).payload["Status"] == "SUCCESS"
    time.sleep(0.2)
    assert calls == [] and not ctx.blobs.exists("videos", key)
    for task_id in (first, second):
        url = api.call("getprogress", {"TaskId": task_id}).payload["MediaUrl"]
        assert app.test_client().get(path_of(url)).status_code == 200
    assert calls == [key]  # the same inputs rendered once


def test_expired_results_are_deleted_from_disk(app, api, clock):
    _, report = finished(api, clock, TEXT_PAYLOAD)
    ctx = app.extensions["ivh_mock"]
    client = app.test_client()
    assert client.get(path_of(report["MediaUrl"])).status_code == 200
    task = ctx.store.tasks()[0]
    files = [ctx.blobs.path("videos", task.video), ctx.blobs.path("media", task.photo)]
    assert all(path.exists() for path in files)
    client.post("/__mock__/clock", json={"advance": RETENTION - 700})
    assert all(path.exists() for path in files)  # not yet
    client.post("/__mock__/clock", json={"advance": 200})
    assert not any(path.exists() for path in files)
    assert client.get(path_of(report["MediaUrl"])).status_code == 404


def test_a_task_stuck_in_the_queue_keeps_no_file_for_ever(app, api, clock):
    """A stuck task never finishes: its files, and a video it shares with a finished task, were kept for ever (the
    finished task's MediaUrl answered 404, the file stayed on disk)."""
    _, report = finished(api, clock, TEXT_PAYLOAD)
    ctx = app.extensions["ivh_mock"]
    client = app.test_client()
    assert client.get(path_of(report["MediaUrl"])).status_code == 200
    stuck = api.call("phototovideonotrain", TEXT_PAYLOAD, scenario="stuck_in_queue").payload["TaskId"]
    task = ctx.store.get_task(stuck)
    files = [ctx.blobs.path("videos", task.video), ctx.blobs.path("media", task.photo)]
    assert all(path.exists() for path in files)
    client.post("/__mock__/clock", json={"advance": RETENTION + 100})
    assert not any(path.exists() for path in files)
    assert api.call("getprogress", {"TaskId": stuck}).payload["Status"] == "COMMIT"  # still stuck, and answered


def test_a_video_rendered_as_its_task_was_reset_is_not_kept(app, api, clock, monkeypatch):
    """A download started the render, and a reset swept the task's files meanwhile (its video was not there yet):
    the render then wrote a video nothing referred to, which no reset, retention or restart ever deleted."""
    ctx = app.extensions["ivh_mock"]
    client = app.test_client()
    _, report = finished(api, clock, TEXT_PAYLOAD)
    encode = render.encode

    def reset_meanwhile(*args):
        encode(*args)
        assert client.post("/__mock__/reset", json={}).status_code == 200

    monkeypatch.setattr(render, "encode", reset_meanwhile)
    assert client.get(path_of(report["MediaUrl"])).status_code == 404  # NoSuchKey: the task is gone
    assert ctx.blobs.names("videos") == []
    # and one a render left all the same (written just after the check of its inputs) goes at the next sweep
    ctx.blobs.put("videos", b"left", "a" * 64)
    _, kept = finished(api, clock, TEXT_PAYLOAD)
    monkeypatch.setattr(render, "encode", encode)
    assert client.get(path_of(kept["MediaUrl"])).status_code == 200
    media.sweep(ctx)
    assert ctx.blobs.names("videos") == [ctx.store.tasks()[0].video]


def test_a_sweep_says_when_the_next_file_can_expire(app, api, clock):
    ctx = app.extensions["ivh_mock"]

    def sweep() -> float:  # one that reads the tasks (not the control API's, which may skip: Retention)
        return results.sweep(ctx.store, ctx.blobs, clock.now(), RETENTION)

    assert sweep() == clock.now() + RETENTION  # nothing stored: nothing can expire before that
    finished(api, clock, TEXT_PAYLOAD)
    task = ctx.store.tasks()[0]
    assert sweep() == task.finish_at + RETENTION
    clock.advance(RETENTION)
    assert sweep() == clock.now() + RETENTION  # the task's files are gone; the next task finishes later
    assert not ctx.blobs.path("media", task.photo).exists()


def test_a_reset_of_everything_reads_the_names_of_the_files_not_every_task(app, api, clock, monkeypatch):
    """A reset of everything decoded every task's record for the names of its files: 1.7 s on a SQLite store of
    50,000 tasks. It reads the names alone (Store.media_refs), and the files go as before."""
    ctx = app.extensions["ivh_mock"]
    control = app.test_client()
    _, report = finished(api, clock, TEXT_PAYLOAD)
    assert control.get(path_of(report["MediaUrl"])).status_code == 200  # its video rendered
    task = ctx.store.tasks()[0]
    monkeypatch.setattr(ctx.store, "tasks", lambda *args, **kwargs: pytest.fail("every task's record was read"))
    assert control.post("/__mock__/reset", json={}).status_code == 200
    assert not ctx.blobs.path("media", task.photo).exists() and ctx.blobs.names("videos") == []


def test_a_clock_counts_its_moves_back_and_nothing_else():
    """What the sweep's skip relies on: a freeze of a running clock had been counted a move back (the time read after
    the move had gone on), and a sweep that could be skipped read every task."""
    clock = VirtualClock(frozen=False)
    for move in (lambda: clock.freeze(True), lambda: clock.freeze(False), clock.restart, lambda: clock.advance(5)):
        move()
    assert clock.now_and_setbacks()[1] == 0
    clock.set(clock.now() - 1)
    clock.hold("a run", 60)
    clock.release("a run")
    clock.advance(1)
    assert clock.now_and_setbacks()[1] == 1  # kept through a hold and its release, and moves on
    clock.restart(let_go=True)  # back to real time from 4 s ahead: back again
    assert clock.now_and_setbacks()[1] == 2


def test_a_clock_move_that_nothing_can_have_expired_by_reads_no_task(app, api, clock, monkeypatch):
    """Each clock move and reset through the control API swept, and a sweep reads every stored task: 130 ms a move on
    a SQLite store of 50,000. One that nothing can have expired by since the last sweep that read them is skipped; a
    move back, a reset, a move to the next expiry, or a video on disk that no task kept then, reads them again."""
    ctx = app.extensions["ivh_mock"]
    control = app.test_client()
    reads = []
    media_refs = ctx.store.media_refs
    monkeypatch.setattr(ctx.store, "media_refs", lambda: reads.append(clock.now()) or media_refs())

    def move(body: dict) -> int:
        reads.clear()
        assert control.post("/__mock__/clock", json=body).status_code == 200
        return len(reads)

    _, report = finished(api, clock, TEXT_PAYLOAD)
    task = ctx.store.tasks()[0]
    assert move({"advance": 1}) == 1  # the first
    assert move({"advance": 1}) == 0 and move({"advance": 3600}) == 0
    assert control.get(path_of(report["MediaUrl"])).status_code == 200  # its video rendered: on disk, and kept
    assert move({"advance": 1}) == 0 and ctx.blobs.names("videos") == [task.video]
    assert move({"set": clock.now() - 10}) == 1  # back: a task accepted now can expire sooner than the last read said
    assert move({"advance": 1}) == 0
    ctx.blobs.put("videos", b"left", "b" * 64)  # a video no task keeps (a render that ended after its task's reset)
    assert move({"advance": 1}) == 2 and "b" * 64 not in ctx.blobs.names("videos")  # (a sweep that deletes reads
    # them a second time: Blobs.set_aside)
    assert move({"set": task.finish_at + RETENTION - 1}) == 0  # not yet
    assert move({"advance": 1}) == 2  # at its expiry: read, and its files go
    assert not ctx.blobs.path("media", task.photo).exists() and ctx.blobs.names("videos") == []
    for appkey, read in (("nobody", 0), (task.appkey, 1)):  # a reset that removes a task reads the others
        reads.clear()
        assert control.post("/__mock__/reset", json={"appkey": appkey}).status_code == 200 and len(reads) == read


def test_the_background_sweep_deletes_files_once_they_can_have_expired(clock, store_spec, monkeypatch):
    """No control call: the clock moves by itself (here: directly) and the dispatcher's periodic sweep notices."""
    monkeypatch.setattr(callbacks, "SWEEP_EVERY_SECONDS", 0.0)
    app = create_app({**TIMING, "store": store_spec}, clock=clock)
    try:
        finished(in_process(app, clock), clock, TEXT_PAYLOAD)
        ctx = app.extensions["ivh_mock"]
        photo = ctx.blobs.path("media", ctx.store.tasks()[0].photo)
        time.sleep(0.3)
        assert photo.exists()  # swept, but not yet expired
        clock.advance(RETENTION)
        deadline = time.monotonic() + 5
        while photo.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not photo.exists()
    finally:
        app.extensions["ivh_mock_dispatcher"].stop()


def test_a_reset_deletes_the_files_of_the_forgotten_tasks(app, api, clock):
    finished(api, clock, TEXT_PAYLOAD)
    ctx = app.extensions["ivh_mock"]
    task = ctx.store.tasks()[0]
    path = ctx.blobs.path("media", task.photo)
    assert path.exists()
    app.test_client().post("/__mock__/reset", json={})
    assert not path.exists()


def test_a_sweep_never_takes_the_media_of_a_task_stored_while_it_ran(app, api, clock, monkeypatch):
    """A reset of one account (or a retention sweep) deleted every file no stored task referred to: another account's
    submission that had taken in the same photo (kept already) but not yet stored its task lost it, and its video
    answered 404 once finished."""
    import threading

    ctx = app.extensions["ivh_mock"]
    finished(api, clock, TEXT_PAYLOAD)
    photo = ctx.blobs.path("media", ctx.store.tasks()[0].photo)
    taken_in, go_on, answers = threading.Event(), threading.Event(), []
    add_task = ctx.store.add_task

    def paused(*args, **kwargs):  # the photo taken in, the task not yet stored
        taken_in.set()
        go_on.wait(10)
        return add_task(*args, **kwargs)

    monkeypatch.setattr(ctx.store, "add_task", paused)
    other = in_process(app, clock, appkey="other-app")
    submitting = threading.Thread(target=lambda: answers.append(other.call("phototovideonotrain", TEXT_PAYLOAD)))
    submitting.start()
    assert taken_in.wait(10)
    assert app.test_client().post("/__mock__/reset", json={"appkey": "test-app"}).status_code == 200
    assert not photo.exists()  # no stored task referred to it: swept
    go_on.set()
    submitting.join(10)
    assert answers[0].code == 0 and photo.exists()  # kept again once its task was stored
    clock.advance(60)
    report = other.call("getprogress", {"TaskId": answers[0].payload["TaskId"]}).payload
    assert app.test_client().get(path_of(report["MediaUrl"])).status_code == 200


def test_a_video_gone_between_its_render_and_its_answer_is_a_missing_key_not_a_500(app, api, clock, monkeypatch):
    """A mock stopped while a download waited on its render (a test's teardown) removed the scratch folder under it:
    the download answered 500 and the log had an ERROR traceback."""
    _, report = finished(api, clock, TEXT_PAYLOAD)

    def gone(path, **options):
        raise FileNotFoundError(2, "No such file or directory", str(path))

    monkeypatch.setattr(media, "send", gone)
    answer = app.test_client().get(path_of(report["MediaUrl"]))
    assert answer.status_code == 404 and b"<Code>NoSuchKey</Code>" in answer.data


def test_a_stored_task_is_answered_as_accepted_when_its_media_cannot_be_kept_again(app, api, monkeypatch):
    """Keeping its media again comes after the task is stored (and billed): a full disk then had answered 500."""
    from ivh_mock.mock_server.media_in.intake import Inputs

    def full(self, blobs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Inputs, "keep_again", full)
    answer = api.call("phototovideonotrain", TEXT_PAYLOAD)
    assert answer.code == 0 and app.extensions["ivh_mock"].store.get_task(answer.payload["TaskId"]) is not None


def test_a_sweep_puts_back_the_files_of_a_task_stored_after_it_read_the_tasks(app, api, clock, monkeypatch):
    """The other half of the race above: the sweep reads the tasks, the submission stores its task (and keeps its
    photo again, a file still there), then the sweep deletes what it read no task referred to. It reads the tasks
    again before it deletes, and puts back what one refers to now."""
    from ivh_mock.mock_server.media_out import results as swept

    ctx = app.extensions["ivh_mock"]
    finished(api, clock, TEXT_PAYLOAD)
    first = ctx.store.tasks()[0]
    photo = ctx.blobs.path("media", first.photo)
    ctx.store.reset(first.appkey)  # its task forgotten: its photo is due to go
    reads = []
    media_refs = ctx.store.media_refs

    def read_then_submit():  # the sweep's first read; the submission stores its task right after it
        refs = media_refs()
        if not reads:
            assert in_process(app, clock, appkey="other-app").call("phototovideonotrain", TEXT_PAYLOAD).code == 0
        reads.append(refs)
        return refs

    monkeypatch.setattr(ctx.store, "media_refs", read_then_submit)
    swept.sweep(ctx.store, ctx.blobs, clock.now(), ctx.spec.service["retentionSeconds"], [first])
    assert len(reads) == 2 and photo.exists()


@pytest.mark.parametrize("seconds", [60])
def test_a_sixty_second_video_has_the_right_duration(app, api, clock, seconds):
    _, report = finished(api, clock, {**AUDIO_PAYLOAD, "InputAudioUrl": SAMPLES + "audio-60s.wav"})
    _, container_seconds, _, _ = decoded(app.test_client().get(path_of(report["MediaUrl"])).data)
    assert report["Duration"] == seconds * 1000 and abs(container_seconds - seconds) <= FRAME_MS / 1000


def test_requests_waiting_on_renders_are_bounded_so_they_never_hold_every_thread(clock, monkeypatch):
    """A video asked for before its render is done waits for it, but only while fewer than `slow_waits` requests
    wait on something slow: the next is told to retry at once (503 SlowDown) rather than hold a thread too."""
    import threading

    release = threading.Event()
    original = render.encode
    monkeypatch.setattr(render, "encode", lambda *args: release.wait(20) and original(*args))
    app = create_app({**TIMING, "background": False, "slow_waits": 1}, clock=clock)
    api = in_process(app, clock)
    _, first = finished(api, clock, TEXT_PAYLOAD)
    _, second = finished(api, clock, {**TEXT_PAYLOAD, "InputSsml": "Another sentence to render."})
    waiting = threading.Thread(target=lambda: app.test_client().get(path_of(first["MediaUrl"])))
    waiting.start()
    time.sleep(0.3)
    started = time.monotonic()
    answer = app.test_client().get(path_of(second["MediaUrl"]))
    assert answer.status_code == 503 and time.monotonic() - started < 1
    assert answer.headers["Retry-After"] == "1" and b"<Code>SlowDown</Code>" in answer.data  # when to ask again
    release.set()
    waiting.join()
    assert app.test_client().get(path_of(second["MediaUrl"])).status_code == 200


def test_ctrl_c_while_a_data_directory_is_checked_leaves_no_file_in_it(tmp_path, monkeypatch):
    """The check that the data directory can be written makes a file and removes it: Ctrl-C between the two left
    it, so the start it stopped could not remove the data directory it had made."""
    import signal
    import tempfile
    import threading

    from ivh_mock.mock_server.store import blobs

    real = tempfile.mkstemp

    def then_interrupted(*args, **kwargs):
        made = real(*args, **kwargs)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # as Ctrl-C, to this thread
        return made

    monkeypatch.setattr(blobs.tempfile, "mkstemp", then_interrupted)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            blobs.Blobs(tmp_path / "data")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert list((tmp_path / "data").iterdir()) == []


def test_a_start_deletes_what_a_writer_killed_mid_write_left_once_it_is_an_hour_old(tmp_path):
    """A worker killed with SIGKILL while it rendered or downloaded left `.tmp-*` files in the data directory, which
    no sweep and no restart removed. A start now drops those older than an hour: no write lasts that long, so one
    that young may be another host's, still writing."""
    import os

    from ivh_mock.mock_server.store.blobs import STALE_SECONDS, Blobs

    blobs = Blobs(tmp_path)
    kept = blobs.put("videos", b"a rendered video")
    stale, fresh = tmp_path / "videos" / ".tmp-killed.mp4", tmp_path / "media" / ".tmp-writing"
    fresh.parent.mkdir(parents=True, exist_ok=True)
    for path in (stale, fresh):
        path.write_bytes(b"half a file")
    old = time.time() - STALE_SECONDS - 60
    os.utime(stale, (old, old))
    os.utime(blobs.path("videos", kept), (old, old))  # a kept file as old is kept
    Blobs(tmp_path)  # as a worker starting on the directory
    assert not stale.exists() and fresh.exists() and blobs.get("videos", kept) == b"a rendered video"
    # a file a sweep killed mid-sweep had set aside goes back where it was, an hour after it was set aside; one set
    # aside now stays aside, however old the file (a rename keeps its time: a start had undone every live sweep)
    photo = blobs.put("media", b"a photo")
    os.utime(blobs.path("media", photo), (old, old))
    assert blobs.set_aside("media", photo) and blobs.get("media", photo) is None
    Blobs(tmp_path)
    assert blobs.get("media", photo) is None
    aside = tmp_path / "media" / f".sweep-{photo}"
    os.utime(aside, (old, old))
    Blobs(tmp_path)
    assert blobs.get("media", photo) == b"a photo" and not aside.exists()


def test_a_full_disk_is_said_in_each_routes_format_with_no_traceback(app, api, clock, monkeypatch, caplog):
    """An asset upload and a video's first download on a full disk were a bare internal error each, and a traceback
    in the log per request, as if the mock were at fault."""
    import errno
    from pathlib import Path

    task_id, report = finished(api, clock, TEXT_PAYLOAD)

    def full(self, kind, data, name=None):
        raise OSError(errno.ENOSPC, "No space left on device", f"/data/{kind}/.tmp-1234.bin")

    def full_render(job, photo, audio, target: Path):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(type(app.extensions["ivh_mock"].blobs), "put", full)
    monkeypatch.setattr(render, "encode", full_render)
    caplog.clear()
    client = app.test_client()
    uploaded = client.post("/__mock__/assets?name=a.jpg", data=portrait(400, 500), content_type="image/jpeg")
    video = client.get(path_of(report["MediaUrl"]))
    assert uploaded.status_code == 500 and uploaded.get_json()["error"]["message"] == (
        "internal error in ivh-mock: no space left on the disk of its data directory writing .tmp-1234.bin (No space "
        "left on device); retry")
    assert video.status_code == 500 and video.mimetype == "application/xml"
    assert b"<Message>internal error in ivh-mock: no space left on the disk of its data directory writing .tmp-" \
        in video.data
    assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"
    monkeypatch.undo()
    assert client.get(path_of(report["MediaUrl"])).status_code == 200  # room again: rendered
