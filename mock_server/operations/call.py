"""What a service learns about the HTTP request it answers."""

from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from ..errors import ApiError
from ..lifecycle.scenarios import Scenario
from ..store import JournalEntry, Task

Made = TypeVar("Made")


@dataclass(frozen=True)
class Call:
    request_id: str
    scenario: Scenario
    base_url: str  # scheme://host the request was sent to
    # The request's journal entry should it create `task`: a service that stores a task hands this to the store,
    # which keeps the entry in the same transaction (one write a submission); the route journals every other answer.
    journal: Callable[[Task], JournalEntry] | None = None
    # What the request's steps came to, shared by each answer made to it: a Redis store may have the request answered
    # again (StaleRead, DECISIONS.md D70), and the caller's media host must not see a second download.
    made: dict[str, Any] = field(default_factory=dict)

    def once(self, name: str, make: Callable[[], Made]) -> Made:
        """What `make()` returns, or the API error it raises, made once for the HTTP request."""
        if name not in self.made:
            try:
                self.made[name] = (make(), None)
            except ApiError as error:  # a refusal, kept to be raised again by the request's next answer
                self.made[name] = (None, error)
        value, error = self.made[name]
        if error is not None:
            raise error
        return value
