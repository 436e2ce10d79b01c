"""The target-agnostic contract suite (runs against the mock by default, or any server given its URL)."""
