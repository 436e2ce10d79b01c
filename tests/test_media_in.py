"""Media in: the asset host, downloading RefPhotoUrl and InputAudioUrl over real HTTP, and the profile's file rules,
checked by property tests whose oracle is the rule as the vendor's page states it."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import socket
import struct
import sys
import threading
import time
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ivh_mock.mock_server import create_app
from ivh_mock.mock_server.media_in import assets
from ivh_mock.mock_server.media_in.intake import Verdicts
from ivh_mock.mock_server.media_out import synth
from ivh_mock.mock_server.media_in.samples import SAMPLES, portrait, uniform_png
from PIL import Image
from werkzeug.wrappers import Request, Response

from bench.reliability import huge_png

from .conftest import TEXT_PAYLOAD, TIMING, Redirector, in_process, serving

SLOW = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])
PHOTO_FORMATS = {"JPEG": True, "PNG": True, "BMP": True, "WEBP": True, "GIF": False, "TIFF": False}
MB = 1_048_576
# Page rules (intl): at most 10 MB; each side 192..4096 px; width:height from 1:2 to 2:1, both inclusive.
INTL = {"max_bytes": 10 * MB, "sides": (192, 4096), "aspect": (Fraction(1, 2), Fraction(2))}


def upload(app, data: bytes, name: str) -> str:
    response = app.test_client().post("/__mock__/assets", query_string={"name": name}, data=data,
                                      content_type="application/octet-stream")
    assert response.status_code == 201, response.get_json()
    return response.get_json()["Url"]


def submit_photo(api, url: str):
    return api.call("phototovideonotrain", {**TEXT_PAYLOAD, "RefPhotoUrl": url})


def audio_task(api, clock, url: str) -> dict:
    answer = api.call("phototovideonotrain", {"RefPhotoUrl": TEXT_PAYLOAD["RefPhotoUrl"],
                                              "DriverType": "OriginalVoice", "InputAudioUrl": url})
    assert answer.code == 0, answer.message  # audio is judged as the task runs: the submission is accepted
    clock.advance(3600)
    return api.call("getprogress", {"TaskId": answer.payload["TaskId"]}).payload


# -- the asset host -------------------------------------------------------------------------------------------------
def test_a_refusal_shows_a_number_past_its_bound_as_past_it(app):
    """A photo of 4001x2000 (width/height 2.0005) was refused as "width/height 2", which the rule allows."""
    from ivh_mock.spec.validation import past

    answer = app.test_client().post("/__mock__/assets?name=wide.png", data=portrait(4001, 2000, "PNG")).get_json()
    assert "(width/height 2.001); width/height must be within 1/2..2" in answer["Problems"][0]["message"]
    assert (past(60.0002, 60), past(60.25, 60), past(0.49975, 0.5, 2), past(61, 60)) == ("60.0002", "60.2", "0.4998",
                                                                                         "61.0")


def test_an_upload_is_served_back_with_what_the_file_is(app, api):
    data = portrait(300, 400, "PNG")
    client = app.test_client()
    answer = client.post("/__mock__/assets?name=me.png", data=data, content_type="image/png").get_json()
    assert (answer["Kind"], answer["Format"], answer["Width"], answer["Height"], answer["Problems"]) == (
        "photo", "png", 300, 400, [])
    served = client.get(answer["Url"].removeprefix("http://localhost"))
    assert served.data == data and served.mimetype == "image/png"
    multipart = client.post("/__mock__/assets", data={"file": (io.BytesIO(b"not media"), "x.txt")}).get_json()
    assert multipart["Kind"] is None and "neither a photo nor audio" in multipart["Problems"][0]["message"]
    # anyone's file, from the control API's origin: never sniffed into a page (it could then call that API)
    text = client.get(multipart["Url"].removeprefix("http://localhost"))
    assert text.mimetype == "text/plain" and text.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/__mock__/assets/samples/photo.jpg").headers["X-Content-Type-Options"] == "nosniff"
    empty = client.post("/__mock__/assets", data=b"")
    assert empty.status_code == 400 and "empty" in empty.get_json()["error"]["message"]
    # a name of no URL-safe character keeps its extension, and so its Content-Type: it had become "png"
    odd = client.post("/__mock__/assets", query_string={"name": "\U0001f600\u202e.png"}, data=data).get_json()
    assert odd["Name"] == "upload.png" and client.get(odd["Url"].removeprefix("http://localhost")).mimetype == \
        "image/png"
    # a long name is cut, its extension kept: a name of 2,100 characters had made a URL RefPhotoUrl refuses
    long = client.post("/__mock__/assets", query_string={"name": "a" * 2100 + ".png"}, data=data).get_json()
    assert long["Name"] == "a" * 124 + ".png" and client.get(long["Url"].removeprefix("http://localhost")).data == data
    assert submit_photo(api, long["Url"]).code == 0


def test_a_submission_reads_from_disk_only_the_asset_urls_the_asset_host_serves(app, api):
    """`<sha>/`, `<sha>/x/y.jpg` and `<sha>/a%0a.jpg` get 404 or 400 from the asset host, so a live API's download
    of them fails; a submission naming them had been read from disk and accepted (Code 0)."""
    url = upload(app, portrait(300, 400, "PNG"), "me.png")
    folder = url.rsplit("/", 1)[0]
    assert submit_photo(api, url).code == 0
    for odd in (f"{folder}/", f"{folder}/x/y.png", f"{folder}/a%0a.png"):
        served = app.test_client().get(odd.removeprefix("http://localhost")).status_code
        assert served in (400, 404), (odd, served)
        refused = submit_photo(api, odd)
        assert refused.code == -101002 and "image download failed" in refused.message, (odd, refused.message)


def test_a_multipart_upload_takes_the_name_given_and_a_broken_one_says_what_was_read(app):
    """?name= was ignored for a multipart upload, and a form with no `file` field, a wrong boundary or a body cut
    short all got one message, which hid the problem."""
    client = app.test_client()
    named = client.post("/__mock__/assets?name=me2.jpg", data={"file": (io.BytesIO(b"not media"), "me.jpg")})
    assert named.status_code == 201 and named.get_json()["Name"] == "me2.jpg"
    other = client.post("/__mock__/assets", data={"photo": (io.BytesIO(b"x"), "me.jpg"), "note": "1"})
    assert other.get_json()["error"]["message"].endswith("'file'; it has 'note', 'photo'")
    part = b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\nabc'
    for body, boundary in ((part + b"\r\n--xx--\r\n", "yy"), (part, "xx")):  # a wrong boundary; a body cut short
        refused = client.post("/__mock__/assets", data=body,
                              headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert refused.status_code == 400 and "is the Content-Type's boundary" in refused.get_json()["error"]["message"]
    # a file name in GBK (a Chinese Windows client's) makes the part's headers unreadable: that was not said
    gbk = part.replace(b"a.jpg", "照片.jpg".encode("gbk")) + b"\r\n--xx--\r\n"
    refused = client.post("/__mock__/assets", data=gbk, headers={"Content-Type": "multipart/form-data; boundary=xx"})
    assert refused.status_code == 400 and "GBK say, is not read" in refused.get_json()["error"]["message"]


def test_the_mocks_own_asset_urls_under_a_public_url_with_a_path_are_read_from_disk(clock):
    """With `--public-url http://pub.example:9000/base` (a reverse proxy's prefix), the samples and uploads answered
    URLs under /base, and a submission naming one fetched it over the network: -101002, the name not resolving."""
    app = create_app({**TIMING, "background": False, "public_url": "http://pub.example:9000/base"}, clock=clock)
    api = in_process(app, clock)
    uploaded = upload(app, portrait(300, 400, "PNG"), "me.png")
    sampled = f"http://pub.example:9000/base{assets.PREFIX}/samples/photo.jpg"
    for url in (uploaded, sampled):
        assert url.startswith("http://pub.example:9000/base/__mock__/assets/")
        answer = submit_photo(api, url)
        assert answer.code == 0, answer.message


def test_an_upload_the_host_cannot_read_as_sent_says_why(app):
    """A gzip upload (Content-Encoding) was kept as sent and served back as a broken image/jpeg; a form of 1,000
    parts got "request body is larger than 67108864 bytes" for 86 KB (werkzeug's bound on parts); a `file` part without
    a filename was told the form "needs its file in the form field 'file'; it has 'file'"."""
    import gzip

    client = app.test_client()
    coded = client.post("/__mock__/assets?name=p.jpg", data=gzip.compress(b"a photo"),
                        headers={"Content-Encoding": "gzip"})
    assert coded.status_code == 415 and coded.get_json()["error"]["message"] == (
        "Content-Encoding 'gzip' is not taken: send the body as the file itself, uncompressed")
    parts = {f"f{n}": "x" for n in range(1000)}
    many = client.post("/__mock__/assets", data={**parts, "file": (io.BytesIO(b"x"), "a.jpg")})
    assert many.status_code == 413 and many.get_json()["error"]["message"] == (
        "a multipart upload may have at most 1000 parts; send the file alone, in the form field 'file'")
    unnamed = client.post("/__mock__/assets", data=b'--xx\r\nContent-Disposition: form-data; name="file"\r\n\r\n'
                                                    b"abc\r\n--xx--\r\n",
                          headers={"Content-Type": "multipart/form-data; boundary=xx"})
    assert unnamed.status_code == 400 and unnamed.get_json()["error"]["message"].startswith(
        "the form field 'file' holds no file: its part needs a filename")


def test_uploads_beyond_the_hosts_total_delete_the_least_recent_ones(clock):
    """Uploads were kept for good: a loop of distinct files filled the disk. The asset host keeps the newest that fit
    in `asset_total_bytes`."""
    app = create_app({**TIMING, "background": False, "asset_total_bytes": 250_000}, clock=clock)
    files = [bytes([n]) * 100_000 for n in range(5)]
    urls = []
    for data in files:
        urls.append(app.test_client().post("/__mock__/assets?name=f.bin", data=data).get_json()["Url"])
        time.sleep(0.01)  # distinct upload times
    served = [app.test_client().get(url.removeprefix("http://localhost")).status_code for url in urls]
    assert served == [404, 404, 404, 200, 200]
    kept = app.extensions["ivh_mock"].blobs.root / "assets"
    assert sum(path.stat().st_size for path in kept.iterdir()) <= 250_000


def test_uploads_above_the_limit_are_refused_and_the_server_keeps_serving(clock):
    app = create_app({**TIMING, "background": False, "asset_max_bytes": 1000}, clock=clock)
    client = app.test_client()
    refused = client.post("/__mock__/assets?name=big.bin", data=b"x" * 1001, content_type="application/octet-stream")
    assert refused.status_code == 413 and "at most 1000 bytes" in refused.get_json()["error"]["message"]
    assert client.post("/__mock__/assets?name=ok.bin", data=b"x" * 1000).status_code == 201


@pytest.mark.parametrize("profile", ["intl", "cn"])
def test_every_sample_gets_the_verdict_the_listing_promises(profile, clock):
    app = create_app({**TIMING, "background": False, "profile": profile}, clock=clock)
    api = in_process(app, clock)
    listing = app.test_client().get("/__mock__/assets/samples").get_json()["samples"]
    assert {item["Name"] for item in listing} == set(SAMPLES)
    rules = {item["Breaks"] for item in listing} - {None}
    assert rules == {"photo.formats", "photo.maxBytes", "photo.sidePixels", "photo.aspectRatio", "photo.readable",
                     "photo.pixels", "audio.formats", "audio.maxBytes", "audio.durationSeconds", "audio.readable"}
    for item in listing:
        if item["Kind"] == "photo":
            answer = submit_photo(api, item["Url"])
            refused = answer.code != 0
            if refused:
                assert answer.code == 100002 and "Payload.RefPhotoUrl" in answer.message, (item, answer.message)
        else:
            report = audio_task(api, clock, item["Url"])
            refused = report["Status"] == "FAIL"
            if refused:
                assert report["FailCode"] == 801009 and "Payload.InputAudioUrl" in report["FailMessage"], item
        said = "refused" if item["Kind"] == "photo" else "accepted, then the task fails (801009)"
        assert refused == (item["Expected"] == said), (item, answer.message if item["Kind"] == "photo" else report)


def test_the_large_wav_sample_holds_the_babble_as_32_bit_samples():
    """audio-too-large.wav is a real recording, too large only by its samples' width and rate: each 16-bit sample of
    the babble is the high half of a 32-bit one, in the file's little-endian order."""
    import wave
    from array import array

    from ivh_mock.mock_server.media_in.samples import big_wav

    with wave.open(io.BytesIO(big_wav(1.5, rate=8000))) as file:
        shape = file.getnchannels(), file.getsampwidth(), file.getframerate(), file.getnframes()
        frames = file.readframes(12000)
    assert shape == (1, 4, 8000, 12000)
    wide = array("i")
    wide.frombytes(frames)
    if sys.byteorder == "big":
        wide.byteswap()
    narrow = array("h", synth.babble(1.5, 8000))
    assert max(narrow) > 1000 and list(wide) == [value << 16 for value in narrow]


def test_the_cn_profile_only_recommends_sides_and_aspect_but_caps_bytes_at_6_mb(clock):
    app = create_app({**TIMING, "background": False, "profile": "cn"}, clock=clock)
    api = in_process(app, clock)
    assert submit_photo(api, upload(app, portrait(4097, 2100), "wide.jpg")).code == 0
    assert submit_photo(api, upload(app, portrait(200, 700, "PNG"), "narrow.png")).code == 0
    # accepted as the API accepts them; what they miss was said nowhere for a submission (only by the asset host)
    notes = [entry.note for entry in app.extensions["ivh_mock"].store.journal("test-app")]
    assert len(notes) == 2 and all(note.startswith("accepted with a note: Payload.RefPhotoUrl") for note in notes)
    assert "4097" in notes[0] and "200x700" in notes[1].replace(" ", ""), notes
    over = portrait(512, 512, "PNG")
    over += bytes(6 * MB + 1 - len(over))
    answer = submit_photo(api, upload(app, over, "big.png"))
    assert answer.code == 100002 and "at most 6 MB" in answer.message


# -- property tests: photos -----------------------------------------------------------------------------------------
EDGES = st.sampled_from([191, 192, 193, 384, 385, 4095, 4096, 4097])


@st.composite
def photos(draw):
    fmt = draw(st.sampled_from(sorted(PHOTO_FORMATS)))
    width = draw(st.one_of(EDGES, st.integers(150, 4200)))
    height = draw(st.one_of(
        EDGES, st.integers(150, 4200),
        st.sampled_from([2 * width - 1, 2 * width, 2 * width + 1, width // 2, (width + 1) // 2, width // 2 - 1])))
    return fmt, width, min(max(1, height), 4300)  # BMP and TIFF stay below the upload limit


@SLOW
@given(photo=photos())
def test_the_photo_verdict_follows_the_page_rules(app, api, photo):
    fmt, width, height = photo
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 150, 120)).save(buffer, fmt)
    data = buffer.getvalue()
    low, high = INTL["sides"]
    valid = (PHOTO_FORMATS[fmt] and len(data) <= INTL["max_bytes"] and low <= width <= high and low <= height <= high
             and INTL["aspect"][0] <= Fraction(width, height) <= INTL["aspect"][1])
    answer = submit_photo(api, upload(app, data, f"p.{fmt.lower()}"))
    assert (answer.code == 0) == valid, (fmt, width, height, len(data), answer.message)
    if not valid:
        assert answer.code == 100002 and answer.message.startswith("Payload.RefPhotoUrl")


def test_a_file_is_judged_once_and_a_sample_is_hashed_once_when_it_is_made(monkeypatch):
    verdicts, checked, hashed = Verdicts(), [], []
    real_digest = assets.digest
    monkeypatch.setattr(assets, "digest", lambda data: hashed.append(data) or real_digest(data))

    def check(data, rules, field_name):
        checked.append(data)
        return len(data)

    ours = portrait(200, 300)  # not a sample: hashed each time it comes, and not kept by the hashing
    for _ in range(2):
        assert verdicts.judge(check, ours, {}, "f") == (hashlib.sha256(ours).hexdigest(), len(ours))
    assert [data for data in hashed if data is ours] == [ours, ours] and checked == [ours]
    assert all(data is not ours for data, _ in assets._SAMPLE_DIGESTS.values())
    monkeypatch.setattr(assets, "_MADE", {})
    photo = assets.sample("photo.png")  # made anew here, and hashed as it is made
    for _ in range(3):
        assert verdicts.judge(check, photo, {}, "f")[0] == hashlib.sha256(photo).hexdigest()
    assert [data for data in hashed if data is photo] == [photo] and checked == [ours, photo]
    assert assets.digest_of(bytes(bytearray(photo))) == hashlib.sha256(photo).hexdigest()  # equal bytes: same sum


def test_a_sample_asked_for_by_many_at_once_is_made_once(monkeypatch):
    """Twelve first requests for the 21 MB sample had each made it, 500 MB at once, kept by the worker after."""
    monkeypatch.setattr(assets, "_MADE", {})
    made = []
    real = SAMPLES["photo.png"]
    monkeypatch.setitem(SAMPLES, "photo.png", dataclasses.replace(real, make=lambda: made.append(1) or real.make()))
    got: list[bytes | None] = []
    threads = [threading.Thread(target=lambda: got.append(assets.sample("photo.png"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made == [1] and len(got) == 8 and all(data is got[0] for data in got)


def test_corrupt_truncated_and_bomb_photos_are_refused_by_name(app, api):
    whole = portrait(720, 960)
    for data, rule in [(whole[: len(whole) // 2], "truncated or corrupt"), (SAMPLES["photo-bomb.png"].make(),
                       "decompression bomb"), (b"GIF89a" + bytes(100), "not an image in a supported format")]:
        answer = submit_photo(api, upload(app, data, "x.jpg"))
        assert answer.code == 100002 and rule in answer.message, answer.message
    assert submit_photo(api, upload(app, whole, "ok.jpg")).code == 0  # and the server keeps serving


@pytest.mark.parametrize("height", [1, 1163, 2500])  # 1163 rows of 901 bytes to a block: none, one, two and some
def test_a_uniform_png_built_of_repeated_blocks_decodes_to_its_rows(height):
    """The large and the bomb PNGs are built of one compressed block repeated: the stream must stay one valid zlib
    stream (its checksum too) whose every row is the row given, in the colour type and depth given."""
    row = bytes(range(256)) * 3 + bytes(132)  # 300 RGB pixels, no two neighbours alike
    image = Image.open(io.BytesIO(uniform_png(300, height, row, comment="tag")))
    image.load()  # a wrong checksum or a cut stream fails here
    assert (image.size, image.mode, image.info["Comment"]) == ((300, height), "RGB", "tag")
    assert image.tobytes() == row * height
    grey = Image.open(io.BytesIO(uniform_png(20, 30, b"\xf0\x0f\xff", bit_depth=1, colour_type=0)))
    assert grey.mode == "1" and list(grey.convert("L").tobytes()[:20]) == [255] * 4 + [0] * 8 + [255] * 8


@pytest.mark.parametrize("fmt", [(1, 0), (1, 65535), (3, 0)], ids=["pcm-0-bits", "pcm-65535-bits", "float-0-bits"])
def test_a_wav_header_no_decoder_takes_is_unreadable_audio_not_a_server_error(app, api, clock, fmt):
    """PyAV opens such a file but gives its stream no decoder: the upload and the submission answered 500."""
    tag, bits = fmt
    sound = bytes(100_000)
    header = struct.pack("<IHHIIHH", 16, tag, 1, 8000, 0, 0, bits)
    wav = b"RIFF" + struct.pack("<I", 36 + len(sound)) + b"WAVEfmt " + header + b"data" + struct.pack("<I", len(sound))
    wav += sound
    report = audio_task(api, clock, upload(app, wav, "crafted.wav"))
    assert (report["Status"], report["FailCode"]) == ("FAIL", 801009)
    assert "the file is not readable audio" in report["FailMessage"]


def test_a_photo_given_as_audio_is_said_to_hold_no_sound(app, api, clock):
    """It had been called by FFmpeg's name for its reader alone: "the file is piped jpeg sequence"."""
    report = audio_task(api, clock, upload(app, SAMPLES["photo.jpg"].make(), "voice.jpg"))
    assert (report["Status"], report["FailCode"]) == ("FAIL", 801009)
    assert report["FailMessage"].startswith("Payload.InputAudioUrl: the file holds no sound: it is an image or a "
                                            "video ("), report["FailMessage"]
    assert ", read from its bytes); the audio must be one of " in report["FailMessage"], report["FailMessage"]


def test_a_photo_too_large_by_its_header_is_refused_before_any_pixel_is_decoded(app, api, monkeypatch):
    """A 9000 px PNG of a few hundred KB decodes to 324 MB: its size is judged from the header, through the API and
    the upload route alike, and nothing is decoded (eight at once once took the mock past 2 GB)."""
    from PIL import ImageFile

    data = huge_png(9000, "header-only")
    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: decoded.append(image.size) or real_load(image))
    answer = submit_photo(api, upload_any(app, data))
    assert answer.code == 100002 and "9000x9000 px; each side must be within 192..4096 px" in answer.message
    assert "aspect" not in answer.message and (9000, 9000) not in decoded  # (another test's leftover render may decode)


def upload_any(app, data: bytes) -> str:
    """Upload a file whatever its verdict; return its URL."""
    response = app.test_client().post("/__mock__/assets?name=x.png", data=data)
    assert response.status_code == 201 and response.get_json()["Problems"], response.get_json()
    return response.get_json()["Url"]


@pytest.mark.parametrize("profile, side", [("cn", 4200), ("intl", 4096)])
def test_large_photos_are_decoded_one_at_a_time(clock, monkeypatch, tmp_path, profile, side):
    """A photo is decoded to see that it is readable, and again to render it: never two large decodes at once in a
    process, whether checks or renders. The cn profile only recommends the sides, so it takes photos past 4096 px;
    the intl profile's largest, a 4096 px square, had been decoded on every thread at once (ten took 780 MB)."""
    from ivh_mock.mock_server.media_in import mediacheck
    from ivh_mock.mock_server.media_out import render
    from PIL import ImageFile

    app = create_app({**TIMING, "background": False, "profile": profile}, clock=clock)
    real_load, active, peak, lock = ImageFile.ImageFile.load, [0], [0], threading.Lock()

    def load(image):
        if render.decoded_bytes(image) <= render.LARGE_BYTES:  # another test's leftover render, say
            return real_load(image)
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            time.sleep(0.2)
            return real_load(image)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    photos = [huge_png(side, f"{profile}-{n}") for n in range(3)]
    results = []
    threads = [threading.Thread(target=lambda data=data: results.append(
        mediacheck.check_photo(data, app.extensions["ivh_mock"].profile["photo"]))) for data in photos]
    video = tmp_path / "large.mp4"
    threads.append(threading.Thread(target=lambda: render.encode(
        render.Job(photo="large", width=64, height=64, duration_ms=200), photos[0], None, video)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    notes = ["photo.sidePixels"] if profile == "cn" else []
    assert peak[0] == 1 and [(v.ok, v.width, [n.rule for n in v.notes]) for v in results] == [(True, side, notes)] * 3
    assert video.stat().st_size > 0


# -- property tests: audio ------------------------------------------------------------------------------------------
EXACT = ["wav", "mp3", "ogg"]  # formats that keep an exact sample count
FRAMED = ["m4a", "aac", "wma"]  # formats that round to whole codec frames (about 21..85 ms)


@st.composite
def recordings(draw):
    fmt = draw(st.sampled_from(EXACT + FRAMED + ["flac"]))
    edge = draw(st.sampled_from([2.0, 60.0]))
    if fmt in FRAMED:
        seconds = edge + draw(st.sampled_from([-1, 1])) * draw(st.floats(0.3, 1.0))
    else:
        seconds = edge + draw(st.sampled_from([-0.05, -0.01, 0.0, 0.01, 0.05, 0.5, -0.5]))
    return fmt, round(seconds, 3)


@pytest.mark.slow
@SLOW
@given(recording=recordings())
def test_the_audio_verdict_and_duration_follow_the_page_rules(app, api, clock, recording):
    fmt, seconds = recording
    data = synth.encode(synth.babble(seconds), fmt)
    report = audio_task(api, clock, upload(app, data, f"a.{fmt}"))
    valid = fmt != "flac" and 2 <= seconds <= 60
    assert (report["Status"] == "SUCCESS") == valid, (fmt, seconds, report)
    if valid:
        tolerance = 1 if fmt in EXACT else 150
        assert abs(report["Duration"] - seconds * 1000) <= tolerance, (fmt, seconds, report["Duration"])
    else:
        assert report["FailCode"] == 801009 and report["FailMessage"].startswith("Payload.InputAudioUrl")


# -- fetching over real HTTP ----------------------------------------------------------------------------------------
@pytest.fixture
def media_server():
    """A separate HTTP server holding media, with the ways a download can go wrong."""
    photo = portrait(480, 640)
    audio = synth.encode(synth.babble(3), "wav")

    def endless():
        while True:
            yield bytes(65536)

    @Request.application
    def app(request):
        path = request.path
        if path == "/photo.jpg":
            return Response(photo, mimetype="image/jpeg")
        if path == "/audio.wav":
            return Response(audio, mimetype="audio/wav")
        if path == "/slow-audio.wav":
            time.sleep(0.5)
            return Response(audio, mimetype="audio/wav")
        if path.startswith("/hop/"):
            hops = int(path.rsplit("/", 1)[1])
            return Response(status=302, headers={"Location": f"/hop/{hops - 1}" if hops else "/photo.jpg"})
        if path == "/to-ftp":
            return Response(status=302, headers={"Location": "ftp://127.0.0.1/photo.jpg"})
        if path == "/媒体/photo.jpg":
            return Response(photo, mimetype="image/jpeg")
        if path == "/endless.jpg":
            return Response(endless(), mimetype="image/jpeg")
        if path == "/slow.jpg":
            time.sleep(3)
            return Response(photo, mimetype="image/jpeg")
        return Response("gone", status=404)

    with serving(app) as url:
        yield url


@pytest.fixture
def fetching(clock):
    app = create_app({**TIMING, "background": False, "fetch_total_timeout_seconds": 1.0, "fetch_redirects": 3},
                     clock=clock)
    return app, in_process(app, clock)


def test_a_download_leaves_no_connection_its_host_closed(fetching):
    """Kept alive in the fetcher's shared pool, each connection whose media host then closed it (as a test's server
    does when the test ends) stayed in CLOSE_WAIT until its host's pool was pushed out."""
    from .conftest import RawServer, close_waits

    _, api = fetching
    photo = portrait(480, 640)
    hosts = [RawServer(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s"
                       % (len(photo), photo)) for _ in range(3)]
    try:
        for host in hosts:
            for _ in range(2):
                assert submit_photo(api, f"{host.url}/photo.jpg").code == 0
        time.sleep(0.3)  # each host closed its end as it answered
        assert close_waits({int(host.url.rsplit(":", 1)[1]) for host in hosts}) == 0
    finally:
        for host in hosts:
            host.close()


def test_photos_download_over_http_following_a_few_redirects(fetching, media_server):
    _, api = fetching
    assert submit_photo(api, f"{media_server}/photo.jpg").code == 0
    from .conftest import RawServer

    utf8 = f"{media_server}/媒体/photo.jpg".encode()  # a Location some servers send as raw UTF-8 (werkzeug escapes it)
    with RawServer(b"HTTP/1.1 302 Found\r\nLocation: " + utf8 + b"\r\nContent-Length: 0\r\n\r\n") as moved:
        assert submit_photo(api, f"{moved.url}/p.jpg").code == 0  # it was read as Latin-1: a 404
    assert submit_photo(api, f"{media_server}/hop/2").code == 0  # three redirects: the limit
    for path, reason in [("/hop/3", "more than 3 redirects"), ("/missing.jpg", "HTTP 404"),
                         ("/to-ftp", "not an http or https URL"),
                         ("/slow.jpg", "longer than the download limit of 1 s")]:
        answer = submit_photo(api, media_server + path)
        assert answer.code == -101002 and reason in answer.message, (path, answer.message)
    started = time.monotonic()
    answer = submit_photo(api, f"{media_server}/endless.jpg")
    assert answer.code == 100002 and "photo has more than 10485760 bytes; at most 10 MB is allowed" in answer.message
    assert time.monotonic() - started < 5  # the stream was cut at the limit, not read to the end


@pytest.mark.parametrize("location", ["http://[/x.jpg", "http://[abc]/x.jpg", "http://a:b@[/x",
                                      "http://" + "a" * 300 + ".com/x"])
def test_a_redirect_to_an_unparsable_host_fails_the_download_with_a_clear_error(fetching, location):
    """The same Locations as the uploads' test: both follow redirects through `deadline.followed`."""
    _, api = fetching
    redirector = Redirector(location, status=302)
    try:
        answer = submit_photo(api, redirector.url)
    finally:
        redirector.close()
    named = {"http://" + "a" * 300 + ".com/x": "is not a valid URL (its host cannot be parsed)"}.get(
        location, f"{redirector.url} redirected to a URL whose host cannot be parsed")  # the long one is joined
    assert answer.code == -101002 and named in answer.message, answer.message


def test_a_huge_url_that_fails_to_download_is_quoted_cut(fetching):
    """A RefPhotoUrl of 2,000 characters that could not be downloaded came back whole in a 2,105-character message,
    against D04: a message quotes at most 200 characters of a URL."""
    _, api = fetching
    url = "http://127.0.0.1:1/" + "p" * 2000
    answer = submit_photo(api, url)
    assert answer.code == -101002 and f"{url[:197]}... could not be downloaded" in answer.message, answer.message
    assert len(answer.message) < 400


def test_an_answer_whose_headers_requests_refuses_is_no_redirect(fetching):
    """Two Content-Lengths make requests raise InvalidHeader, a ValueError like a bad Location's: the message had
    blamed a redirect that never happened."""
    import socket

    _, api = fetching
    server = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        with server:
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 10\r\n\r\nabc")

    threading.Thread(target=answer, daemon=True).start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/photo.jpg"
    refused = submit_photo(api, url)
    assert refused.code == -101002 and f"{url} could not be downloaded (InvalidHeader)" in refused.message
    assert "redirect" not in refused.message


def test_a_download_whose_time_ran_out_between_hops_fails_cleanly(monkeypatch):
    from ivh_mock.mock_server import deadline
    from ivh_mock.mock_server.media_in import fetch

    # the deadline is set, then the next look at it finds it past (in this thread only: a leftover thread of another
    # test may be timing a download of its own)
    this, real_left = threading.current_thread(), deadline.Deadline.left
    monkeypatch.setattr(deadline.Deadline, "left",
                        lambda limit: -85.0 if threading.current_thread() is this else real_left(limit))
    with pytest.raises(fetch.FetchFailed, match="took longer than the download limit"):
        fetch.Fetcher(fetch.Limits(total_timeout=15.0)).fetch("http://127.0.0.1:9/photo.jpg", 1000)


def test_a_phones_multi_picture_jpeg_and_any_loopback_address_are_taken(app, api):
    """An MPO (a JPEG file whose first picture is a baseline JPEG, as phones and stereo cameras write) was refused as
    "the file is MPO"; and only localhost, 127.0.0.1 and ::1 were read as the mock's own host, though DECISIONS.md
    D46 says any loopback address (127.0.0.2 was fetched over HTTP, and failed)."""
    first = Image.open(io.BytesIO(portrait(720, 960)))
    mpo = io.BytesIO()
    first.save(mpo, "MPO", save_all=True, append_images=[first.copy()])
    assert Image.open(io.BytesIO(mpo.getvalue())).format == "MPO"
    assert submit_photo(api, upload(app, mpo.getvalue(), "phone.jpg")).code == 0
    for host in ("127.0.0.2:1", "[::ffff:127.0.0.1]:1", "ivh.localhost:1"):  # port 1: nothing is fetched
        answer = submit_photo(api, f"http://{host}/__mock__/assets/samples/photo.jpg")
        assert answer.code == 0, (host, answer.message)
    assert not any(assets._loopback(host) for host in ("10.0.0.1", "localhost.example", "::2", "128.0.0.1"))


def test_a_submissions_downloads_share_the_limit_and_their_messages_keep_no_credential():
    """The photo and then the audio each had the whole limit: a submission took 30 s, and the client (30 s) gave up
    while the task was accepted. A download's message, which reaches the caller's callback host as the FailMessage,
    kept a URL's user info and pre-signed query."""
    from ivh_mock.mock_server.media_in import fetch

    from .conftest import RawServer

    fetcher = fetch.Fetcher(fetch.Limits(connect_timeout=1.0, total_timeout=1.5))
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab"
    with RawServer(answer, every=0.02) as slow:  # about a second for the whole answer
        started = time.monotonic()
        by = started + 1.5  # what Intake.take gives both of a submission's downloads
        assert fetcher.fetch(f"{slow.url}/photo.jpg", 100, by=by) == b"ab"
        with pytest.raises(fetch.FetchFailed, match="audio.wav took longer than the download limit of 1.5 s"):
            fetcher.fetch(f"{slow.url}/audio.wav", 100, by=by)
        assert time.monotonic() - started < 1.9
    with RawServer(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n") as refusing:
        host = refusing.url.removeprefix("http://")
        with pytest.raises(fetch.FetchFailed) as failed:
            fetcher.fetch(f"http://bob:hunter2@{host}/p.jpg?X-Amz-Signature=topsecret", 100)
    assert str(failed.value) == f"http://{host}/p.jpg answered HTTP 403"


@pytest.mark.parametrize("path", ["/headers", "/body.jpg"])
def test_a_host_that_trickles_its_answer_is_cut_off_at_the_whole_download_limit(fetching, trickler, path):
    """Each read gets a byte well within the read timeout, so only a deadline for the whole download ends it (it
    once held a submission for 90 s and more)."""
    _, api = fetching
    started = time.monotonic()
    answer = submit_photo(api, trickler + path)
    assert answer.code == -101002 and "longer than the download limit of 1 s" in answer.message, answer.message
    assert time.monotonic() - started < 3


def test_downloads_beyond_the_workers_limit_fail_at_once_so_stalled_hosts_never_hold_every_thread(clock, trickler):
    app = create_app({**TIMING, "background": False, "fetch_total_timeout_seconds": 3.0, "slow_waits": 2},
                     clock=clock)
    api = in_process(app, clock)
    stalled = [threading.Thread(target=submit_photo, args=(api, f"{trickler}/body-{n}.jpg")) for n in range(2)]
    for thread in stalled:
        thread.start()
    time.sleep(0.5)
    started = time.monotonic()
    answer = submit_photo(api, f"{trickler}/third.jpg")
    assert answer.code == -101002 and "2 requests are already waiting on downloads or renders" in answer.message
    assert submit_photo(api, TEXT_PAYLOAD["RefPhotoUrl"]).code == 0  # the mock's own files need no download
    assert time.monotonic() - started < 1.5
    for thread in stalled:
        thread.join()


def test_parallel_downloads_from_a_host_that_answers_wait_their_turn_for_a_slot(clock, media_server):
    """Slots were taken or refused at once: 7 of 40 parallel submissions whose photos were on a healthy, fast host
    were refused -101002 "image download failed". A request now waits a quarter of a second for a slot to come
    free; one whose slots stay held by slow hosts is refused then."""
    from concurrent.futures import ThreadPoolExecutor

    from ivh_mock.mock_server.deadline import SLOT_WAIT_SECONDS, Waits, holding

    app = create_app({**TIMING, "background": False, "slow_waits": 3}, clock=clock)
    api = in_process(app, clock)
    start = threading.Barrier(6)

    def two(n: int) -> list[int]:  # six at once, for three slots: each waits a download or two at most
        start.wait(5)
        return [submit_photo(api, f"{media_server}/photo.jpg?n={n}-{k}").code for k in range(2)]

    with ThreadPoolExecutor(6) as pool:
        codes = [code for pair in pool.map(two, range(6)) for code in pair]
    assert codes == [0] * 12
    waits, held = Waits(1), threading.Event()

    def hold() -> None:
        with holding(waits, lambda limit: AssertionError("free")):
            held.set()
            time.sleep(1.0)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    started = time.monotonic()
    with pytest.raises(LookupError):
        with holding(waits, lambda limit: LookupError(limit)):
            pass
    assert SLOT_WAIT_SECONDS - 0.05 <= time.monotonic() - started < SLOT_WAIT_SECONDS + 0.5
    holder.join()


def test_a_host_that_closes_a_kept_connection_as_the_next_request_arrives_still_gives_its_file(fetching):
    """A redirect kept its connection alive, the host closed it as the next request came, and the download failed
    "could not be downloaded (ConnectionError)": any client sends such a GET again on a new connection. A redirect
    to a host that cannot be reached was reported against the first URL, not the one that failed."""
    _, api = fetching
    photo = portrait(480, 640)
    listener = socket.create_server(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                request = connection.recv(65536)
                if request.startswith(b"GET /moved"):  # kept alive; the next request on it gets no answer
                    connection.sendall(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /photo.jpg\r\n"
                                       b"Content-Length: 0\r\n\r\n")
                    connection.recv(65536)
                elif request.startswith(b"GET /gone"):
                    connection.sendall(b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/nowhere.jpg\r\n"
                                       b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                else:
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n"
                                       b"Connection: close\r\n\r\n%s" % (len(photo), photo))

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        answer = submit_photo(api, f"{base}/moved")
        assert answer.code == 0, answer.message
        answer = submit_photo(api, f"{base}/gone")
        assert answer.code == -101002 and "http://127.0.0.1:9/nowhere.jpg could not be downloaded" in answer.message
    finally:
        listener.close()


def test_judging_the_photo_is_not_charged_to_the_audios_download(clock, media_server, monkeypatch):
    """The 15 s a submission's downloads share ran from before the photo's download: the photo's check (its decode,
    or a wait for the large-decode lock) counted against the audio, which could fail 801010 "took longer" though
    both downloads were quick."""
    from ivh_mock.mock_server.media_in.intake import Verdicts

    judge = Verdicts.judge

    def slow_judge(self, *args, **kwargs):
        time.sleep(0.6)  # a photo decoding behind others
        return judge(self, *args, **kwargs)

    monkeypatch.setattr(Verdicts, "judge", slow_judge)
    app = create_app({**TIMING, "background": False, "fetch_total_timeout_seconds": 1.0}, clock=clock)
    progress = audio_task(in_process(app, clock), clock, f"{media_server}/slow-audio.wav")  # 0.5 s to answer
    assert progress["Status"] == "SUCCESS", progress


def test_a_download_the_deadline_cut_is_not_sent_again():
    """The resend of a GET whose connection was closed must not follow the deadline's own cut: a new connection,
    which no deadline watches until it is made, to a host known to stall (its listen queue full) had taken a
    download of a 1.5 s limit to the 3 s connect timeout."""
    from ivh_mock.mock_server.media_in import fetch

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address, held = listener.getsockname(), []

    def accept_one_then_fill_the_queue() -> None:
        held.append(listener.accept()[0])  # never answered
        held.append(socket.create_connection(address))  # the queue of one (backlog 0) is full: connects hang

    threading.Thread(target=accept_one_then_fill_the_queue, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(fetch.FetchFailed, match="took longer than the download limit of 1.5 s"):
            fetch.Fetcher(fetch.Limits(connect_timeout=3.0, total_timeout=1.5)).fetch(
                f"http://127.0.0.1:{address[1]}/p.jpg", 1000)
        assert time.monotonic() - started < 2.2
    finally:
        for connection in (*held, listener):
            connection.close()


def test_an_unreachable_photo_is_image_download_failed(api):
    answer = submit_photo(api, "http://127.0.0.1:9/photo.jpg")
    assert answer.code == -101002 and "Payload.RefPhotoUrl: image download failed" in answer.message


def test_audio_that_cannot_be_downloaded_fails_the_task_with_801010(fetching, media_server, clock):
    _, api = fetching
    assert audio_task(api, clock, f"{media_server}/audio.wav")["Duration"] == 3000
    report = audio_task(api, clock, f"{media_server}/missing.wav")
    assert (report["Status"], report["FailCode"]) == ("FAIL", 801010)
    assert "Payload.InputAudioUrl: audio download failed" in report["FailMessage"]


def test_a_slow_media_server_does_not_stop_other_requests(fetching, media_server):
    app, api = fetching
    slow = threading.Thread(target=submit_photo, args=(api, f"{media_server}/slow.jpg"))
    slow.start()
    time.sleep(0.1)
    started = time.monotonic()
    assert app.test_client().get("/__mock__/clock").status_code == 200
    assert time.monotonic() - started < 0.5
    slow.join()


MALFORMED_HOSTS = ["http://[", "http://[abc]/x.jpg", "http://a:b@[/x", "http://\u2100.com/x",
                   "http://" + "a" * 300 + ".com/x.jpg", "http://localhost:99999/x.jpg", "http://a\x1cb/x.jpg"]


@pytest.mark.parametrize("url", MALFORMED_HOSTS)
def test_a_media_url_whose_host_cannot_be_parsed_gets_the_documented_refusal(app, api, clock, url):
    photo = submit_photo(api, url)
    assert photo.status == 200 and photo.code == -101002, photo.message
    assert "Payload.RefPhotoUrl: image download failed" in photo.message
    report = audio_task(api, clock, url)
    assert (report["Status"], report["FailCode"]) == ("FAIL", 801010)
    callback = api.call("phototovideonotrain", {**TEXT_PAYLOAD, "CallbackUrl": url})
    assert callback.code == 0, callback.message
    clock.advance(3600)
    attempt = app.extensions["ivh_mock_dispatcher"].deliver(app.extensions["ivh_mock"].store.get_task(
        callback.payload["TaskId"]))
    assert attempt.status is None and attempt.error  # logged, never raised
    assert app.test_client().get("/__mock__/callbacks").status_code == 200
