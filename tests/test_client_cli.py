"""`ivh` in a subprocess against a running mock: submit, wait with progress, download, refusals, exit codes."""

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import av
import pytest
import requests

from . import forked
from .conftest import RawServer, ServeProcess, accepting, until

IVH = str(Path(sys.executable).with_name("ivh"))
PHOTO = "http://localhost/__mock__/assets/samples/photo.jpg"  # the mock's own sample, on any loopback port
AUDIO = "http://localhost/__mock__/assets/samples/audio-5s.wav"


@pytest.fixture(scope="module")
def mock_url(tmp_path_factory):
    with ServeProcess(tmp_path_factory.mktemp("data"), "--queue-seconds", "0.2", "--render-startup", "0.3",
                      "--render-speed", "0.05") as served:
        yield served.url


def ivh(*args, env=None, url=None, timeout=60):
    environment = {**os.environ, "IVH_APPKEY": "cli-app", "IVH_ACCESSTOKEN": "mock-accesstoken", **(env or {})}
    return forked.ivh([*(["--base-url", url] if url else []), *args], env=environment, timeout=timeout)


def test_an_empty_ivh_base_url_is_a_usage_error_not_the_live_api():
    result = ivh("timbres", "--retries", "0", env={"IVH_BASE_URL": ""})
    assert result.returncode == 2 and "IVH_BASE_URL is set but empty" in result.stderr, result.stderr
    assert "gw-sg.tvs.qq.com" not in result.stderr.split("unset it to call")[0]


def test_submit_wait_and_download(mock_url, tmp_path):
    target = tmp_path / "video.mp4"
    result = ivh("submit", "--photo", PHOTO, "--text", "你好，我是虚拟主播。", "--timbre", "female_1",
                 "--interval", "0.1", "--download", str(target), url=mock_url)
    assert result.returncode == 0, result.stderr
    task_id = result.stdout.splitlines()[0]
    assert re.fullmatch(r"[0-9a-f]{32}", task_id)
    assert f"{task_id}  SUCCESS  100%" in result.stdout
    assert "COMMIT" in result.stderr and "MAKING" in result.stderr and "100%" in result.stderr  # the progress bar
    with av.open(io.BytesIO(target.read_bytes())) as container:
        assert sorted(s.type for s in container.streams) == ["audio", "video"]


def test_a_download_to_a_file_name_that_is_not_utf8_is_written_under_it(mock_url, tmp_path):
    """`--download $'v\\xff.mp4'` (Python reads the byte as a lone surrogate) had ended in UnicodeEncodeError's
    traceback before anything was submitted."""
    target = tmp_path / "v\udcff.mp4"
    result = ivh("submit", "--photo", PHOTO, "--text", "你好，我是虚拟主播。", "--timbre", "female_1",
                 "--interval", "0.1", "--download", str(target), url=mock_url)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert (tmp_path / os.fsdecode(b"v\xff.mp4")).read_bytes()[4:8] == b"ftyp"


def test_a_download_past_max_mb_is_refused_as_it_comes(tmp_path):
    """`ivh --download` had no bound but its time: a server sending without end wrote 4.6 GB in 8 s."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler

    from ivh_mock.mock_server.serving.testing import QuietHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming): getprogress, finished, its video here
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            video = f"http://127.0.0.1:{self.server.server_port}/v.mp4"
            body = json.dumps({"Header": {"Code": 0, "Message": "", "RequestID": "r"}, "Payload": {
                "Status": "SUCCESS", "Progress": 100, "MediaUrl": video, "ArrayCount": 0, "Duration": 1000}}).encode()
            self._send(body)

        def do_GET(self):  # noqa: N802
            self._send(b"\0" * (2 * 1_048_576))

        def _send(self, body: bytes):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = QuietHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        refused = ivh("wait", "t" * 32, "--download", str(tmp_path / "v.mp4"), "--max-mb", "1", url=url)
        assert refused.returncode == 5 and "larger than max_bytes (1048576 bytes)" in refused.stderr, refused.stderr
        assert list(tmp_path.iterdir()) == []
        taken = ivh("wait", "t" * 32, "--download", str(tmp_path / "v.mp4"), "--max-mb", "2", url=url)
        assert taken.returncode == 0 and (tmp_path / "v.mp4").stat().st_size == 2 * 1_048_576
        assert "--max-mb: expected a whole number of MiB from 1" in ivh("wait", "x", "--max-mb", "0").stderr
    finally:
        server.shutdown()
        server.server_close()


def test_progress_and_wait_commands(mock_url):
    task_id = ivh("submit", "--photo", PHOTO, "--audio", AUDIO, url=mock_url).stdout.strip()
    shown = ivh("progress", task_id, url=mock_url)
    assert shown.returncode == 0 and task_id in shown.stdout
    waited = ivh("--json", "wait", task_id, "--interval", "0.1", url=mock_url)
    assert waited.returncode == 0 and '"Status": "SUCCESS"' in waited.stdout


def test_submit_json_prints_one_json_document_waiting_or_not(mock_url):
    """`ivh submit --wait --json` printed the submission and then the task's end as two documents, which no JSON
    reader takes as the output."""
    waited = ivh("--json", "submit", "--photo", PHOTO, "--audio", AUDIO, "--wait", "--interval", "0.1", url=mock_url)
    assert waited.returncode == 0, waited.stderr
    done = json.loads(waited.stdout)
    assert done["Status"] == "SUCCESS" and f"submitted {done['TaskId']} (request " in waited.stderr
    submitted = json.loads(ivh("--json", "submit", "--photo", PHOTO, "--audio", AUDIO, url=mock_url).stdout)
    assert sorted(submitted) == ["RequestID", "TaskId"]


def test_a_failed_task_waited_for_with_json_prints_its_end(mock_url):
    """`--json` printed nothing for a task that failed: its TaskId and FailCode were only in the text on stderr."""
    result = ivh("--json", "submit", "--photo", PHOTO, "--audio", AUDIO, "--scenario", "content_safety", "--wait",
                 "--interval", "0.1", url=mock_url)
    assert result.returncode == 3 and "failed: 801005" in result.stderr
    end = json.loads(result.stdout)
    assert end["Status"] == "FAIL" and end["FailCode"] == 801005 and len(end["TaskId"]) == 32
    waited = ivh("wait", end["TaskId"], "--json", url=mock_url)
    assert waited.returncode == 3 and json.loads(waited.stdout) == end


def test_an_output_that_cannot_be_written_is_said_with_the_submitted_task(mock_url):
    """`ivh submit > /dev/full` ended in an OSError traceback and exit 1 (refused) after the API had accepted the
    task, whose TaskId went nowhere: a script would submit, and pay, again."""
    with open("/dev/full", "w") as full:
        environment = {**os.environ, "IVH_APPKEY": "cli-full", "IVH_ACCESSTOKEN": "mock-accesstoken"}
        result = subprocess.run([IVH, "--base-url", mock_url, "submit", "--photo", PHOTO, "--audio", AUDIO],
                                stdout=full, stderr=subprocess.PIPE, text=True, env=environment, timeout=60)
    assert result.returncode == 141 and "Traceback" not in result.stderr, result.stderr
    said = re.fullmatch(r"ivh: the output could not be written: No space left on device; task (\w{32}) was "
                        r"submitted\n", result.stderr)
    assert said, result.stderr
    tasks = requests.get(f"{mock_url}/__mock__/tasks?appkey=cli-full", timeout=10).json()["tasks"]
    assert [task["task_id"] for task in tasks] == [said.group(1)]


def test_a_refused_request_prints_its_code_and_exits_1(mock_url):
    result = ivh("submit", "--photo", PHOTO, "--text", "hi", "--timbre", "female_1", url=mock_url)
    assert result.returncode == 1
    assert "error 100002: Payload.InputSsml must be at least 4 characters" in result.stderr
    assert "Traceback" not in result.stderr
    server_side = ivh("submit", "--photo", PHOTO, "--text", "hello there", "--timbre", "nobody", url=mock_url)
    assert server_side.returncode == 1 and "error 100002: Payload.SpeechParam.TimbreKey 'nobody'" in server_side.stderr


def test_a_failed_task_exits_3(mock_url):
    result = ivh("submit", "--photo", PHOTO, "--text", "hello there", "--timbre", "female_1", "--scenario",
                 "content_safety", "--wait", "--interval", "0.1", url=mock_url)
    assert result.returncode == 3 and "failed: 801005" in result.stderr
    task_id = result.stdout.splitlines()[0]
    shown = ivh("progress", task_id, url=mock_url).stdout.splitlines()
    assert shown[0] == f"{task_id}  FAIL" and shown[1].startswith("  failed: 801005 ")  # not "FAIL  -1%"


def test_a_timeout_exits_4(mock_url):
    result = ivh("submit", "--photo", PHOTO, "--text", "hello there", "--timbre", "female_1", "--scenario",
                 "stuck_in_queue", "--wait", "--timeout", "0.5", "--interval", "0.1", url=mock_url)
    assert result.returncode == 4 and "not finished after" in result.stderr


def test_timbres(mock_url):
    result = ivh("timbres", url=mock_url)
    assert result.returncode == 0 and result.stdout.count("\n") >= 43 and "female_23" in result.stdout


def test_bad_credentials_and_missing_credentials(mock_url):
    assert ivh("progress", "x", url=mock_url, env={"IVH_ACCESSTOKEN": "wrong"}).returncode == 1
    missing = ivh("progress", "x", url=mock_url, env={"IVH_APPKEY": ""})
    assert missing.returncode == 2 and "IVH_APPKEY" in missing.stderr


def test_a_submission_whose_verdict_never_came_back_exits_6_and_a_ctrl_c_while_it_is_sent_says_so():
    """A submission whose connection broke after it was sent exited 5, as a server never reached: resubmitting paid
    twice. And Ctrl-C while it was on its way said only `interrupted`."""
    import signal

    with RawServer(b"") as server:
        result = ivh("submit", "--photo", PHOTO, "--audio", AUDIO, url=server.url)
    assert result.returncode == 6 and "may have been accepted" in result.stderr and result.stdout == ""
    assert "6    the submission was sent" in ivh("--help").stdout
    with RawServer(b"", hang=True) as server:
        environment = {**os.environ, "IVH_APPKEY": "cli-app", "IVH_ACCESSTOKEN": "mock-accesstoken"}
        process = subprocess.Popen([IVH, "--base-url", server.url, "submit", "--photo", PHOTO, "--audio", AUDIO],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
        until(lambda: server.requests == 1)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)
    assert process.returncode == 130 and "the submission was on its way and may have been accepted" in err, err


@pytest.mark.slow
def test_an_unreachable_server_exits_5():
    result = ivh("progress", "x", "--retries", "1", url="http://127.0.0.1:9")  # one retry, after 0.5 s
    assert result.returncode == 5 and "Traceback" not in result.stderr
    # requests names the URL it failed on: the signed query's signature, valid for minutes, is not printed
    assert "&signature=[redacted]" in result.stderr and not re.search(r"signature=[^\[]", result.stderr)


@pytest.mark.parametrize("url", ["not-a-url", "ftp://127.0.0.1/", "http://127.0.0.1:99999", "http:///path",
                                 "http://127.0.0.1:0"])
def test_a_base_url_that_is_no_http_url_is_a_usage_error(url):
    """It exited 5, 'the server could not be reached', with requests' own words."""
    result = ivh("timbres", url=url)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (f"ivh: the base URL {url.rstrip('/')!r} is not an http or https URL with a host (and a "
                             f"port from 1 to 65535, if any)\n")


def test_retries_bounds_how_often_a_call_is_sent(mock_url):
    control = requests.put(f"{mock_url}/__mock__/accounts/cli-retry", json={"scenario": "rate_limited"}, timeout=10)
    assert control.status_code == 200, control.text
    result = ivh("progress", "x", "--retries", "1", url=mock_url, env={"IVH_APPKEY": "cli-retry"})
    assert result.returncode == 1 and "ivh: error" in result.stderr
    sent = requests.get(f"{mock_url}/__mock__/requests", params={"appkey": "cli-retry"}, timeout=10).json()
    assert [entry["operation"] for entry in sent["requests"]] == ["getprogress"] * 2  # the call and one retry


@pytest.mark.parametrize("count", ["-1", "two", "", "\u00b2"])
def test_retries_must_be_a_count(count, capsys):
    from ivh_mock.client.cli import main

    with pytest.raises(SystemExit) as exited:  # argparse's way out, in-process: no interpreter to start per case
        main(["progress", "x", "--retries", count])
    assert exited.value.code == 2
    assert f"argument --retries: expected a whole number of 0 or more, got {count!r}" in capsys.readouterr().err


def test_base_url_from_the_environment(mock_url):
    assert ivh("timbres", env={"IVH_BASE_URL": mock_url}).returncode == 0


def test_version():
    from importlib.metadata import version

    result = subprocess.run([IVH, "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.strip() == f"ivh {version('ivh-mock')}"


def test_options_are_accepted_after_the_command(mock_url):
    task_id = ivh("submit", "--photo", PHOTO, "--audio", AUDIO, "--base-url", mock_url).stdout.strip()
    shown = ivh("progress", task_id, "--json", "--base-url", mock_url)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["TaskId"] == task_id
    before = ivh("--json", "progress", task_id, url=mock_url)  # and still before it
    assert json.loads(before.stdout)["TaskId"] == task_id


def test_a_closed_pipe_ends_quietly(mock_url):
    environment = {**os.environ, "IVH_APPKEY": "cli-app", "IVH_ACCESSTOKEN": "mock-accesstoken"}
    process = subprocess.Popen([IVH, "--base-url", mock_url, "timbres"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=environment)
    process.stdout.close()  # the reader is gone before anything is written, as `| head` may be
    _, errors = process.communicate(timeout=60)
    assert errors == b"" and process.returncode == 141


def test_help_lists_every_exit_code():
    from ivh_mock.client.cli import EXIT_CODES

    shown = subprocess.run([IVH, "--help"], capture_output=True, text=True, timeout=30).stdout
    for code, meaning in EXIT_CODES.items():
        assert re.search(rf"^  {code} +{re.escape(meaning)}$", shown, re.M), (code, shown)


def test_missing_credentials_name_the_environment_variables(mock_url):
    missing = ivh("progress", "x", url=mock_url, env={"IVH_ACCESSTOKEN": ""})
    assert missing.returncode == 2
    assert missing.stderr.strip() == ("ivh: no credentials: set IVH_APPKEY and IVH_ACCESSTOKEN in the environment "
                                      "(and --base-url or IVH_BASE_URL to choose the server)")


@pytest.mark.parametrize("option, value", [("--interval", "-1"), ("--interval", "0"), ("--interval", "nan"),
                                           ("--timeout", "nan"), ("--timeout", "inf"), ("--timeout", "soon"),
                                           ("--timeout", "1e10")])
def test_wait_options_must_be_seconds_greater_than_0(option, value, capsys):
    """`--interval -1` ended in a ValueError traceback, 0 polled without pause, and a `--timeout nan` never ended;
    past a year it is no timeout (past about 9e9 s sockets refuse it)."""
    from ivh_mock.client.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["wait", "t", option, value])
    assert exited.value.code == 2
    assert (f"argument {option}: expected a number of seconds greater than 0 and at most a year (31622400), got "
            f"{value!r}") in capsys.readouterr().err


def test_a_download_that_could_not_be_written_is_refused_before_anything_is_submitted(tmp_path):
    """The destination was first written once the paid video was made: a missing folder then ended in a
    FileNotFoundError traceback (exit 1), and a folder wrote the whole file beside it, then failed."""
    os.mkfifo(tmp_path / "pipe")  # its reader would get nothing: the download renames a file over it
    # a link is written through: where it leads is what counts (a link into a missing folder had been taken, the task
    # made and waited for, then not written); a loop of links had been a RuntimeError traceback, exit 1
    (tmp_path / "link.mp4").symlink_to(tmp_path / "gone" / "v.mp4")
    (tmp_path / "loop.mp4").symlink_to(tmp_path / "loop.mp4")
    for destination, says in ((tmp_path / "missing" / "v.mp4", f"the folder {tmp_path / 'missing'} does not exist"),
                              (tmp_path / "link.mp4", f"the folder {tmp_path / 'gone'}, where the link leads, does "
                                                      f"not exist"),
                              (tmp_path / "loop.mp4", f"cannot write 'loop.mp4' in the folder {tmp_path}: Too many "
                                                      f"levels of symbolic links"),
                              (tmp_path, "is a folder; name the file to write"),
                              # a folder no one writes in, root included, whatever its permissions say
                              (Path("/proc/v.mp4"), "cannot write 'v.mp4' in the folder /proc: "),
                              # a name past the folder's limit: the video was made, then could not be written
                              (tmp_path / ("n" * 252 + ".mp4"), f"cannot write {'n' * 252 + '.mp4'!r} in the folder "),
                              (tmp_path / "pipe", "is not a regular file")):
        result = ivh("submit", "--photo", PHOTO, "--audio", AUDIO, "--download", str(destination),
                     url="http://127.0.0.1:9")  # nothing listens there: a submission would exit 5
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().startswith(f"ivh: --download {destination}: {says}")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["link.mp4", "loop.mp4", "pipe"]
    # an empty one (an unset $VARIABLE) had been no --download: submitted, neither waited for nor downloaded, exit 0
    for command in (["submit", "--photo", PHOTO, "--audio", AUDIO], ["wait", "t"]):
        result = ivh(*command, "--download", "", url="http://127.0.0.1:9")
        assert (result.returncode, result.stderr) == (2, "ivh: --download is empty: give the file to write the video "
                                                         "to, or leave the option out\n"), command
    # so had an empty --callback (a task with none), and an empty --timbre been "--text needs --timbre"
    for option, value, gives in (("--callback", "", "the URL the task's end is posted to"),
                                 ("--timbre", " ", "a TimbreKey (`ivh timbres` lists them)"),
                                 ("--scenario", "", "a scenario's name")):
        result = ivh("submit", "--photo", PHOTO, "--text", "hello there", "--timbre", "female_1", option,
                     value, url="http://127.0.0.1:9")
        assert (result.returncode, result.stderr) == (2, f"ivh: {option} is empty: give {gives}, or leave the option "
                                                         f"out\n"), option


def test_ctrl_c_while_waiting_ends_with_one_line(mock_url):
    environment = {**os.environ, "IVH_APPKEY": "cli-app", "IVH_ACCESSTOKEN": "mock-accesstoken"}
    task_id = ivh("submit", "--photo", PHOTO, "--audio", AUDIO, "--scenario", "stuck_in_queue",
                  url=mock_url).stdout.strip()
    process = subprocess.Popen([IVH, "--base-url", mock_url, "wait", task_id, "--interval", "0.2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    assert "COMMIT" in process.stderr.readline()  # waiting: its first poll is drawn
    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=30)
    assert process.returncode == 130 and errors.strip() == "ivh: interrupted", errors


def test_sigterm_while_downloading_ends_as_ctrl_c_does_leaving_no_partial_file(tmp_path):
    """SIGTERM (`timeout`'s, a CI job cancelled) killed ivh where it stood: a download left its hidden partial file
    beside the destination."""
    import socket
    import time

    with socket.create_server(("127.0.0.1", 0)) as listener:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        done = {"Status": "SUCCESS", "Progress": 100, "MediaUrl": f"{url}/v.mp4", "SubtitlesUrl": "", "ArrayCount": 0,
                "Duration": 1000, "FailCode": 0, "FailMessage": "", "TextTimestampResult": []}
        answer = json.dumps({"Header": {"Code": 0, "Message": "", "RequestID": "r"}, "Payload": done}).encode()

        def serve(connection: socket.socket) -> None:  # getprogress: done; the video: a few bytes, then nothing
            with connection:  # more until the client goes
                if connection.recv(65536).startswith(b"POST"):
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                       + str(len(answer)).encode() + b"\r\nConnection: close\r\n\r\n" + answer)
                    return
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10)
                with contextlib.suppress(OSError):
                    while connection.recv(1):
                        time.sleep(0.05)

        accepting(listener, serve)
        environment = {**os.environ, "IVH_APPKEY": "cli-app", "IVH_ACCESSTOKEN": "mock-accesstoken"}
        process = subprocess.Popen([IVH, "--base-url", url, "wait", "t", "--download", str(tmp_path / "v.mp4")],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
        try:
            until(lambda: any(tmp_path.iterdir()), seconds=30)  # its partial file: downloading
            process.send_signal(signal.SIGTERM)
            _, errors = process.communicate(timeout=30)
        finally:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM and errors.strip().endswith("ivh: stopped by SIGTERM"), errors
    assert list(tmp_path.iterdir()) == []


def test_closed_outputs_and_an_encoding_that_cannot_show_a_name_end_in_words_not_tracebacks(mock_url):
    """`>&-` had ended in an AttributeError traceback, `2>&-` put the error messages into the output, and
    PYTHONIOENCODING=ascii with a timbre's Chinese name in a UnicodeEncodeError."""
    environment = {**os.environ, "IVH_APPKEY": "cli-app", "IVH_ACCESSTOKEN": "mock-accesstoken"}
    closed_out = subprocess.run([IVH, "--base-url", mock_url, "progress", "t"], env=environment, stderr=subprocess.PIPE,
                                text=True, timeout=60, preexec_fn=lambda: os.close(1))
    assert closed_out.returncode == 141 and closed_out.stderr.strip() == "ivh: the output is closed"
    closed_err = subprocess.run([IVH, "--base-url", "http://127.0.0.1:9", "--retries", "0", "progress", "t"],
                                env=environment, stdout=subprocess.PIPE, text=True, timeout=60,
                                preexec_fn=lambda: os.close(2))
    assert closed_err.returncode == 5 and closed_err.stdout == ""


def test_a_name_the_outputs_encoding_cannot_show_is_escaped(monkeypatch):
    """PYTHONIOENCODING=ascii and a timbre's Chinese name had ended in a UnicodeEncodeError traceback."""
    import io
    import random

    import requests
    from ivh_mock.client import cli

    from .conftest import FixedAnswer
    from .test_client import envelope

    session = requests.Session()
    session.mount("http://ivh-mock.localhost", FixedAnswer(envelope({"Total": 1, "TimbreAssets": [
        {"TimbreKey": "female_1", "TimbreName": "温柔女声", "TimbreType": "standard", "TimbreSampleUrl": "",
         "TimbreDesc": ""}]})))
    real = cli.Client
    monkeypatch.setattr(cli, "Client", lambda **options: real("a", "t", "http://ivh-mock.localhost", session=session,
                                                              rng=random.Random(1)))
    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    assert cli.main(["timbres"], out=out, err=io.StringIO()) == 0
    out.flush()
    assert b"\\u6e29\\u67d4" in out.buffer.getvalue()


def test_a_scenario_with_blanks_about_it_is_sent_without_them(mock_url):
    """`--scenario " success"` passed the check and then failed in requests as if the server could not be reached
    (exit 5); HTTP takes the blanks about a header's value as none of it."""
    result = ivh("submit", "--photo", PHOTO, "--audio", AUDIO, "--scenario", " content_safety\t", "--wait",
                 "--interval", "0.1", url=mock_url)
    assert result.returncode == 3 and "failed: 801005" in result.stderr, result.stderr


def test_a_scenario_that_cannot_go_in_a_header_is_refused_as_usage(capsys):
    """`--scenario 慢` had ended in a UnicodeEncodeError traceback, and `--scenario $'a\\nb'` in exit 5."""
    from ivh_mock.client.cli import main

    for scenario in ("慢", "a\nb"):
        with pytest.raises(SystemExit) as exited:
            main(["submit", "--photo", PHOTO, "--audio", AUDIO, "--scenario", scenario])
        assert exited.value.code == 2 and "expected printable ASCII" in capsys.readouterr().err


@pytest.mark.parametrize("extra, named", [(["--volume", "5"], "--volume goes"), (["--speed", "1.2"], "--speed goes"),
                                          (["--timbre", "female_1", "--speed", "1"], "--timbre, --speed go")])
def test_speech_options_beside_an_audio_are_refused_rather_than_dropped(capsys, extra, named):
    """`ivh submit --audio ... --volume 5 --speed 1.2` had submitted without them and said nothing (SpeechParam
    voices the text; an audio is lip-synced as it sounds)."""
    from ivh_mock.client.cli import EXIT_USAGE, main

    assert main(["submit", "--photo", PHOTO, "--audio", AUDIO, *extra]) == EXIT_USAGE
    assert capsys.readouterr().err.startswith(f"ivh: {named} with --text")


def test_a_wait_on_a_server_gone_says_so_rather_than_that_the_task_is_slow():
    """With connections refused, `ivh wait --timeout 3` had said only "task t1 not finished"."""
    result = ivh("wait", "t1", "--timeout", "3", url="http://127.0.0.1:9")
    assert result.returncode == 4
    assert "the last poll failed: getprogress: " in result.stderr and "Connection refused" in result.stderr
    assert "signature=" not in result.stderr.replace("signature=[redacted]", "")


@pytest.mark.parametrize("argv, answer, exit_code", [
    (["progress", "t1"], {"Header": {"Code": 100002, "Message": "\x1b[2J\x1b]0;title\x07\r\nivh: \u202eenil ekaf",
                                     "RequestID": "r\x1b[31m"}, "Payload": {}}, 1),
    (["progress", "t1"], {"Header": {"Code": 0, "Message": "", "RequestID": "r"},
                          "Payload": {"Progress": -1, "MediaUrl": "", "Status": "FAIL", "ArrayCount": 0, "Duration": 0,
                                      "FailCode": 801009, "FailMessage": "\x1b[2J\r\nivh: fake line\x9b"}}, 0),
    (["wait", "t1"], {"Header": {"Code": 0, "Message": "", "RequestID": "r"},
                      "Payload": {"Progress": -1, "MediaUrl": "", "Status": "FAIL", "ArrayCount": 0, "Duration": 0,
                                  "FailCode": "\x1b[2J\r\nivh: fake line", "FailMessage": "\x9b"}}, 5),
    # (an answer not the API's ends the wait at once: a --timeout of 0.01 s had cut the first poll short on a loaded
    # machine, and the wait ended timed out, 4, before it could say so)
    (["wait", "t1", "--timeout", "5"], {"Header": {"Code": 0, "Message": "", "RequestID": "r"},
                                        "Payload": {"Progress": 0, "MediaUrl": "", "Status": "COMMIT",
                                                    "ArrayCount": "\x1b[2J\r\nivh: fake line", "Duration": 0}}, 5),
    (["submit", "--photo", "http://x/p.jpg", "--audio", "http://x/a.mp3"],
     {"Header": {"Code": 0, "Message": "", "RequestID": "r"}, "Payload": {"TaskId": "\x1b[2J\r\nivh: fake line"}}, 0),
    (["progress", "t1", "--json"], {"Header": {"Code": 0, "Message": "", "RequestID": "r"},
                                    "Payload": {"Progress": 1, "MediaUrl": "", "Status": "MAKING", "ArrayCount": 0,
                                                "Duration": 0, "TaskId": "\x1b[2J\r\nivh: fake line\x9b\x7f\u2066"}}, 0),
], ids=["refusal", "fail-message", "fail-code-not-the-apis", "queue-not-the-apis", "submitted-id", "json"])
def test_a_servers_control_characters_are_printed_escaped(argv, answer, exit_code, monkeypatch):
    """A message with ESC, BEL or a line break went to the terminal as it was: it could clear the screen, retitle the
    terminal or print a line that looked like ivh's own. JSON escapes C0 itself, but not DEL and C1 (CSI is \\x9b). A
    bidirectional control (U+202E) reordered what followed it."""
    import random

    import requests
    from ivh_mock.client import cli

    from .conftest import FixedAnswer

    session = requests.Session()
    session.mount("http://ivh-mock.localhost", FixedAnswer(json.dumps(answer).encode()))
    real = cli.Client
    monkeypatch.setattr(cli, "Client", lambda **options: real("a", "t", "http://ivh-mock.localhost", session=session,
                                                              rng=random.Random(1), max_retries=0, validate=False))
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(argv, out=out, err=err) == exit_code, err.getvalue()
    shown = out.getvalue() + err.getvalue()
    assert "\\x1b[2J" in shown or "\\u001b[2J" in shown, shown
    # no control character but line ends, nor a bidirectional one (U+202E: what follows reads backwards)
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]", shown), shown
    assert "\nivh: fake line" not in shown  # no line of the server's own
