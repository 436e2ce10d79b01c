"""What a service learns about the HTTP request it answers."""

from dataclasses import dataclass
from typing import Callable

from ..lifecycle.scenarios import Scenario
from ..store import JournalEntry, Task


@dataclass(frozen=True)
class Call:
    request_id: str
    scenario: Scenario
    base_url: str  # scheme://host the request was sent to
    # The request's journal entry should it create `task`: a service that stores a task hands this to the store,
    # which keeps the entry in the same transaction (one write a submission); the route journals every other answer.
    journal: Callable[[Task], JournalEntry] | None = None
