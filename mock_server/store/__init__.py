"""Where the mock keeps its state. One interface (`Store`), several backends; every test runs against each."""

from .base import JournalEntry, Store, Task
from .memory import MemoryStore

__all__ = ["JournalEntry", "MemoryStore", "Store", "Task"]
