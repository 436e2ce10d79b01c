"""The control API under /__mock__/: clock, reset, inspection, accounts, and its token."""

import json
import re
import socket
import threading
import time
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
import requests
from werkzeug.http import parse_date

from ivh_mock.mock_server import SystemClock, VirtualClock, create_app
from ivh_mock.mock_server.store import open_store

from .conftest import T0, TEXT_PAYLOAD, in_process
from .test_lifecycle import CONFIG, poll, submit, text

pytestmark = pytest.mark.all_stores


@pytest.fixture
def mock(clock, store_spec):
    return create_app({**CONFIG, "store": store_spec}, clock=clock)


@pytest.fixture
def control(mock):
    return mock.test_client()


@pytest.fixture
def api(mock, clock):
    return in_process(mock, clock)


def test_the_clock_can_be_read_set_advanced_and_frozen(control, clock):
    view = control.get("/__mock__/clock").json
    assert view == {"now": clock.now(), "iso": "2025-11-24T16:00:00+00:00", "frozen": True,
                    "offset": view["offset"], "real": False}
    assert abs(view["offset"] - (clock.now() - time.time())) < 60  # T0 lies in the past: the clock is behind
    assert control.post("/__mock__/clock", json={"advance": 90}).json["now"] == clock.now()
    assert control.post("/__mock__/clock", json={"set": 1_800_000_000}).json["now"] == 1_800_000_000
    running = control.post("/__mock__/clock", json={"frozen": False}).json
    assert running["frozen"] is False and clock.frozen is False
    assert control.post("/__mock__/clock", json={"frozen": True}).json["frozen"] is True


@pytest.mark.parametrize("body, named", [
    ({}, "body: {} should be non-empty"),
    ({"advance": -5}, "body/advance: -5 is less than the minimum of 0"),
    ({"advance": "5"}, "body/advance: \"5\" is not of type 'number'"),  # JSON's spelling, not Python's
    ({"rewind": 5}, "'rewind' was unexpected"),
    ({"real": False}, "body/real: true was expected"),
    (None, "the body must be a JSON object"),
    ([1], "body: [1] is not of type 'object'"),
])
def test_bad_clock_bodies_are_refused_by_name(control, body, named):
    response = control.post("/__mock__/clock", json=body) if body is not None else control.post("/__mock__/clock")
    assert response.status_code == 400
    assert named in response.json["error"]["message"]


@pytest.mark.stores("memory")
def test_a_refusal_quotes_a_few_unknown_fields_and_a_long_name_cut(control):
    """90,000 unknown keys had all come back, an answer of 889 KB, and a task id of 20,000 characters whole."""
    body = {**{f"k{n}": 0 for n in range(40_000)}, "x" * 400_000: 1}  # within the 1 MiB a body may have
    for response in (control.post("/__mock__/clock", json=body), control.put("/__mock__/accounts/a", json=body)):
        message = response.json["error"]["message"]
        assert response.status_code == 400 and len(message) < 300, message[:300]
        assert "('k0', 'k1', 'k2', 'k3', 'k4' and 39996 more were unexpected)" in message
    one = control.post("/__mock__/clock", json={"x" * 400_000: 1}).json["error"]["message"]
    assert one.endswith(f"Additional properties are not allowed ('{'x' * 77}...' was unexpected)"), one
    missing = control.get("/__mock__/tasks/" + "a" * 20_000)
    assert missing.status_code == 404 and len(missing.json["error"]["message"]) < 120


@pytest.fixture
def stored(store_spec):
    """A mock on the clock it keeps in its store, as `ivh-mock serve` runs: it starts in step with real time."""
    return create_app({**CONFIG, "store": store_spec}).test_client()


@pytest.mark.parametrize("move, value, says", [
    ("advance", float("nan"), "a clock advances by a finite number of seconds, got nan"),
    ("advance", float("inf"), "a clock advances by a finite number of seconds, got inf"),
    ("advance", "5", "a clock advances by a finite number of seconds, got '5'"),
    ("advance", 1e12, "past 253402300799 (9999-12-31T23:59:59Z), the latest time it takes"),  # milliseconds
    ("set", float("nan"), "a clock is set to Unix seconds from 0 to 253402300799"),
    ("set", -1, "a clock is set to Unix seconds from 0 to 253402300799"),
    ("advance", 10**400, "past 253402300799"),  # an int too large for a float raised OverflowError
    ("set", 10**400, "a clock is set to Unix seconds from 0 to 253402300799"),
])
def test_a_clock_moved_in_python_is_held_to_the_control_apis_range(move, value, says):
    """The fixtures' `advance()` took NaN: the clock read NaN, every task was done at once, and the client failed far
    away (`cannot convert float NaN to integer`); 1e12 (milliseconds) broke every signature check."""
    clock = VirtualClock(start=T0)
    with pytest.raises(ValueError, match=re.escape(says)):
        getattr(clock, move)(value)
    assert clock.now() == T0


def test_a_set_and_an_advance_to_the_latest_time_are_applied_together_on_a_running_clock(store_spec):
    """The body's moves were checked from where the request found the clock, then the advance again from where the
    running clock had moved on to: a body that reaches the latest time exactly answered 400 after its set was kept."""
    ticks = iter(T0 + n / 1000 for n in range(1_000_000))  # real time moves on between any two readings
    clock = VirtualClock(frozen=False, source=lambda: next(ticks))
    control = create_app({**CONFIG, "store": store_spec}, clock=clock).test_client()
    moved = control.post("/__mock__/clock", json={"set": 253_402_300_699, "advance": 100})
    assert moved.status_code == 200 and 253_402_300_799 <= moved.json["now"] < 253_402_300_800


def test_the_clocks_latest_time_is_the_control_apis():
    from ivh_mock.mock_server.clock import LATEST
    from ivh_mock.mock_server.routes.control import SCHEMAS

    assert SCHEMAS["clock"]["properties"]["set"]["maximum"] == SCHEMAS["clock"]["properties"]["advance"]["maximum"]
    assert SCHEMAS["clock"]["properties"]["set"]["maximum"] == LATEST


def test_the_fixtures_refuse_what_the_control_api_refuses():
    """`reset(123)` answered nothing although the control API refused it; `set_scenario(None, ...)` made an account
    named "None"."""
    from ivh_mock.mock_server import MockServer

    with MockServer() as mock:
        with pytest.raises(ValueError, match="body/appkey: 123 is not of type 'string'"):
            mock.reset(123)
        for appkey in (None, 123, ""):
            with pytest.raises(ValueError, match="appkey must be a non-empty string"):
                mock.set_scenario(appkey, "fail")
        for read in (mock.tasks, mock.callbacks, mock.requests):  # "" had read every account's, as None does
            with pytest.raises(ValueError, match="appkey must be a non-empty string, got ''"):
                read("")
        assert mock.set_scenario("team/a", "fail")["appkey"] == "team/a"
        with pytest.raises(ValueError, match="no task 'nope'"):  # came back as the error's JSON
            mock.task("nope")


def test_outside_pytest_the_helpers_are_context_managers_and_the_client_moves_the_clock(capfd):
    """A plain Client of a MockServer waited in real time on a frozen clock, for ever; CallbackReceiver was no
    context manager, as the README said; werkzeug wrote a line per request to stderr."""
    from ivh_mock.mock_server import CallbackReceiver, MockServer

    with MockServer() as mock, CallbackReceiver() as receiver:
        client = mock.client("outside")
        task = client.phototovideonotrain({**TEXT_PAYLOAD, "RefPhotoUrl": mock.sample("photo.jpg"),
                                           "CallbackUrl": receiver.url})
        started = time.monotonic()
        assert client.wait(task.task_id, timeout=600).status == "SUCCESS"  # mock seconds, not real ones
        assert time.monotonic() - started < 30 and client.appkey == "outside"
        assert receiver.wait_for(1)[0]["body"]["Payload"]["TaskId"] == task.task_id
        with pytest.raises(ValueError, match="no sample 'photo.tiff'; the mock lists them at"):
            mock.sample("photo.tiff")
    assert receiver.server.socket.fileno() == -1  # closed by the with block
    assert "POST /v2/ivh" not in capfd.readouterr().err


def test_outside_pytest_a_request_the_fixture_server_refuses_itself_prints_nothing():
    """werkzeug logs through a handler of its own where no logging is set up (outside pytest), and wrote
    `code 414, message Request-URI Too Long` to stderr for a request it refused itself."""
    import subprocess
    import sys

    script = ("import requests\nfrom ivh_mock.mock_server import MockServer\nwith MockServer() as mock:\n"
              "    assert requests.get(mock.base_url + '/' + 'a' * 70_000, timeout=10).status_code == 414\n")
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0 and ran.stderr == "", ran.stderr


def test_the_fixtures_list_a_callback_the_receiver_already_holds():
    """The receiver records a callback as it reads it, and the mock its attempt once the answer is back: read in
    between, the list missed it (1 run in 3 of a test that waited for the receiver, then read the list)."""
    from ivh_mock.mock_server import CallbackReceiver, MockServer

    with MockServer() as mock, CallbackReceiver(mode="slow", delay=0.5) as receiver:
        client = mock.client("holder")
        task = client.phototovideonotrain({**TEXT_PAYLOAD, "RefPhotoUrl": mock.sample("photo.jpg"),
                                           "CallbackUrl": receiver.url})
        client.wait(task.task_id, timeout=600)
        receiver.wait_for(1)  # the receiver has it, and answers half a second later
        assert [callback["task_id"] for callback in mock.callbacks()] == [task.task_id]


def test_right_after_advance_the_fixtures_list_the_callbacks_that_fell_due_and_the_task_shows_them():
    """Right after `advance()`, `callbacks()` was empty in 40 runs of 40: the dispatcher had not yet claimed the
    callback due, and only a delivery under way was waited for; `task(id)["callbacks"]` waited for nothing."""
    from ivh_mock.mock_server import MockServer

    with MockServer() as mock:
        client = mock.client("due")
        task = client.phototovideonotrain({**TEXT_PAYLOAD, "RefPhotoUrl": mock.sample("photo.jpg"),
                                           "CallbackUrl": "http://127.0.0.1:9/cb"})  # refused: recorded at once
        mock.advance(60)
        assert [callback["task_id"] for callback in mock.callbacks()] == [task.task_id]
        assert mock.task(task.task_id)["callbacks"], mock.task(task.task_id)


def test_a_fixture_stopped_right_after_advance_delivers_the_callbacks_due_first(monkeypatch):
    """Due, and not yet claimed by the dispatcher as the test ended: the stop lost them with the store (7 callbacks
    of 100 tests that each ended right after `advance()`). The dispatcher is not woken by the move here, so that each
    waits for the stop."""
    from ivh_mock.mock_server import CallbackReceiver, MockServer
    from ivh_mock.mock_server.lifecycle.callbacks import CallbackDispatcher

    monkeypatch.setattr(CallbackDispatcher, "wake", lambda self: None)
    with CallbackReceiver() as receiver:
        sent = []
        for _ in range(3):
            with MockServer() as mock:
                client = mock.client("ended")
                sent.append(client.phototovideonotrain({**TEXT_PAYLOAD, "RefPhotoUrl": mock.sample("photo.jpg"),
                                                        "CallbackUrl": receiver.url}).task_id)
                mock.advance(600)
        assert sorted(callback["body"]["Payload"]["TaskId"] for callback in receiver.received) == sorted(sent)


def test_the_fixtures_server_says_100_continue_once():
    """http.server answered `Expect: 100-continue` with a 100 Continue, and werkzeug with another."""
    from ivh_mock.mock_server import MockServer

    body = b'{"Header": {}, "Payload": {"TaskId": "x"}}'
    with MockServer() as mock, socket.create_connection(urlsplit(mock.base_url).netloc.split(":"), timeout=10) as sock:
        sock.sendall(b"POST /v2/ivh/videomaker/broadcastservice/getprogress HTTP/1.1\r\nHost: h\r\nContent-Type: "
                     b"application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        assert sock.recv(25) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer = b""
        while b'"Code"' not in answer:  # the envelope's Header comes first
            answer += sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 401 ") or answer.startswith(b"HTTP/1.1 200 "), answer[:40]


def test_a_stopped_fixture_says_so_rather_than_answering(tmp_path):
    """A mock kept past its test answered advance(), now(), tasks() and sample() as if it served, and the client it
    made met a refused connection."""
    from ivh_mock.mock_server import MockServer

    mock = MockServer()
    client = mock.client("kept")
    mock.stop()
    for call in (lambda: mock.advance(5), mock.now, mock.tasks, lambda: mock.sample("photo.jpg"),
                 lambda: mock.client("kept"), lambda: mock.upload(b"x", "x.jpg"), mock.reset):
        with pytest.raises(RuntimeError, match=r"this MockServer \(http://127.0.0.1:\d+\) is stopped"):
            call()
    with pytest.raises(RuntimeError, match="is stopped"):
        client.wait("t" * 32, timeout=5)  # it moves the clock of its mock
    mock.stop()  # a second stop does nothing


def test_the_fixtures_server_sends_one_date_on_every_answer():
    """Result and asset URLs answered two Date fields (the server's and send_file's): `Date: ..., ...` once joined."""
    import http.client

    from ivh_mock.mock_server import MockServer

    with MockServer() as mock:
        connection = http.client.HTTPConnection(mock.base_url.removeprefix("http://"), timeout=10)
        photo = mock.sample("photo.jpg").removeprefix(mock.base_url)
        for path in (photo, photo, "/__mock__/clock", "/v2/ivh/videomaker/broadcastservice/getprogress"):
            connection.request("GET", path)  # kept alive: each answer on one connection
            answer = connection.getresponse()
            answer.read()
            assert len(answer.headers.get_all("Date")) == 1, (path, answer.headers.get_all("Date"))
        connection.request("GET", photo, headers={"Range": "bytes=0-9"})
        answer = connection.getresponse()
        assert answer.status == 206 and len(answer.read()) == 10 and len(answer.headers.get_all("Date")) == 1


def test_the_fixtures_list_every_task_and_request_not_the_newest_500():
    """`tasks()` and `requests()` read the list routes, which keep the newest 500 by default: a test of 501 tasks saw
    500, the first one missing."""
    from ivh_mock.mock_server import MockServer

    with MockServer() as mock:
        api = in_process(mock.app, mock.clock, appkey="many")
        first, *_ = [submit(api, TEXT_PAYLOAD) for _ in range(501)]
        tasks = mock.tasks("many")
        assert len(tasks) == 501 and tasks[0]["task_id"] == first
        assert len(mock.requests("many")) == 501 and len(mock.tasks()) == 501


def test_the_fixtures_carry_the_control_token_and_listen_where_asked_or_say_why_not():
    """With a control_token, every inspection method was refused (`tasks()` a KeyError); `host="::1"` gave the URL
    `http://::1:PORT`; a host the machine lacks exited the process (SystemExit) and left the dispatcher thread
    running; `host="0.0.0.0"` left the control API open to the network, where `serve` never does."""
    import threading

    from ivh_mock.mock_server import CallbackReceiver, MockServer

    with MockServer({"control_token": "fixture-token-1234"}) as mock:
        assert mock.tasks() == [] and mock.configure("tok", concurrency=2)["concurrency"] == 2
        assert requests.get(mock.base_url + "/__mock__/tasks", timeout=10).status_code == 401
        assert mock.control_token == "fixture-token-1234"
    before = set(threading.enumerate())
    with pytest.raises(OSError, match=r"cannot listen on 192\.0\.2\.1: "):
        MockServer(host="192.0.2.1")  # TEST-NET-1: no address of this machine
    with pytest.raises(OSError, match=r"^\[Errno -?\d+\] cannot listen on not a host: (?!Unknown error)"):
        MockServer(host="not a host")  # said "Unknown error -2", getaddrinfo's errno read as the system's
    assert set(threading.enumerate()) <= before
    with MockServer(host="0.0.0.0") as mock:
        port = urlsplit(mock.base_url).port
        assert mock.control_token  # made, as serve makes one beyond loopback
        assert requests.get(f"http://127.0.0.1:{port}/__mock__/tasks", timeout=10).status_code == 401
        assert mock.tasks() == []
    try:
        server = MockServer(host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with server as mock, CallbackReceiver(host="::1") as receiver:
        assert mock.base_url.startswith("http://[::1]:") and receiver.url.startswith("http://[::1]:")
        assert mock.control_token is None
        client = mock.client("six")
        task = client.phototovideonotrain({**TEXT_PAYLOAD, "RefPhotoUrl": mock.sample("photo.jpg"),
                                           "CallbackUrl": receiver.url})
        assert client.wait(task.task_id, timeout=600).status == "SUCCESS"
        assert receiver.wait_for(1)[0]["body"]["Payload"]["TaskId"] == task.task_id


def test_a_moved_clock_sweeps_at_once_and_a_swept_tasks_subtitles_go_with_its_video():
    """MockServer.advance left expired files to the dispatcher's sweep, every 30 s of real time: a clock set back
    after 8 days served the video again or not, by how long the test had run, and the subtitles always."""
    from ivh_mock.mock_server import MockServer

    with MockServer() as mock:
        client = mock.client("swept")
        task = client.phototovideonotrain({**TEXT_PAYLOAD, "RefPhotoUrl": mock.sample("photo.jpg")})
        done = client.wait(task.task_id, timeout=600)
        start = mock.now()
        mock.advance(8 * 86400)
        mock.clock.set(start)
        for url in (done.media_url, done.subtitles_url):
            assert requests.get(url, timeout=10).status_code == 404, url


def test_the_task_list_reads_each_accounts_queue_once_and_counts_as_getprogress_does(mock, control, api, monkeypatch):
    """Each queued task of the list counted the tasks queued before it with a query of its own: 200 tasks queued
    behind 5,000 took half a second on SQLite, on every poll of the dashboard."""
    control.put("/__mock__/accounts/queued", json={"concurrency": 1})
    queued = replace(api, appkey="queued")
    ids = [submit(queued, TEXT_PAYLOAD) for _ in range(6)] + [submit(api, TEXT_PAYLOAD)]
    store = mock.extensions["ivh_mock"].store
    counted = {task_id: poll(queued if task_id in ids[:6] else api, task_id)["ArrayCount"] for task_id in ids}
    assert max(counted.values()) >= 4  # one task renders at a time in "queued": the others wait
    monkeypatch.setattr(store, "count_waiting", lambda *args: pytest.fail("counted one task's queue"))
    listed = control.get("/__mock__/tasks").json["tasks"]
    assert {task["task_id"]: task["array_count"] for task in listed} == counted


def test_real_true_returns_a_moved_clock_to_real_time(stored):
    assert stored.get("/__mock__/clock").json["real"] is True
    moved = stored.post("/__mock__/clock", json={"advance": 21_065, "frozen": True}).json
    assert moved["frozen"] is True and moved["real"] is False and moved["offset"] > 21_000
    back = stored.post("/__mock__/clock", json={"real": True}).json
    assert back["real"] is True and back["frozen"] is False and abs(back["offset"]) < 1
    assert abs(back["now"] - time.time()) < 5


def test_real_true_applies_before_the_other_moves(stored):
    stored.post("/__mock__/clock", json={"set": 1_000_000_000})
    moved = stored.post("/__mock__/clock", json={"real": True, "advance": 3600}).json
    assert 3590 < moved["offset"] < 3610 and moved["real"] is False


def test_reset_of_everything_returns_the_clock_to_real_time_but_one_account_does_not(stored):
    stored.post("/__mock__/clock", json={"advance": 5000, "frozen": True})
    stored.post("/__mock__/reset", json={"appkey": "test-app"})
    assert stored.get("/__mock__/clock").json["offset"] > 4900
    stored.post("/__mock__/reset")
    view = stored.get("/__mock__/clock").json
    assert view["real"] is True and view["frozen"] is False


def test_a_clock_held_by_one_run_is_moved_by_no_other_until_it_lets_go_or_its_hold_lapses(stored):
    """Two contract-suite runs against one served mock moved its clock under each other, and the second to end put
    back the clock frozen as it had found it (frozen by the first): the mock stayed frozen, its tasks never
    finished. A run holds the clock now; every other POST to it is refused, naming the holder."""
    held = stored.post("/__mock__/clock", json={"by": "run-a", "hold": 600, "advance": 60, "frozen": True}).json
    assert held["held"]["by"] == "run-a" and 590 < held["held"]["until"] - time.time() <= 600
    assert stored.get("/__mock__/clock").json["held"] == held["held"]
    for body in ({"advance": 10}, {"real": True}, {"by": "run-b", "hold": 600}, {"by": "run-b", "frozen": False},
                 {"by": "run-b", "release": True}):
        refused = stored.post("/__mock__/clock", json=body)
        assert refused.status_code == 409, body
        assert refused.json["error"]["message"].startswith("the clock is held by 'run-a' for 600 s more")
    assert stored.get("/__mock__/clock").json["now"] == held["now"]  # nothing of them moved it
    moved = stored.post("/__mock__/clock", json={"by": "run-a", "advance": 5, "release": True}).json  # its own
    assert moved["now"] == held["now"] + 5 and "held" not in moved
    assert stored.post("/__mock__/clock", json={"by": "run-b", "hold": 600}).json["held"]["by"] == "run-b"
    released = stored.post("/__mock__/clock", json={"by": "run-b", "real": True, "release": True}).json
    assert "held" not in released and released["real"] is True
    assert stored.post("/__mock__/clock", json={"advance": 1}).status_code == 200
    # a body refused takes no hold either: it had held the clock for its `by` all the same
    past = stored.post("/__mock__/clock", json={"by": "run-c", "hold": 60, "advance": 253_402_300_000})
    assert past.status_code == 400 and "held" not in stored.get("/__mock__/clock").json
    # a hold whose run is gone goes with a reset of everything, as the clock's moves do
    stored.post("/__mock__/clock", json={"by": "gone", "hold": 600})
    stored.post("/__mock__/reset", json={"appkey": "test-app"})
    assert stored.get("/__mock__/clock").json["held"]["by"] == "gone"
    stored.post("/__mock__/reset")
    assert "held" not in stored.get("/__mock__/clock").json


def test_a_hold_lapses_by_real_time_and_its_holder_sets_when():
    from ivh_mock.mock_server.clock import Held, moved_by

    now = [1_000.0]
    clock = VirtualClock(start=T0, source=lambda: now[0])
    clock.hold("run-a", 60)
    clock.hold("run-a", 10)  # its own, sent again: until then, not longer (nor any other's)
    assert clock.holder() == {"by": "run-a", "until": 1_010.0}
    now[0] = 1_009.5
    with moved_by("run-b"), pytest.raises(Held, match="for 1 s more"):  # its last second is no "0 s more"
        clock.advance(5)
    now[0] = 1_010.0  # lapsed: anyone moves it, and another may hold it
    assert clock.holder() is None
    with moved_by("run-b"):
        clock.advance(5)
        clock.hold("run-b", 60)
    assert clock.holder()["by"] == "run-b"


def test_a_move_is_held_to_the_hold_in_the_same_step_and_the_processs_own_moves_are_not():
    """The control API looked at the hold, then moved: a move sent as another run took the hold landed all the same.
    Each move within `moved_by` is checked as it is made; the fixtures' own moves (no `by`) are not held."""
    from ivh_mock.mock_server.clock import Held, moved_by

    clock = VirtualClock(start=T0)
    clock.hold("run-b", 60)
    with moved_by("run-a"), pytest.raises(Held, match="the clock is held by 'run-b' for 60 s more"):
        clock.advance(5)
    with moved_by(None), pytest.raises(Held):
        clock.freeze(False)
    with moved_by("run-b"):
        clock.advance(5)
    clock.advance(5)  # the process's own (MockServer.advance): no hold stops it
    assert clock.now() == T0 + 10 and clock.frozen


@pytest.mark.stores("memory")
@pytest.mark.parametrize("body, named", [
    ({"hold": 60}, "body/hold needs body/by: who holds the clock"),
    ({"release": True}, "body/release needs body/by: who holds the clock"),
    ({"by": "", "hold": 60}, "body/by: is 0 characters long; it must have at least 1"),
    ({"by": "a", "hold": 0}, "body/hold: 0 is less than the minimum of 1"),
    ({"by": "a", "hold": 86401}, "body/hold: 86401 is greater than the maximum of 86400"),
    ({"by": "a", "release": False}, "body/release: true was expected"),
    ({"by": "evil\u001b[31mRED\nsecond line", "hold": 60}, "body/by: 'evil\\x1b[31mRED\\nsecond line' is no name"),
    ({"by": " \t", "hold": 60}, "printable characters, not only blanks"),
    ({"by": "\u202egnp.exe", "hold": 60}, "is no name"),  # turned round as shown
])
def test_a_hold_names_who_holds_it_and_for_how_long(stored, body, named):
    refused = stored.post("/__mock__/clock", json=body)
    assert refused.status_code == 400 and named in refused.json["error"]["message"], refused.json


def _meanwhile(action) -> None:
    """Run `action` on a thread of its own and wait for it: another client's request, under way meanwhile."""
    worker = threading.Thread(target=action)
    worker.start()
    worker.join()


def _kept_as_of_now(stored) -> list[dict]:
    listed = stored.get("/__mock__/tasks").json["tasks"]
    assert all(abs(task["submitted_at"] - time.time()) < 60 for task in listed), listed
    return listed


def test_a_submission_that_read_the_clock_before_a_reset_is_planned_again_on_the_clock_after(stored, monkeypatch):
    """A submission whose write came after a full reset, having read the clock (moved ten days on) before it, was
    kept as planned on that clock: submitted ten days in the future, its account's later tasks queued behind it."""
    app = stored.application
    store = app.extensions["ivh_mock"].store
    stored.post("/__mock__/clock", json={"advance": 864_000, "frozen": True})
    add_task = store.add_task

    def after_a_reset(*args, **kwargs):  # the request has read the clock; a reset comes before its write
        monkeypatch.setattr(store, "add_task", add_task)
        _meanwhile(lambda: stored.application.test_client().post("/__mock__/reset"))
        return add_task(*args, **kwargs)

    monkeypatch.setattr(store, "add_task", after_a_reset)
    task_id = submit(in_process(app, SystemClock()), TEXT_PAYLOAD)  # signed with real time, as most clients sign
    assert [task["task_id"] for task in _kept_as_of_now(stored)] == [task_id]


def test_a_submission_made_while_a_reset_is_under_way_is_not_kept_planned_on_the_clock_before(stored, monkeypatch):
    """The reset forgot the tasks, then returned the clock to real time: a submission written between the two was
    planned on the clock before (ten days on) and kept."""
    app = stored.application
    store = app.extensions["ivh_mock"].store
    stored.post("/__mock__/clock", json={"advance": 864_000, "frozen": True})
    reset, made = store.reset, []

    def and_a_submission(*args, **kwargs):
        reset(*args, **kwargs)
        if not made:
            _meanwhile(lambda: made.append(submit(in_process(app, SystemClock()), TEXT_PAYLOAD)))

    monkeypatch.setattr(store, "reset", and_a_submission)
    assert stored.post("/__mock__/reset").status_code == 200 and len(made) == 1
    assert [task["task_id"] for task in _kept_as_of_now(stored)] == made
    assert stored.get("/__mock__/clock").json["real"] is True


def test_a_full_reset_keeps_a_frozen_test_clock_frozen_at_real_time(control, clock):
    control.post("/__mock__/reset")
    assert clock.frozen and abs(clock.now() - time.time()) < 5


def test_advancing_the_clock_moves_tasks_along(api, control):
    task_id = submit(api, text())
    control.post("/__mock__/clock", json={"advance": 60})
    assert poll(api, task_id)["Status"] == "SUCCESS"


def test_tasks_list_and_detail(api, control, clock):
    mine = submit(api, text(CallbackUrl="http://127.0.0.1:9/hook"), scenario="fail:at=60")
    other = submit(replace(api, appkey="other-app"), text())
    listed = control.get("/__mock__/tasks?appkey=test-app").json["tasks"]
    assert [t["task_id"] for t in listed] == [mine]
    assert listed[0]["status"] == "COMMIT" and listed[0]["scenario"] == "fail:at=60"
    assert {t["task_id"] for t in control.get("/__mock__/tasks").json["tasks"]} == {mine, other}

    clock.advance(60)
    detail = control.get(f"/__mock__/tasks/{mine}").json
    assert detail["request"]["InputSsml"] == "你好，我是虚拟主播。"
    assert [step["Status"] for step in detail["timeline"]] == ["COMMIT", "MAKING", "FAIL"]
    assert detail["plan"]["outcome"] == "FAIL" and detail["plan"]["fail_code"] == 801000
    assert detail["progress"] == poll(api, mine)
    assert control.get("/__mock__/tasks/" + "0" * 32).status_code == 404


def test_a_tasks_page_reads_its_delivery_alone(mock, api, control, clock, monkeypatch):
    """It read its account's whole delivery log, kept until a reset, to find the one of its task."""
    from dataclasses import asdict

    from ivh_mock.mock_server.store import CallbackAttempt

    task_id = submit(api, text(CallbackUrl="http://127.0.0.1:9/hook"))
    other = submit(api, text(CallbackUrl="http://127.0.0.1:9/hook"))
    clock.advance(60)
    store = mock.extensions["ivh_mock"].store
    deliveries = [CallbackAttempt(task_id=made, appkey="test-app", url="http://127.0.0.1:9/hook", at=clock.now(),
                                  body={"Payload": {"TaskId": made}}, status=200) for made in (task_id, other)]
    for delivery in deliveries:
        store.record_callback(delivery)
    store.record_callback(replace(deliveries[0], status=500))  # a lapsed claim's holder delivered it as well
    monkeypatch.setattr(store, "callbacks", lambda *args, **kwargs: pytest.fail("read the account's whole log"))
    assert control.get(f"/__mock__/tasks/{task_id}").json["callbacks"] == [asdict(deliveries[0]),
                                                                           {**asdict(deliveries[0]), "status": 500}]


def test_the_request_journal_shows_each_verdict(api, control):
    submit(api, text())
    api.call("phototovideonotrain", text(DriverType="Txt"))
    entries = control.get("/__mock__/requests?appkey=test-app").json["requests"]
    assert [(e["operation"], e["verdict"], e["code"]) for e in entries] == [
        ("phototovideonotrain", "accepted", 0), ("phototovideonotrain", "rejected", 100002)]
    assert "Payload.DriverType must be one of" in entries[1]["message"]
    assert entries[0]["body"]["Payload"]["DriverType"] == "Text"


def test_reset_one_account_or_all(api, control, clock):
    other = replace(api, appkey="other-app")
    mine, theirs = submit(api, text()), submit(other, text())
    assert control.post("/__mock__/reset", json={"appkey": "test-app"}).json == {"reset": "test-app"}
    assert api.call("getprogress", {"TaskId": mine}).code == 110006
    assert poll(other, theirs)["Status"] == "COMMIT"
    assert control.get("/__mock__/requests?appkey=test-app").json["requests"][-1]["code"] == 110006
    control.post("/__mock__/reset")
    assert other.call("getprogress", {"TaskId": theirs}).code == 110006


def test_an_appkey_with_a_slash_is_managed_and_one_too_long_for_the_api_is_refused(api, control):
    """Any appkey of up to 128 characters is the API's, `team/a` too; the control API answered 404 for its URL
    (`/accounts/team%2Fa`), and accepted in the URL an appkey the API refuses (the body's was bounded)."""
    assert api.call("getprogress", {"TaskId": "0" * 32}).code == 110006  # authenticated as test-app
    changed = control.put("/__mock__/accounts/team%2Fa", json={"max_pending": 3})
    assert changed.status_code == 200 and changed.json["appkey"] == "team/a" and changed.json["max_pending"] == 3
    assert control.get("/__mock__/accounts/team%2Fa").json["max_pending"] == 3
    for sent, appkey in (("a%0Ab", "a\nb"), ("a%0D%0Ab", "a\r\nb")):  # the API takes them: werkzeug's path did not
        assert control.put(f"/__mock__/accounts/{sent}", json={"max_pending": 4}).json["appkey"] == appkey
        assert control.get(f"/__mock__/accounts/{sent}").json["max_pending"] == 4
    too_long = control.put("/__mock__/accounts/" + "a" * 129, json={"max_pending": 3})
    assert too_long.status_code == 400
    assert too_long.json["error"]["message"] == "the URL's appkey is 129 characters long; an appkey has at most 128"
    # bytes that are no UTF-8 had each been read as U+FFFD: `ab%FFcd` and `ab%FEcd` set one account
    for sent in ("ab%FFcd", "ab%ED%A0%80"):
        refused = control.put(f"/__mock__/accounts/{sent}", json={"max_pending": 5})
        assert refused.status_code == 400 and refused.json["error"]["message"] == (
            "the URL's appkey is not UTF-8 text: percent-encode its UTF-8 bytes")
    assert control.put("/__mock__/accounts/%E4%BD%A0%EF%BF%BD", json={"max_pending": 5}).json["appkey"] == "你\ufffd"


def test_account_settings_change_behaviour(api, control, clock):
    view = control.put("/__mock__/accounts/test-app", json={"concurrency": 1, "scenario": "content_safety"}).json
    assert view["concurrency"] == 1 and view["slots"] == 1 and view["scenario"] == "content_safety"
    first, second = submit(api, text()), submit(api, text(), scenario="success")
    clock.advance(60)
    assert poll(api, first)["FailCode"] == 801005  # the account's default scenario
    assert poll(api, second)["Status"] == "SUCCESS"  # the header wins
    account = control.get("/__mock__/accounts/test-app").json
    assert account["tasks"] == {"COMMIT": 0, "MAKING": 0, "SUCCESS": 1, "FAIL": 1}
    assert account["balance_left_seconds"] == 360_000 - 2.0  # the failed task gave its 2 s back


def test_an_accounts_scenario_set_to_null_goes_back_to_the_one_below(control, clock, tmp_path):
    """`"pace": null` returned to the server's pace, but `"scenario": null` was refused (not a string): only a reset
    gave an account the server's scenario back. Null is the accounts file's scenario, else the server's."""
    control.put("/__mock__/accounts/test-app", json={"scenario": "content_safety"})
    back = control.put("/__mock__/accounts/test-app", json={"scenario": None})
    assert back.status_code == 200 and back.json["scenario"] == "success", back.json
    # kept as the name it stands for: a mock of before sharing the store read a null scenario, and failed each request
    assert control.application.extensions["ivh_mock"].store.account_settings("test-app")["scenario"] == "success"
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text("accounts:\n  - {appkey: listed, accesstoken: t, scenario: content_safety}\n"
                        "  - {appkey: unset, accesstoken: t, scenario: null}\n")
    listed = create_app({**CONFIG, "accounts_file": str(accounts)}, clock=clock).test_client()
    listed.put("/__mock__/accounts/listed", json={"scenario": "timeout"})
    assert listed.put("/__mock__/accounts/listed", json={"scenario": None}).json["scenario"] == "content_safety"
    assert listed.get("/__mock__/accounts/unset").json["scenario"] == "success"


def test_a_minus_zero_setting_is_kept_as_zero(control):
    """`"hourly_package_seconds": -0.0` (a number the schema takes) was kept and shown as -0.0."""
    put = control.put("/__mock__/accounts/test-app", json={"hourly_package_seconds": -0.0,
                                                           "pace": {"queue_seconds": -0.0}})
    assert put.status_code == 200, put.json
    for shown in (put, control.get("/__mock__/accounts/test-app")):
        assert b"-0.0" not in shown.data and shown.json["hourly_package_seconds"] == 0


def test_an_accounts_token_can_be_changed(api, control):
    control.put("/__mock__/accounts/test-app", json={"accesstoken": "rotated"})
    assert api.call("getprogress", {"TaskId": "x"}).code == 100005
    assert api.call("getprogress", {"TaskId": "x"}, query=api.query(accesstoken="rotated")).code == 110006


@pytest.mark.parametrize("body, named", [
    ({"concurrency": 0}, "body/concurrency: 0 is less than the minimum of 1"),
    ({"hourly_package_seconds": -1}, "hourly_package_seconds"),
    ({"colour": "red"}, "'colour' was unexpected"),
    # a 1 MB token had been kept, and listed with every account; refused, it is not quoted back (it is a secret)
    ({"accesstoken": "t" * 300_000}, "body/accesstoken: is 300000 characters long; it must have at most 256"),
    ({"scenario": "explode"}, "body/scenario: 'explode' is not a scenario"),  # the body's field, not the header
    ({"scenario": "fail:code=abc"}, "body/scenario: parameter code='abc' must be a whole number"),
    ({"appkey": "someone-else"}, "differs from the URL's"),
    ([], "is not of type 'object'"),
])
def test_bad_account_settings_are_refused_by_name(control, body, named):
    response = control.put("/__mock__/accounts/test-app", json=body)
    assert response.status_code == 400 and named in response.json["error"]["message"]
    assert len(response.json["error"]["message"]) < 300  # a long value is not quoted whole


@pytest.mark.parametrize("limit", ["\uff15", "1_000", " 5", "5.0", "", "ten"])
def test_a_limit_must_be_ascii_digits(control, limit):
    """int() took a full-width "５" and "1_000" as numbers."""
    response = control.get("/__mock__/tasks", query_string={"limit": limit})
    assert response.status_code == 400
    assert response.json["error"]["message"] == f"limit must be a whole number in ASCII digits, got {limit!r}"


@pytest.mark.parametrize("route", ["tasks", "callbacks", "requests", "accounts"])
def test_a_limit_below_1_is_refused_and_one_past_64_bits_lists_all(control, api, route):
    """0 and -1 had been read as 1 without a word."""
    submit(api, TEXT_PAYLOAD)
    for limit in ("0", "-1", "-0", "+0", "000"):
        response = control.get(f"/__mock__/{route}", query_string={"limit": limit})
        assert response.status_code == 400 and response.json["error"]["message"] == (
            f"limit must be 1 or more, got {limit!r}")
    for limit in ("1", "+001", "9" * 5000):
        assert control.get(f"/__mock__/{route}", query_string={"limit": limit}).status_code == 200, limit


def test_accounts_are_listed(api, control):
    submit(api, text())
    listing = control.get("/__mock__/accounts").json
    assert listing["strict"] is False
    assert [a["appkey"] for a in listing["accounts"]] == ["test-app"]
    assert listing["accounts"][0]["concurrency"] == 5  # the documented default


def test_the_account_list_without_a_limit_stops_at_the_default_as_every_list_does(api, control, monkeypatch):
    """Without `limit`, every account was listed, each view reading its tasks: 1.5 s for a store of 1,000 accounts
    and 50,000 tasks. It stops at the default limit (500), by appkey; `total` counts them all."""
    from ivh_mock.mock_server.routes import control as control_routes

    for appkey in ("c-app", "a-app", "b-app"):
        submit(replace(api, appkey=appkey), text())
    monkeypatch.setattr(control_routes, "DEFAULT_LIMIT", 2)
    listing = control.get("/__mock__/accounts").json
    assert [a["appkey"] for a in listing["accounts"]] == ["a-app", "b-app"] and listing["total"] == 3, listing
    assert len(control.get("/__mock__/accounts", query_string={"limit": "3"}).json["accounts"]) == 3


def test_strict_mode_accounts_need_a_token_to_be_created(tmp_path, clock):
    path = tmp_path / "accounts.yaml"
    path.write_text("accounts:\n  - {appkey: team-a, accesstoken: a}\n")
    control = create_app({**CONFIG, "accounts_file": str(path)}, clock=clock).test_client()
    assert control.get("/__mock__/accounts/stranger").status_code == 404
    refused = control.put("/__mock__/accounts/newbie", json={"concurrency": 2})
    assert refused.status_code == 400 and "needs an accesstoken" in refused.json["error"]["message"]
    assert control.put("/__mock__/accounts/newbie", json={"accesstoken": "n"}).status_code == 200
    assert [a["appkey"] for a in control.get("/__mock__/accounts").json["accounts"]] == ["newbie", "team-a"]


def test_strict_mode_counts_only_the_accounts_it_lists(tmp_path, clock):
    """A store kept from a run without an accounts file holds accounts strict mode does not know: the listing hid
    them but counted them, and the dashboard said "the 1 most recently active of 3 accounts"."""
    store = f"sqlite:{tmp_path / 'mock.sqlite3'}"
    earlier = create_app({**CONFIG, "store": store}, clock=clock)
    for appkey in ("stranger", "other"):
        assert in_process(earlier, clock, appkey=appkey).call("phototovideonotrain", text()).code == 0
    earlier.extensions["ivh_mock"].store.close()
    path = tmp_path / "accounts.yaml"
    path.write_text("accounts:\n  - {appkey: team-a, accesstoken: a}\n")
    app = create_app({**CONFIG, "store": store, "accounts_file": str(path)}, clock=clock)
    assert in_process(app, clock, appkey="team-a", accesstoken="a").call("phototovideonotrain", text()).code == 0
    for query in ({}, {"limit": "10"}):
        listing = app.test_client().get("/__mock__/accounts", query_string=query).json
        assert [a["appkey"] for a in listing["accounts"]] == ["team-a"] and listing["total"] == 1, listing


def test_a_control_body_past_the_limit_is_refused_naming_the_limit_and_a_416_is_no_bad_request(control):
    """The control API's 413 said only werkzeug's "The data value transmitted exceeds the capacity limit", where
    the API names the limit (D06); and a 416 from the asset host began "bad request: "."""
    for path in ("/__mock__/clock", "/__mock__/reset"):
        refused = control.post(path, data=b'{"x": "' + b"a" * 1_100_000 + b'"}',
                               headers={"Content-Type": "application/json"})
        assert refused.status_code == 413
        assert refused.json["error"]["message"] == "request body is larger than 1048576 bytes"
    ranged = control.get("/__mock__/assets/samples/photo.jpg", headers={"Range": "bytes=99999999-"})
    assert ranged.status_code == 416 and ranged.json["error"]["message"].startswith("Requested Range Not Satisfiable")


def test_a_control_body_in_another_charset_is_refused_as_the_apis_is(control):
    """`charset=utf-16`, `latin-1` and `bogus` had been read as UTF-8 and answered 200."""
    for charset in ("utf-16", "latin-1", "bogus"):
        refused = control.post("/__mock__/clock", data=b'{"advance": 0}',
                               headers={"Content-Type": f"application/json; charset={charset}"})
        assert refused.status_code == 415
        assert refused.json["error"]["message"] == f"Content-Type charset must be utf-8, got {charset!r}"
    for charset in ("utf-8", "UTF8"):
        assert control.post("/__mock__/clock", data=b'{"advance": 0}',
                            headers={"Content-Type": f"application/json; charset={charset}"}).status_code == 200
    # read as the API reads it: two charsets, or words after one, had been taken for the first
    for header, said in (("application/json; charset=latin1; charset=utf-8", "charset must be utf-8, got 'latin1; "
                                                                             "utf-8'"),
                         ("application/json; charset=utf-8 latin1", "got 'application/json; charset=utf-8 latin1'")):
        refused = control.post("/__mock__/clock", data=b'{"advance": 0}', headers={"Content-Type": header})
        assert refused.status_code == 415 and said in refused.json["error"]["message"]


def test_an_appkey_past_the_apis_length_is_refused_by_every_control_route(control):
    """PUT refused a 129-character appkey in its URL, but GET answered a 20,000-character one with an account, and a
    reset took a 5,000-character one (D58: a control URL's appkey obeys the API's rule)."""
    long = "a" * 129
    for response in (control.get(f"/__mock__/accounts/{long}"), control.put(f"/__mock__/accounts/{long}", json={})):
        assert response.status_code == 400
        assert response.json["error"]["message"] == ("the URL's appkey is 129 characters long; an appkey has at "
                                                     "most 128")
    reset = control.post("/__mock__/reset", json={"appkey": long})
    assert reset.status_code == 400 and reset.json["error"]["message"].startswith("body/appkey: "), reset.json
    assert control.get(f"/__mock__/accounts/{'a' * 128}").status_code == 200
    assert control.post("/__mock__/reset", json={"appkey": "a" * 128}).status_code == 200
    assert control.post("/__mock__/reset", json={"appkey": ""}).status_code == 400


@pytest.mark.stores("memory")
@pytest.mark.parametrize("route", ["tasks", "callbacks", "requests"])
def test_a_list_routes_appkey_obeys_the_rule_of_one_in_a_path(control, route):
    """`?appkey=ab%FFcd` had been read as `ab\ufffdcd`, an account nobody has: an empty list, where the same
    appkey in an account's URL is refused."""
    for query, says in (("appkey=ab%FFcd", "the URL's appkey is not UTF-8 text: percent-encode its UTF-8 bytes"),
                        ("app%6Bey=ab%FF&appkey=x", "the URL's appkey is not UTF-8 text"),  # the name encoded, first
                        ("appkey=" + "a" * 129, "the URL's appkey is 129 characters long; an appkey has at most 128")):
        refused = control.get(f"/__mock__/{route}?{query}")
        assert refused.status_code == 400 and refused.json["error"]["message"].startswith(says), refused.json
    for query in ("appkey=%E4%BD%A0", "appkey=a+b", "limit=3", "appkey=" + "a" * 128, "appkey=ok&x=%FF"):
        assert control.get(f"/__mock__/{route}?{query}").status_code == 200, query


def test_scenarios_are_listed(control):
    listing = control.get("/__mock__/scenarios").json
    assert listing["header"] == "X-Mock-Scenario" and "stuck_in_queue" in listing["scenarios"]


class TestToken:
    @pytest.fixture
    def guarded(self, clock):
        app = create_app({**CONFIG, "control_token": "s3cret"}, clock=clock)
        return app, app.test_client()

    def test_the_control_api_demands_the_token(self, guarded):
        _, client = guarded
        refused = client.get("/__mock__/clock")
        assert refused.status_code == 401  # and it names the scheme the token goes in (RFC 9110 11.6.1)
        assert refused.headers["WWW-Authenticate"] == 'Bearer realm="ivh-mock control API"'
        assert client.get("/__mock__/clock", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/__mock__/clock", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/__mock__/clock", headers={"X-Mock-Token": "s3cret"}).status_code == 200
        assert client.post("/__mock__/reset").status_code == 401

    def test_a_browser_without_the_token_is_told_to_put_it_in_the_dashboards_url(self, guarded):
        """A browser sends no Authorization header: the dashboard's refusal had told it to send one."""
        _, client = guarded
        for path in ("/", "/__mock__/ui"):
            refused = client.get(path, follow_redirects=True)
            assert refused.status_code == 401 and "open /__mock__/ui?token=..." in refused.json["error"]["message"]
        assert client.get("/__mock__/ui?token=s3cret").status_code == 200
        assert "Authorization: Bearer" in client.get("/__mock__/clock").json["error"]["message"]

    @pytest.mark.parametrize("header", ["s3cret", "Basic s3cret", "Bearers3cret", "Token s3cret"])
    def test_the_token_counts_only_in_its_bearer_scheme(self, guarded, header):
        _, client = guarded
        refused = client.get("/__mock__/clock", headers={"Authorization": header})
        assert refused.status_code == 401  # said so: it had read as no token at all
        assert refused.json["error"]["message"] == ("the control token goes in Authorization: Bearer <token>; the "
                                                    "Authorization header sent is in another scheme")
        assert client.get("/__mock__/clock", headers={"Authorization": "bearer  s3cret "}).status_code == 200

    @pytest.mark.parametrize("headers, query", [({"Authorization": "Bearer wrong"}, ""),
                                                ({"X-Mock-Token": "wrong"}, ""), ({}, "?token=wrong")])
    def test_a_wrong_token_is_said_to_be_wrong_not_missing(self, guarded, headers, query):
        _, client = guarded
        path = "/__mock__/ui" if query else "/__mock__/clock"
        refused = client.get(path + query, headers=headers)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert refused.json["error"]["message"] == ("the control token sent is not this server's (the "
                                                    "--control-token `ivh-mock serve` printed), in "
                                                    f"{next(iter(headers), 'the URL' + chr(39) + 's token')}")

    @pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer\ts3cret"])
    def test_a_bearer_header_without_its_token_is_said_so(self, guarded, header):
        """`Authorization: Bearer` with no token, or a tab before it, was said to be "in another scheme"."""
        _, client = guarded
        refused = client.get("/__mock__/clock", headers={"Authorization": header})
        assert refused.status_code == 401 and refused.json["error"]["message"] == (
            "the Authorization header carries no token after Bearer and one space (Authorization: Bearer <token>)")

    def test_with_both_headers_the_refusal_names_the_one_read(self, guarded):
        _, client = guarded
        refused = client.get("/__mock__/clock", headers={"Authorization": "Bearer s3cret", "X-Mock-Token": "nope"})
        assert refused.status_code == 401 and refused.json["error"]["message"].endswith(", in X-Mock-Token")

    def test_the_public_api_needs_no_control_token(self, guarded, clock):
        app, _ = guarded
        assert in_process(app, clock).call("phototovideonotrain", text()).code == 0


def test_the_control_api_never_collides_with_the_public_api(mock):
    control_rules = [r.rule for r in mock.url_map.iter_rules() if r.rule.startswith("/__mock__")]
    public_rules = [r.rule for r in mock.url_map.iter_rules() if r.rule.startswith("/v2/")]
    assert control_rules and public_rules and not set(control_rules) & set(public_rules)


def test_the_dashboard_is_served_and_root_redirects_to_it(control):
    page = control.get("/__mock__/ui")
    assert page.status_code == 200 and b"dashboard.js" in page.data
    # no other site may frame it and have a visitor click its buttons (its own requests pass the Origin check)
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert control.get("/__mock__/ui/dashboard.js").mimetype in ("text/javascript", "application/javascript")
    assert control.get("/__mock__/ui/../control.py").status_code == 404
    assert control.get("/__mock__/ui/openapi.yaml").status_code == 404
    for root in ("/", "/__mock__", "/__mock__/", "/__mock__/ui/"):  # the banner names the control API by its prefix
        redirect = control.get(f"{root}?token=abc")
        assert redirect.status_code == 302 and redirect.headers["Location"].endswith("/__mock__/ui?token=abc"), root


# -- hostile and careless bodies ------------------------------------------------------------------------------------
def strict_json(response):
    """The answer's JSON, read as strictly as a browser does: no NaN, no Infinity."""
    def refuse(name):
        raise AssertionError(f"{response.request.path} answered {name}, which is not JSON")

    return json.loads(response.get_data(as_text=True), parse_constant=refuse)


def send(control, method: str, path: str, raw: bytes):
    return control.open(path, method=method, data=raw, content_type="application/json")


STATE_ROUTES = [("POST", "/__mock__/reset"), ("POST", "/__mock__/clock"), ("PUT", "/__mock__/accounts/test-app")]
POISON = [
    ("lone surrogate", b'{"appkey": "\\udfff", "accesstoken": "\\ud800", "scenario": "\\udfff"}', "lone surrogate"),
    ("NaN", b'{"set": NaN, "advance": NaN, "hourly_package_seconds": NaN}', "NaN is not a JSON number"),
    ("Infinity", b'{"set": Infinity, "hourly_package_seconds": Infinity}', "Infinity is not a JSON number"),
    ("1e999", b'{"set": 1e999, "advance": 1e999, "hourly_package_seconds": 1e999}', "1e999 is out of range"),
    ("100k brackets", b"[" * 100_000, "nests deeper than 32 levels"),
    ("33 levels", b'{"appkey": ' + b"[" * 33 + b"]" * 33 + b"}", "nests deeper than 32 levels"),
]


@pytest.mark.parametrize("method, path", STATE_ROUTES)
@pytest.mark.parametrize("raw, named", [p[1:] for p in POISON], ids=[p[0] for p in POISON])
def test_control_bodies_json_cannot_keep_are_refused_and_poison_nothing(api, control, method, path, raw, named):
    submit(api, text())
    response = send(control, method, path, raw)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert named in response.json["error"]["message"]
    for route in ("/__mock__/clock", "/__mock__/accounts", "/__mock__/accounts/test-app", "/__mock__/requests",
                  "/__mock__/tasks"):
        answer = control.get(route)
        assert answer.status_code == 200, route
        strict_json(answer)
    assert len(control.get("/__mock__/tasks").json["tasks"]) == 1  # no reset happened
    assert control.get("/__mock__/clock").json["now"] == T0


@pytest.mark.parametrize("body, named", [
    ({"set": 1_795_646_000_000}, "body/set: 1795646000000 is greater than the maximum of 253402300799"),
    ({"advance": 1e300}, "is greater than the maximum of 253402300799"),
    ({"set": 253_402_300_000, "advance": 1000}, "would move the clock past 253402300799"),
    ({"set": -1}, "less than the minimum of 0"),
])
def test_clock_values_out_of_range_are_refused_and_never_reach_the_sweep(api, control, clock, mock, body, named):
    task_id = submit(api, text())
    clock.advance(60)
    video = urlsplit(poll(api, task_id)["MediaUrl"]).path
    assert control.get(video).status_code == 200
    response = control.post("/__mock__/clock", json=body)
    assert response.status_code == 400 and named in response.json["error"]["message"]
    assert control.get("/__mock__/clock").json["now"] == T0 + 60
    assert control.get(video).status_code == 200  # the sweep did not act on the refused time
    assert api.call("getprogress", {"TaskId": task_id}).code == 0


def test_the_last_second_the_clock_takes_is_shown(control):
    answer = control.post("/__mock__/clock", json={"set": 253_402_300_799})
    assert answer.status_code == 200 and answer.json["iso"] == "9999-12-31T23:59:59+00:00"
    assert control.get("/__mock__/clock").status_code == 200


def test_a_running_clock_past_the_latest_time_is_still_shown_and_moved_back(store_spec):
    """Set running to a second before the latest time it takes, the clock passed it: reading it answered 500 (year
    10000 is out of range), and so did returning it to real time or freezing it (KeyError 'advance')."""
    real = [T0]
    clock = VirtualClock(frozen=False, source=lambda: real[0])
    control = create_app({**CONFIG, "store": store_spec}, clock=clock).test_client()
    assert control.post("/__mock__/clock", json={"set": 253_402_300_798}).status_code == 200
    real[0] += 5
    shown = control.get("/__mock__/clock")
    assert shown.status_code == 200 and shown.json["now"] == 253_402_300_803 and shown.json["iso"] is None
    assert control.post("/__mock__/clock", json={"frozen": True}).json["now"] == 253_402_300_803
    refused = control.post("/__mock__/clock", json={"advance": 1})
    assert refused.status_code == 400
    assert "body/advance: 1 would move the clock past" in refused.json["error"]["message"]
    back = control.post("/__mock__/clock", json={"real": True, "advance": 60})  # from real time, not from year 10000
    assert back.status_code == 200 and back.json["now"] == T0 + 65 and back.json["iso"].startswith("2025-")


def test_the_subtitles_of_a_task_finished_past_the_latest_time_are_served(store_spec):
    """A task that finished in the year 10000 (a running clock set close to its latest time) had its SRT answer 500 on
    every request: its Last-Modified, the task's end, is no HTTP date. A clock ahead of the real time dates it no
    later than the answer (RFC 9110 8.8.2.1): it had been dated in the future."""
    real = [T0]
    clock = VirtualClock(frozen=False, source=lambda: real[0])
    app = create_app({**CONFIG, "store": store_spec}, clock=clock)
    control, api = app.test_client(), in_process(app, clock)
    assert control.post("/__mock__/clock", json={"set": 253_402_300_797}).status_code == 200
    task_id = submit(api, TEXT_PAYLOAD)
    real[0] += 100
    assert poll(api, task_id)["Status"] == "SUCCESS"
    subtitles = control.get(f"/broadcast/Basic/subtitle/{task_id}.srt")
    assert subtitles.status_code == 200  # dated no later than the answer (RFC 9110 8.8.2.1): the real time
    assert abs(parse_date(subtitles.headers["Last-Modified"]).timestamp() - time.time()) < 5


@pytest.mark.parametrize("body, named", [
    ({"concurrency": 1.0}, "body/concurrency: 1.0 is not of type 'integer'"),
    ({"exclusive_concurrency": 2.0}, "body/exclusive_concurrency: 2.0 is not of type 'integer'"),
    ({"max_pending": 1e2}, "body/max_pending: 100.0 is not of type 'integer'"),
    ({"max_pending": 10**20}, "is greater than the maximum"),
    ({"hourly_package_seconds": 10**400}, "the number 10000000000000000... is out of range (larger than a double"),
    ({"concurrency": True}, "is not of type 'integer'"),
])
def test_settings_take_only_what_their_schema_says(api, control, body, named):
    response = control.put("/__mock__/accounts/test-app", json=body)
    assert response.status_code == 400 and named in response.json["error"]["message"]
    submit(api, text())  # the next submission is answered
    strict_json(control.get("/__mock__/accounts"))


def test_control_bodies_must_be_sent_as_json(control):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        response = control.post("/__mock__/reset", data=b"", content_type=content_type)
        assert response.status_code == 415, content_type
        assert "Content-Type: application/json" in response.json["error"]["message"]
    assert control.post("/__mock__/reset").status_code == 200  # no body, no Content-Type: a tool's bare POST
    assert control.post("/__mock__/reset", content_type="application/json").status_code == 200


def test_unknown_control_routes_and_oversized_bodies_answer_in_the_control_format(control):
    missing = control.get("/__mock__/nothing-here")
    assert missing.status_code == 404 and "no control route GET /__mock__/nothing-here" in missing.json["error"]["message"]
    assert "Header" not in missing.json
    doubled = control.get("/__mock__//clock")  # no redirect page: a path that is no route is a 404 in its format
    assert doubled.status_code == 404 and "error" in doubled.json
    too_big = control.post("/__mock__/clock", data=b'{"set": ' + b" " * 1_100_000 + b"1}",
                           content_type="application/json")
    assert too_big.status_code == 413 and "message" in too_big.json["error"]
    wrong_method = control.delete("/__mock__/clock")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json
    assert set(wrong_method.headers["Allow"].split(", ")) >= {"GET", "POST"}


@pytest.mark.parametrize("name", ["a%0ab.jpg", "a%0db.jpg", "a%00b.jpg", "a%7fb.jpg", "a%c2%85b.jpg"])
def test_asset_names_with_control_characters_are_refused(mock, name):
    client = mock.test_client()
    url = urlsplit(client.post("/__mock__/assets?name=x.jpg", data=b"bytes").json["Url"]).path
    response = client.get(url.rsplit("/", 1)[0] + "/" + name)
    assert response.status_code == 400 and "control characters" in response.json["error"]["message"]
    assert client.get(url).data == b"bytes"


class TestBrowsers:
    """A web page the developer visits must not steer the mock on loopback (DECISIONS.md D57)."""

    @pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://localhost:9999",
                                        "https://localhost"])
    def test_a_page_of_another_origin_cannot_change_state(self, api, control, origin):
        submit(api, text())
        for method, path, body in [("POST", "/__mock__/reset", {}), ("POST", "/__mock__/clock", {"advance": 9}),
                                   ("PUT", "/__mock__/accounts/test-app", {"concurrency": 2})]:
            response = control.open(path, method=method, json=body, headers={"Origin": origin})
            assert response.status_code == 403, (method, path)
            assert "another origin" in response.json["error"]["message"]
        upload = control.post("/__mock__/assets?name=x.jpg", data=b"x", headers={"Origin": origin})
        assert upload.status_code == 403
        assert len(control.get("/__mock__/tasks").json["tasks"]) == 1
        assert control.get("/__mock__/clock").json["now"] == T0

    def test_the_mocks_own_pages_and_tools_still_can(self, control):
        own = control.post("/__mock__/clock", json={"advance": 1}, headers={"Origin": "http://localhost"})
        assert own.status_code == 200
        assert control.post("/__mock__/clock", json={"advance": 1}).status_code == 200  # no Origin: a tool
        assert control.get("/__mock__/accounts", headers={"Origin": "http://evil.example"}).status_code == 200

    @pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "localhost.evil.example",
                                      "127.0.0.1.nip.io:80"])
    def test_a_rebound_host_name_gets_nothing(self, control, host):
        for path in ("/__mock__/accounts", "/__mock__/requests", "/__mock__/ui", "/__mock__/clock"):
            response = control.get(path, headers={"Host": host})
            assert response.status_code == 403, path
            assert "--allow-host" in response.json["error"]["message"]
        # files anyone may fetch stay open, whatever name the mock is reached by
        assert control.get("/__mock__/assets/samples", headers={"Host": host}).status_code == 200

    @pytest.mark.parametrize("host", ["[::1", "::1", "h:99999", ""])
    def test_a_host_header_that_names_no_host_is_refused_by_every_route_alike(self, control, host):
        """`[::1` had been taken by the clock and the accounts (200), refused by the samples (400); `::1` and
        `h:99999` got a 403 naming a host `:` or `h`: each is a 400 naming the header, as the API's routes answer."""
        for path in ("/__mock__/clock", "/__mock__/accounts", "/__mock__/assets/samples"):
            response = control.get(path, headers={"Host": host})
            assert response.status_code == 400, (path, response.json)
            assert response.json["error"]["message"].startswith(f"the Host header {host!r} is not a host name"), path

    @pytest.mark.parametrize("host", ["localhost:8080", "127.0.0.1:8080", "[::1]:8080", "10.1.2.3", "app.localhost",
                                      "LOCALHOST"])
    def test_addresses_and_loopback_names_are_the_mocks_own(self, control, host):
        assert control.get("/__mock__/clock", headers={"Host": host}).status_code == 200

    def test_names_the_user_allows_are_the_mocks_own(self, clock):
        client = create_app({**CONFIG, "allowed_hosts": ["ivh-mock"], "public_url": "http://mock.test:9000"},
                            clock=clock).test_client()
        for host in ("ivh-mock:8080", "mock.test:9000"):
            assert client.get("/__mock__/clock", headers={"Host": host}).status_code == 200
        assert client.get("/__mock__/clock", headers={"Host": "other.test"}).status_code == 403
        assert client.post("/__mock__/clock", json={"advance": 1}, headers={"Host": "ivh-mock:8080",
                                                                            "Origin": "http://mock.test:9000"}
                           ).status_code == 200


def test_a_clock_poisoned_by_an_older_version_restarts_instead_of_breaking_every_call(tmp_path):
    store = f"sqlite:{tmp_path / 'old.sqlite3'}"
    open_store(store).update_clock_state(lambda _: {"base": float("nan"), "anchor": 0.0, "frozen": True})
    app = create_app({**CONFIG, "store": store})  # no clock given: the one kept in the store
    answer = app.test_client().get("/__mock__/clock")
    assert answer.status_code == 200 and abs(answer.json["now"] - time.time()) < 3600
    assert in_process(app, VirtualClock(start=answer.json["now"])).call("getprogress", {"TaskId": "x"}).code == 110006


@pytest.mark.parametrize("route", ["/__mock__/tasks", "/__mock__/requests", "/__mock__/callbacks",
                                   "/__mock__/accounts"])
def test_a_limit_past_what_any_store_counts_means_everything(control, api, route):
    """A limit of 2**64 reached the stores as it was: itertools.islice, SQLite and Redis all refuse an integer past
    64 bits, and the control API answered 500. Any limit past the largest a store takes means all of them."""
    submit(api, text())
    for limit in (str(2**63 - 1), str(2**64), str(10**40), "9" * 5000, "0" * 5000 + "7"):  # int() refuses 4301 digits
        answer = control.get(route, query_string={"limit": limit})
        assert answer.status_code == 200, (limit[:40], answer.get_data(as_text=True)[:300])
    everything = control.get(route).json
    assert control.get(route, query_string={"limit": str(10**40)}).json == everything
    assert control.get(route, query_string={"limit": "9" * 5000}).json == everything
    below = control.get(route, query_string={"limit": "-" + "9" * 5000})  # refused as -1 is, its digits not quoted
    assert below.status_code == 400
    assert below.json["error"]["message"] == f"limit must be 1 or more, got {'-' + '9' * 39!r}"
