"""What a service learns about the HTTP request it answers."""

from dataclasses import dataclass

from ..lifecycle.scenarios import Scenario


@dataclass(frozen=True)
class Call:
    request_id: str
    scenario: Scenario
    base_url: str  # scheme://host the request was sent to
