"""The contract suite's command-line options and Hypothesis profiles, registered by the `pytest11` entry point
`ivh_mock_contract` so that they exist before any test is collected, also for the installed suite:

    pytest --pyargs ivh_mock.contract_tests                            # the mock, in-process
    pytest --pyargs ivh_mock.contract_tests --ivh-base-url URL         # any server; IVH_APPKEY / IVH_ACCESSTOKEN
    pytest --pyargs ivh_mock.contract_tests --ivh-base-url URL --ivh-allow-spend 3
    pytest --pyargs ivh_mock.contract_tests --ivh-base-url URL --ivh-fail-on-drift   # fail on any differing probe
    pytest --pyargs ivh_mock.contract_tests --hypothesis-profile deep  # many more examples

Installing ivh-mock adds these options to every pytest run; they change nothing unless the suite is collected.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from pathlib import Path

import pytest

from . import missing_extra

# Hypothesis profile -> examples per property. `ivh-ci` is the suite's default; Hypothesis has a `ci` of its own,
# which a project's other tests may rely on, so the suite does not take that name.
PROFILES = {"ivh-ci": 25, "deep": 400, "ivh-mutation": 25}


def _register_profiles() -> None:
    """Register the suite's profiles unless a project has its own of the same name (its conftest may also
    register them later: the last registration wins)."""
    try:
        from hypothesis import HealthCheck, settings
        from hypothesis.errors import InvalidArgument
    except ImportError:  # the suite's extra is not installed: the options still parse, the suite says what is missing
        return
    from hypothesis import Phase

    # The mutation check only needs to know that some example fails, not the smallest one: no shrinking (which was
    # most of its time), and no example database (each mutated spec is a new contract).
    mutation = {"database": None, "print_blob": False, "phases": [Phase.explicit, Phase.generate]}
    for name, examples in PROFILES.items():
        try:
            settings.get_profile(name)
        except InvalidArgument:
            options = {"print_blob": True, **(mutation if name == "ivh-mutation" else {})}
            settings.register_profile(name, max_examples=examples, deadline=None, **options,
                                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


_register_profiles()  # at import, before Hypothesis's own plugin reads --hypothesis-profile


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ivh", "ivh-mock contract suite")
    group.addoption("--ivh-base-url", default=None,
                    help="run against this server (live API or a mock elsewhere) instead of the in-process mock")
    group.addoption("--ivh-allow-spend", type=int, default=None,
                    help="with --ivh-base-url: how many submissions may be accepted (and billed); default 0")
    group.addoption("--ivh-spec-dir", default=None, help="give the in-process mock this copy of spec/")
    group.addoption("--ivh-report-dir", default="reports", help="where the drift report is written")
    group.addoption("--ivh-fail-on-drift", action="store_true", default=False,
                    help="fail the drift test when any probe differs from the mock's choice (scheduled live runs)")


@pytest.hookimpl(tryfirst=True)  # before Hypothesis's own plugin loads the profile
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "control: needs the mock's control API (clock, scenarios); skipped against a "
                                       "server without it")
    config.addinivalue_line("markers", "spends: submits requests that are accepted (billed on a live API); limited "
                                       "by --ivh-allow-spend")
    suite = _names_the_suite(config.args)
    if suite:  # the suite is to run: its extra must be there
        for name in ("hypothesis", "schemathesis"):
            if importlib.util.find_spec(name) is None:
                raise pytest.UsageError(missing_extra(name))
        problem = _profile_problem(config.getoption("hypothesis_profile", default=None))
        if problem is not None:  # Hypothesis's own plugin ends the run with an INTERNALERROR and its traceback
            raise pytest.UsageError(problem)
    if (config.getoption("--ivh-allow-spend") or 0) < 0:
        raise pytest.UsageError(f"--ivh-allow-spend {config.getoption('--ivh-allow-spend')}: a number of "
                                f"submissions, 0 or more")
    report_dir = config.getoption("--ivh-report-dir")
    if suite and not report_dir:  # an unset $REPORTS: it had been the current folder
        raise pytest.UsageError("--ivh-report-dir is empty: name the folder the drift report goes in (by default, "
                                "reports)")
    if suite and not hasattr(config, "workerinput") and _runs_tests(config):
        # the run's own controller (one process, or xdist's), as it starts, refused or not: an earlier run's report,
        # of another target perhaps, had stayed to pass for this one's when this one wrote none (-x stopped it before
        # its drift test, -k left that test out, the target was refused below); a collection alone (--co) runs
        # nothing and leaves it
        from ivh_mock.spec import drift

        for name in (drift.JSON_NAME, drift.MARKDOWN_NAME):
            with contextlib.suppress(OSError):  # no such folder, or no folder: said below, for a run that goes on
                (Path(report_dir) / name).unlink(missing_ok=True)
    problem = _target_problem(config)
    if problem is not None:
        raise pytest.UsageError(problem)
    if suite and _runs_tests(config):  # its report's folder made and tried now, not after the run, and only for a
        # run that will go on to write one (no other does: a file `reports` in an app's folder had stopped every run
        # of its tests, and `--co`, `--fixtures` or `--markers` had left an empty folder)
        from ivh_mock.spec import drift

        problem = drift.unwritable(report_dir)
        if problem is not None:
            raise pytest.UsageError(f"--ivh-report-dir {report_dir}: the drift report cannot be written there: "
                                    f"{problem}")


def _profile_problem(name: str | None) -> str | None:
    """Why --hypothesis-profile `name` cannot be loaded (no profile of that name is registered), or None."""
    if name is None:
        return None
    from hypothesis import settings
    from hypothesis.errors import InvalidArgument

    try:
        settings.get_profile(name)
    except InvalidArgument:
        return (f"--hypothesis-profile {name}: no Hypothesis profile of that name is registered (the suite has "
                f"ivh-ci, its default, and deep; a project registers its own in its conftest.py)")
    return None


def _target_problem(config: pytest.Config) -> str | None:
    """Why the run cannot go on against --ivh-base-url, or None (also when it runs against the mock in-process)."""
    base_url = config.getoption("--ivh-base-url")
    if base_url is None:
        return None
    if not base_url.strip():  # an unset $LIVE_URL: not the in-process mock, as no option would be
        return ("--ivh-base-url is empty: give the server's URL, or leave the option out to run against the mock "
                "in-process")
    base_url = config.option.ivh_base_url = base_url.strip()  # a space about a $VARIABLE's value is none of the URL
    appkey, token = os.environ.get("IVH_APPKEY"), os.environ.get("IVH_ACCESSTOKEN")
    if not (appkey and token):
        return ("--ivh-base-url needs IVH_APPKEY and IVH_ACCESSTOKEN in the environment (the account to call the "
                "server as); a served ivh-mock accepts any appkey with its --default-accesstoken")
    if hasattr(config, "workerinput") or not _runs_tests(config):
        return None  # an xdist worker's controller looked already; a run that only collects sends nothing
    try:
        from .target import preflight
    except ImportError:  # the suite's extra is missing: its conftest says so
        return None
    return preflight(base_url, appkey, token, os.environ.get("IVH_MOCK_CONTROL_TOKEN"),
                     parallel=_split(config.getoption("numprocesses", default=None)),
                     spend=config.getoption("--ivh-allow-spend") or 0)


def _runs_tests(config: pytest.Config) -> bool:
    """Whether the run goes on to run tests: not one that only collects or lists (--co, --fixtures,
    --fixtures-per-test, --markers)."""
    return not any(config.getoption(name, default=False) for name in ("collectonly", "showfixtures",
                                                                      "show_fixtures_per_test", "markers"))


def _split(workers: object) -> bool:
    """Whether pytest-xdist's -n splits the run over more than one worker: `-n 0` runs it in this process, `-n 1` in
    one worker, `-n auto` in as many as the machine has cores."""
    return workers not in (None, 0, 1, "0", "1")


def _names_the_suite(args: list[str]) -> bool:
    """Whether the command line names this suite: its package under --pyargs, or a path inside its folder (another
    project's folder of the same name is not it)."""
    here = Path(__file__).resolve().parent
    for arg in args:
        name = str(arg).split("::")[0]
        if name == __package__ or name.startswith(f"{__package__}."):
            return True
        try:
            if Path(name).resolve().is_relative_to(here):
                return True
        except (OSError, ValueError):
            continue
    return False
