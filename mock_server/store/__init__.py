"""Where the mock keeps its state. One interface (`Store`), several backends; every test runs against each."""

from .base import NEVER, CallbackAttempt, JournalEntry, Store, Task
from .memory import MemoryStore

__all__ = ["NEVER", "CallbackAttempt", "JournalEntry", "MemoryStore", "Store", "Task"]
