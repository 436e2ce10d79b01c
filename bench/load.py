"""Load a server with wrk and read back throughput and latency percentiles.

Each request is a real API call: signed for the server's clock, its body the one a client sends. The script rotates
through many appkeys (so no account reaches its pending limit during a run) and counts answers whose envelope is
not `Code: 0`, so an error page can never pass for throughput.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ivh_mock.spec.signing import signed_query

from ivh_mock import spec

PATHS = {operation.operation_id: operation.path for operation in spec.load().operations.values()}
SUBMIT, PROGRESS = PATHS["phototovideonotrain"], PATHS["getprogress"]
TOKEN = "mock-accesstoken"
SUBMIT_PAYLOAD = {
    "RefPhotoUrl": "http://localhost/__mock__/assets/samples/photo.jpg",  # read by the mock from its own samples
    "DriverType": "Text",
    "InputSsml": "Hello, I am the virtual anchor of this benchmark.",
    "SpeechParam": {"TimbreKey": "female_1", "Volume": 1, "Speed": 1.0},
}

SCRIPT = r"""
local requests = {%(requests)s}
local counter = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
  counter = math.random(#requests)
end

function request()
  counter = counter %% #requests + 1
  local r = requests[counter]
  return wrk.format("POST", r[1], {["Content-Type"] = "application/json;charset=utf-8"}, r[2])
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"Code":0', 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local bad_total = 0
  for _, thread in ipairs(threads) do
    bad_total = bad_total + thread:get("bad")
  end
  io.write(string.format(
    'RESULT {"requests": %%d, "seconds": %%f, "socket_errors": %%d, "bad": %%d, '
    .. '"p50": %%d, "p90": %%d, "p99": %%d, "mean": %%f}\n',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout + summary.errors.status,
    bad_total, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""


@dataclass
class Result:
    requests: int
    seconds: float
    socket_errors: int
    bad: int  # answered, but not with Code 0
    p50: float  # milliseconds
    p90: float
    p99: float
    rates: tuple[float, ...] = ()  # requests/s of every run this result was chosen from

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def submission(appkey: str, at: float | None = None) -> tuple[str, str]:
    """A signed submission (path with query, body) of `appkey`, valid for the signature tolerance from `at`."""
    body = json.dumps({"Header": {}, "Payload": SUBMIT_PAYLOAD}, ensure_ascii=False, separators=(",", ":"))
    return f"{SUBMIT}?{signed_query(appkey, TOKEN, int(time.time() if at is None else at))}", body


def submit_requests(appkeys: int = 2000, at: float | None = None) -> list[tuple[str, str]]:
    """Signed submissions for `appkeys` accounts (so that none reaches its pending limit during a run)."""
    return [submission(f"bench-{n}", at) for n in range(appkeys)]


def progress_requests(tasks: list[tuple[str, str]], at: float | None = None) -> list[tuple[str, str]]:
    """Signed getprogress calls for `tasks` ((TaskId, appkey) pairs)."""
    stamp = int(time.time() if at is None else at)
    return [(f"{PROGRESS}?{signed_query(appkey, TOKEN, stamp)}",
             json.dumps({"Header": {}, "Payload": {"TaskId": task_id}}, separators=(",", ":")))
            for task_id, appkey in tasks]


def median_run(wrk: str, url: str, requests: list[tuple[str, str]], *, seconds: float, repeats: int = 3) -> Result:
    """Run wrk `repeats` times and return the run of median throughput (the machine's speed moves between runs)."""
    return median_of([run(wrk, url, requests, seconds=seconds) for _ in range(repeats)])


def median_of(runs: list[Result]) -> Result:
    """The run of median throughput among `runs`, carrying every run's rate."""
    runs = sorted(runs, key=lambda result: result.rate)
    return dataclasses.replace(runs[len(runs) // 2], rates=tuple(round(result.rate) for result in runs))


def run(wrk: str, url: str, requests: list[tuple[str, str]], *, seconds: float = 8.0, connections: int = 16,
        threads: int = 1) -> Result:
    """Run wrk against `url` for `seconds`, cycling through `requests`."""
    entries = ",\n".join(f"{{{_lua_string(path)}, {_lua_string(body)}}}" for path, body in requests)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(SCRIPT % {"requests": entries})
    try:
        completed = subprocess.run([wrk, "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
                                    "--timeout", "10s", "-s", script.name, url], capture_output=True, text=True,
                                   timeout=seconds + 60)
    finally:
        Path(script.name).unlink()
    line = next((line for line in completed.stdout.splitlines() if line.startswith("RESULT ")), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip() or completed.stdout}")
    raw = json.loads(line.removeprefix("RESULT "))
    return Result(requests=raw["requests"], seconds=raw["seconds"], socket_errors=raw["socket_errors"],
                  bad=raw["bad"], p50=raw["p50"] / 1000, p90=raw["p90"] / 1000, p99=raw["p99"] / 1000)
