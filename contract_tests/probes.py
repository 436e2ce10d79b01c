"""Drift probes: for each decision of spec/DECISIONS.md that can be checked without spending, ask the target and
record its answer next to the mock's choice.

Every probe sends a request the documented contract refuses, so nothing is rendered or billed; submissions also
carry a photo URL that cannot resolve, should a live API accept one anyway (the spend guard counts it then).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable

from ivh_mock.contract_tests.target import SUBMIT, UNREACHABLE_PHOTO, Answer, Target
from ivh_mock.spec.signing import sign, signed_query

UNKNOWN_TASK = "0" * 32
PROBE_TEXT = {"RefPhotoUrl": UNREACHABLE_PHOTO, "DriverType": "Text", "InputSsml": "drift probe",
              "SpeechParam": {"TimbreKey": "female_1", "Speed": 1.0}}


@dataclass(frozen=True)
class Probe:
    decision: str
    question: str
    expected: str  # the mock's choice, in the form `observe` reports
    run: Callable[[Target], Answer]
    observe: Callable[[Answer], str] = lambda answer: answer.shown


def _progress(target: Target, **kwargs) -> Answer:
    return target.send("getprogress", {"Header": {}, "Payload": {"TaskId": UNKNOWN_TASK}}, **kwargs)


def _query(target: Target, *, timestamp_offset: int | None = None, token: str | None = None, drop: str | None = None,
           unencoded: bool = False) -> str:
    """A signed query; with `timestamp_offset`, timed that far from real time (this machine's clock), as a live
    client signs: the test of the server's tolerance (a mock's own clock is moved out of the way, see test_drift)."""
    appkey = target.default_appkey
    timestamp = str(int(target.now()) if timestamp_offset is None else int(time.time()) + timestamp_offset)
    if unencoded:
        for step in range(400):  # a timestamp whose signature has a '+', sent raw as a careless client would
            timestamp = str(int(target.now()) - step)
            signature = sign({"appkey": appkey, "timestamp": timestamp}, target.accesstoken)
            if "+" in signature:
                return f"appkey={appkey}&timestamp={timestamp}&signature={signature}"
    query = signed_query(appkey, token or target.accesstoken, timestamp)
    return "&".join(part for part in query.split("&") if not (drop and part.startswith(f"{drop}=")))


def _submit(target: Target, **changes) -> Answer:
    return target.send(SUBMIT, {"Header": {}, "Payload": {**PROBE_TEXT, **changes}})


def _enveloped(observe: Callable[[Answer], str]) -> Callable[[Answer], str]:
    """`observe` for an answer in the API's envelope; for any other (a gateway's page), what it was: its HTTP status
    or Payload alone would agree with the mock's choice."""
    return lambda answer: observe(answer) if isinstance(answer.code, int) else answer.shown


PROBES = [
    Probe("D01", "HTTP status of an error answer", "HTTP 200", lambda t: _progress(t),
          _enveloped(lambda a: f"HTTP {a.status}")),
    Probe("D02", "Payload of an error answer", "{}", lambda t: _progress(t),
          _enveloped(lambda a: json.dumps(a.payload))),
    Probe("D03", "Header.RequestID of an error answer", "echoed",
          lambda t: t.send("getprogress", {"Header": {"RequestID": "drift-probe-1"},
                                           "Payload": {"TaskId": UNKNOWN_TASK}}),
          _enveloped(lambda a: "echoed" if a.body["Header"].get("RequestID") == "drift-probe-1" else "not echoed")),
    Probe("D05", "code for a body without Payload", "100001",
          lambda t: t.send("getprogress", {"Header": {}})),
    Probe("D05", "code for a Payload of the wrong type", "100003",
          lambda t: t.send("getprogress", {"Header": {}, "Payload": "TaskId"})),
    Probe("D06", "code for a body that is not JSON", "100003", lambda t: t.send("getprogress", b"TaskId=1")),
    Probe("D07", "code for Content-Type text/plain", "100003",
          lambda t: t.send("getprogress", {"Header": {}, "Payload": {"TaskId": UNKNOWN_TASK}},
                           content_type="text/plain")),
    Probe("D08", "code for an undocumented Payload field", "100001", lambda t: _submit(t, CallbackURL="http://x/")),
    Probe("D11", "code for a request without signature", "100001",
          lambda t: _progress(t, query=_query(t, drop="signature"))),
    Probe("D11", "code for a request without timestamp", "100001",
          lambda t: _progress(t, query=_query(t, drop="timestamp"))),
    Probe("D11", "code for a signature given twice, the valid one first", "110006",
          lambda t: _progress(t, query=_query(t) + "&signature=AAAA")),
    Probe("D12", "code for a signature made with another token", "100005",
          lambda t: _progress(t, query=_query(t, token="not-the-token"))),
    Probe("D12", "code for a signature whose '+' was not URL-encoded", "100005",
          lambda t: _progress(t, query=_query(t, unencoded=True))),
    # 2 s inside and outside the 300 s: a second may tick between signing and the server's check
    Probe("D13", "timestamp 298 s behind real time", "110006",
          lambda t: _progress(t, query=_query(t, timestamp_offset=-298))),
    Probe("D13", "timestamp 302 s behind real time", "100005",
          lambda t: _progress(t, query=_query(t, timestamp_offset=-302))),
    Probe("D13", "timestamp 298 s ahead of real time", "110006",
          lambda t: _progress(t, query=_query(t, timestamp_offset=298))),
    Probe("D13", "timestamp 302 s ahead of real time", "100005",
          lambda t: _progress(t, query=_query(t, timestamp_offset=302))),
    Probe("D16", "code for an empty DriverType", "100002", lambda t: _submit(t, DriverType="")),
    Probe("D17", "SSML tags count toward the 300 characters", "100002",
          lambda t: _submit(t, InputSsml="<speak>" + "字" * 290 + "</speak>")),
    Probe("D20", "code for <break time=\"10s\"/>", "100002",
          lambda t: _submit(t, InputSsml='你好<break time="10s"/>世界')),
    Probe("D25", "code for a numeric TaskId", "100003",
          lambda t: t.send("getprogress", {"Header": {}, "Payload": {"TaskId": 123}})),
    Probe("D26", "code for an unknown TaskId", "110006", lambda t: _progress(t)),
    Probe("D28", "code for PageSize 101", "100002",
          lambda t: t.send("describetimbre", {"Header": {}, "Payload": {"PageIndex": 1, "PageSize": 101}})),
    Probe("D28", "timbres listed for an empty TimbreKeyList", "some",
          lambda t: t.send("describetimbre", {"Header": {}, "Payload": {"PageIndex": 1, "PageSize": 1,
                                                                         "TimbreKeyList": []}}),
          _enveloped(lambda a: "some" if a.payload.get("Total") else "none")),
    Probe("D42", "code for PageSize 1.0", "100003",
          lambda t: t.send("describetimbre", {"Header": {}, "Payload": {"PageIndex": 1, "PageSize": 1.0}})),
    Probe("D81", "code for an empty CallbackUrl", "100002", lambda t: _submit(t, CallbackUrl="")),
    Probe("D81", "code for a null CallbackUrl", "100003", lambda t: _submit(t, CallbackUrl=None)),
]
