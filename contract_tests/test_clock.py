"""A mock's clock can be moved without locking out clients that sign with their own clock (DECISIONS.md D51).

Only a mock has a clock to move; against any other server these tests are skipped (marker `control`)."""

from __future__ import annotations

import time

import pytest
from ivh_mock.spec.signing import signed_query

DAY = 86_400
UNKNOWN_TASK = {"Header": {}, "Payload": {"TaskId": "0" * 32}}


@pytest.mark.control
def test_a_client_signing_with_real_time_is_accepted_after_the_clock_moves_a_day(frozen):
    appkey = frozen.appkey("real-time")
    start = frozen.clock_now()
    frozen.set_clock(time.time() + DAY)
    try:
        real = signed_query(appkey, frozen.accesstoken, int(time.time()))
        mock_time = signed_query(appkey, frozen.accesstoken, int(frozen.now()))
        three_days_off = signed_query(appkey, frozen.accesstoken, int(time.time()) - 3 * DAY)
        assert frozen.send("getprogress", UNKNOWN_TASK, query=real).code == 110006
        assert frozen.send("getprogress", UNKNOWN_TASK, query=mock_time).code == 110006
        refused = frozen.send("getprogress", UNKNOWN_TASK, query=three_days_off)
        assert refused.code == 100005 and "real time" in refused.message and "the mock's clock" in refused.message
    finally:
        frozen.set_clock(start)
