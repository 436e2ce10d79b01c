"""The target-agnostic contract suite (runs against the mock by default, or any server given its URL)."""


def missing_extra(name: str) -> str:
    """What to say when the suite's dependency `name` is not installed (here: no module of the suite needs pytest to
    say it, the mutation check included)."""
    return f"the contract suite needs {name}, which the package's `contract` extra installs: pip install " \
           f"'ivh-mock[contract]'"
