"""Report a task's progress to its owner; anyone else's TaskId does not exist for the caller."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..accounts import Account
from ..errors import RecordNotFound
from ..lifecycle import trajectory

if TYPE_CHECKING:
    from ..context import MockContext
    from .call import Call


def run(ctx: MockContext, account: Account, payload: dict[str, Any], call: Call) -> dict[str, Any]:
    task_id = payload["TaskId"]
    task = ctx.store.get_task(task_id)
    if task is None or task.appkey != account.appkey:
        raise RecordNotFound(f"Payload.TaskId {task_id!r} does not exist for this appkey")
    return trajectory.report(ctx, task, ctx.clock.now())
