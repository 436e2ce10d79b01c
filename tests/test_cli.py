"""`ivh-mock serve` as a user runs it: a real process on a real port, signed requests, a clean stop."""

import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
from ivh_mock.spec.signing import signed_query

from .conftest import MOCK, PATHS, TEXT_PAYLOAD, ServeProcess

SCRIPT = Path(MOCK)


def start(*args):
    served = ServeProcess(tempfile.mkdtemp(prefix="ivh-cli-test-"), "--queue-seconds", "600", *args)
    return served.process, served.url, served.banner


@pytest.fixture
def server():
    process, url, banner = start()
    yield url, banner, process
    if process.poll() is None:
        process.kill()
        process.wait()


def post(url, operation_id, payload, appkey="cli-test"):
    query = signed_query(appkey, "mock-accesstoken", int(time.time()))
    response = requests.post(f"{url}{PATHS[operation_id]}?{query}", timeout=10,
                             data=json.dumps({"Header": {}, "Payload": payload}),
                             headers={"Content-Type": "application/json;charset=utf-8"})
    return response.json()


def test_serve_prints_where_it_listens_and_which_credentials_work(server):
    url, banner, _ = server
    assert url.startswith("http://127.0.0.1:")
    assert "profile:     intl" in banner
    assert "any appkey, accesstoken 'mock-accesstoken'" in banner


def test_the_seed_sample_is_accepted_and_queued_over_http(server):
    url, _, _ = server
    accepted = post(url, "phototovideonotrain", TEXT_PAYLOAD)
    assert accepted["Header"]["Code"] == 0
    progress = post(url, "getprogress", {"TaskId": accepted["Payload"]["TaskId"]})
    assert progress["Header"]["Code"] == 0 and progress["Payload"]["Status"] == "COMMIT"


def test_each_broken_constraint_names_its_field_over_http(server):
    url, _, _ = server
    for field, value in [("DriverType", "Txt"), ("InputSsml", "ab"), ("RefPhotoUrl", "nope")]:
        answer = post(url, "phototovideonotrain", {**TEXT_PAYLOAD, field: value})
        assert answer["Header"]["Code"] != 0 and f"Payload.{field}" in answer["Header"]["Message"]


def test_sigterm_stops_the_server_cleanly(server):
    _, _, process = server
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert "Traceback" not in process.stderr.read()


def test_profile_and_token_options(tmp_path):
    process, url, banner = start("--profile", "cn", "--default-accesstoken", "tok")
    try:
        assert "profile:     cn" in banner and "accesstoken 'tok'" in banner
    finally:
        process.kill()
        process.wait()


def test_strict_accounts_are_listed_in_the_banner(tmp_path):
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps({"accounts": [{"appkey": "team-a", "accesstoken": "t"}]}))
    process, url, banner = start("--accounts", str(accounts))
    try:
        assert "1 account(s) from the accounts file: team-a" in banner
        assert post(url, "getprogress", {"TaskId": "x"}, appkey="stranger")["Header"]["Code"] == 100005
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize("args, message", [
    (["--accounts", "/nonexistent/accounts.yaml"], "cannot read accounts file"),
    (["--profile", "mars"], "invalid choice: 'mars'"),
])
def test_bad_options_exit_2_with_a_message_and_no_traceback(args, message):
    result = subprocess.run([str(SCRIPT), "serve", "--port", "0", *args], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_busy_port_is_reported(server):
    url, _, _ = server
    port = url.rsplit(":", 1)[1]
    result = subprocess.run([str(SCRIPT), "serve", "--port", port], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_python_dash_m_runs_the_same_cli():
    result = subprocess.run([sys.executable, "-m", "ivh_mock.mock_server", "serve", "--help"], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0
    for option in ("--host", "--port", "--profile", "--accounts", "--default-accesstoken"):
        assert option in result.stdout


def test_beyond_loopback_the_control_api_gets_a_generated_token():
    process, url, banner = start("--host", "0.0.0.0")
    try:
        token = re.search(r"control API: \S+ token '([^']+)'", banner).group(1)
        port = url.rsplit(":", 1)[1]
        control = f"http://127.0.0.1:{port}/__mock__/clock"
        assert requests.get(control, timeout=10).status_code == 401
        assert requests.get(control, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    finally:
        process.kill()
        process.wait()


def test_on_loopback_the_control_api_is_open(server):
    url, banner, _ = server
    assert "control API: " in banner and "open (loopback only)" in banner
    assert requests.get(f"{url}/__mock__/clock", timeout=10).status_code == 200


def test_timing_options_are_offered():
    result = subprocess.run([str(SCRIPT), "serve", "--help"], capture_output=True, text=True, timeout=30)
    for option in ("--queue-seconds", "--render-speed", "--render-startup", "--public-url", "--control-token"):
        assert option in result.stdout
