"""The package as users get it: a wheel with one import name, installed beside somebody else's app, its pytest
plugins and contract suite working from any folder, and the layer rules of docs/ARCHITECTURE.md kept by what ships."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
from ivh_mock.proxy import read_records

from . import forked
from .conftest import ServeProcess, assert_the_suite_passed

ROOT = Path(__file__).resolve().parents[1]
UV = str(Path(sys.executable).with_name("uv"))  # the test extra's: builds and installs in a fraction of pip's time
SHADOWS = {  # an app's own modules with the names the package used to install at the top level
    "client.py": "class Client:\n    def __init__(self, url):\n        self.url = url\n",
    "spec/__init__.py": "SPEC = 'the app's own'\n",
    "mock_server.py": "def create_app():\n    return 'the app's own'\n",
    "contract_tests/__init__.py": "",
}


def uv(args: list[str], temp: Path, **kwargs) -> subprocess.CompletedProcess:
    """Run uv with its temporary files in `temp`: a build leaves a lock file behind in the temporary folder, one
    more in /tmp at every run of the tests."""
    return subprocess.run([UV, *args], env={**os.environ, "TMPDIR": str(temp)}, **kwargs)


def source_copy(tmp_path: Path) -> Path:
    """A copy of the project's sources to build from: a build writes into its source tree (build/, *.egg-info),
    so two builds of the checkout at once, from two test workers, would trip over each other."""
    copy = tmp_path / "source"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info",
                                                              "__pycache__", ".pytest_cache", ".hypothesis", "data",
                                                              "reports", ".prism", "node_modules"))
    return copy


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    source = source_copy(tmp_path_factory.mktemp("wheel-source"))
    build = uv(["build", "--wheel", "--out-dir", str(out), str(source)], tmp_path_factory.mktemp("uv"),
               check=True, capture_output=True, text=True, timeout=300)
    # setuptools warns of a folder of data files it packages that the configuration does not name: a later one may
    # leave it out (the dashboard's files had been in that case)
    assert "absent from the `packages` configuration" not in build.stderr + build.stdout, build.stderr[-3000:]
    return next(out.glob("ivh_mock-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """A fresh venv holding the wheel with its contract extra, and an app folder that shadows the old names."""
    home = tmp_path_factory.mktemp("app")
    venv = home / ".venv"
    # without a pip of its own (installing one was a sixth of this fixture's time): uv installs into it, and, as
    # pip's --no-compile, leaves the tests to compile what they import, not every module of every dependency (D65)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    install = uv(["pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), f"{wheel}[contract]"],
                 tmp_path_factory.mktemp("uv"), capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    app = home / "app"
    for name, text in SHADOWS.items():
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text(text, encoding="utf-8")
    # Hypothesis's Unicode tables, as a folder where it ran before has them: computing them again (about 2 s of CPU)
    # is Hypothesis's own first-run cost, and in this app folder the suite's run paid it in every run of the tests
    tables = ROOT / ".hypothesis" / "unicode_data"  # kept there as `make test` starts (tests/conftest.py)
    if tables.is_dir():
        shutil.copytree(tables, app / ".hypothesis" / "unicode_data")
    (app / "tests").mkdir()
    (app / "tests" / "test_my_app.py").write_text((ROOT / "examples" / "test_my_app.py").read_text(encoding="utf-8"),
                                                  encoding="utf-8")
    return venv / "bin", app


def test_the_wheel_has_one_import_name_and_carries_its_data_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"ivh_mock"}
    for needed in ("spec/openapi.yaml", "spec/error-codes.yaml", "spec/DECISIONS.md", "spec/__init__.py",
                   "mock_server/accounts.schema.yaml", "mock_server/routes/control.schema.yaml",
                   "mock_server/lifecycle/scenarios.yaml", "mock_server/app.py", "client/api.py", "client/cli.py",
                   "mock_server/routes/ui/index.html", "mock_server/routes/ui/dashboard.js",
                   "mock_server/routes/ui/dashboard.css", "contract_tests/plugin.py", "contract_tests/conftest.py",
                   "py.typed"):
        assert f"ivh_mock/{needed}" in names, f"{needed} missing from {wheel.name}"
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    for line in ("ivh-mock = ivh_mock.commands:mock", "ivh = ivh_mock.commands:ivh",
                 "ivh_mock = ivh_mock.mock_server.serving.pytest_plugin",
                 "ivh_mock_contract = ivh_mock.contract_tests.plugin"):
        assert line in entry_points


def test_every_package_folder_is_in_the_wheel(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("spec", "mock_server", "client", "contract_tests", "proxy"):
        for init in (ROOT / folder).rglob("__init__.py"):
            assert f"ivh_mock/{init.relative_to(ROOT).as_posix()}" in names, f"{init.parent} is not packaged"


def test_the_app_tests_pass_beside_modules_named_like_the_old_packages(installed):
    bin_dir, app = installed
    for command in ([str(bin_dir / "pytest")], [str(bin_dir / "python"), "-m", "pytest"]):
        run = subprocess.run([*command, "-q", "-p", "no:cacheprovider", "tests"], cwd=app, capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        assert "2 passed" in run.stdout


def test_the_commands_work_from_the_app_folder(installed):
    bin_dir, app = installed
    for command in ("ivh-mock", "ivh"):
        run = subprocess.run([str(bin_dir / command), "--version"], cwd=app, capture_output=True, text=True,
                             timeout=60)
        assert run.returncode == 0, run.stderr
        assert "0.1.0" in run.stdout or "0.1.0" in run.stderr


# Worth its time: the whole suite's run over HTTP on the SQLite store (D65), from the wheel, through the wheel's
# recording proxy: the one end-to-end proof that the installed commands work together, that the proxy is transparent
# to every request the suite sends (Schemathesis's included) and that conforming traffic leaves no finding.
@pytest.mark.slow
def test_the_installed_contract_suite_runs_through_the_recording_proxy_against_a_served_mock(installed, tmp_path):
    bin_dir, app = installed
    record, reports = tmp_path / "rec", tmp_path / "reports"
    with ServeProcess(tmp_path / "data", "--store", f"sqlite:{tmp_path / 'store.sqlite3'}", "--queue-seconds", "0.5",
                      "--render-startup", "1", cwd=app, command=str(bin_dir / "ivh-mock")) as served:
        errors = tmp_path / "proxy.err"  # a file, not a pipe nobody reads while the suite runs
        with open(errors, "w") as stderr:
            proxy = subprocess.Popen([str(bin_dir / "ivh-mock"), "proxy", "--upstream", served.url, "--port", "0",
                                      "--record", str(record)], cwd=app, stdout=subprocess.PIPE, stderr=stderr,
                                     text=True)
        try:
            url = proxy.stdout.readline().split("listening on ", 1)[1].strip()
            env = {**os.environ, "IVH_APPKEY": "contract-from-wheel", "IVH_ACCESSTOKEN": "mock-accesstoken"}
            suite = [str(bin_dir / "pytest"), "-q", "-p", "no:cacheprovider", "--pyargs", "ivh_mock.contract_tests",
                     "--ivh-base-url", url, "--ivh-report-dir", str(reports)]
            run = subprocess.run([*suite, "--ivh-allow-spend", "100000"], cwd=app, env=env, capture_output=True,
                                 text=True, timeout=600)
            assert_the_suite_passed(run, url, reports)
            deep = subprocess.run([*suite, "--hypothesis-profile", "deep", "--collect-only"], cwd=app, env=env,
                                  capture_output=True, text=True, timeout=300)
            assert deep.returncode == 0, deep.stdout[-2000:] + deep.stderr[-2000:]
        finally:
            proxy.send_signal(signal.SIGTERM)
            try:
                ended = proxy.wait(timeout=30)
            finally:
                proxy.kill()
                proxy.stdout.close()
        said = errors.read_text()
        assert ended == 0 and "Traceback" not in said and "ivh-mock proxy: drift" not in said, said[-3000:]
        assert served.stop() == 0 and "Traceback" not in served.errors(), served.errors()[-3000:]
    assert sum(1 for _ in read_records(record)) > 100
    drift = subprocess.run([str(bin_dir / "ivh-mock"), "drift", str(record), "--suite-report",
                            str(reports / "drift-report.json")], cwd=app, capture_output=True, text=True, timeout=300)
    assert drift.returncode == 0, drift.stdout[-3000:] + drift.stderr[-3000:]
    merged = json.loads((record / "drift-report.json").read_text(encoding="utf-8"))
    assert merged["findings"] == [] and {row["verdict"] for row in merged["probes"]} == {"agree"}


def test_the_suite_says_once_that_credentials_are_missing(installed):
    bin_dir, app = installed
    env = {key: value for key, value in os.environ.items() if not key.startswith("IVH_")}
    run = subprocess.run([str(bin_dir / "pytest"), "-q", "-p", "no:cacheprovider", "--pyargs",
                          "ivh_mock.contract_tests", "--ivh-base-url", "http://127.0.0.1:9"],
                         cwd=app, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 4  # pytest's usage error: nothing ran
    assert (run.stdout + run.stderr).count("needs IVH_APPKEY and IVH_ACCESSTOKEN") == 1


def test_the_layer_rules_hold_in_what_ships(wheel, tmp_path):
    site = tmp_path / "site"
    uv(["pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)], tmp_path, check=True,
       capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(site)}
    lint = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--config",
                           str(ROOT / ".importlinter"), "--no-cache"], cwd=site, env=env, capture_output=True,
                          text=True, timeout=300)
    assert lint.returncode == 0, lint.stdout[-4000:]
    cycles = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import grimp
        graph = grimp.build_graph("ivh_mock", include_external_packages=True, cache_dir=None)
        old = {"spec", "client", "mock_server", "contract_tests", "proxy"}
        bare = sorted(m for m in graph.modules if m.split(".")[0] in old)
        assert not bare, f"imports of the old top-level names: {bare}"
        for module in sorted(m for m in graph.modules if m.startswith("ivh_mock.")):
            for other in graph.find_modules_directly_imported_by(module):
                if other.startswith("ivh_mock.") and graph.chain_exists(other, module):
                    raise SystemExit(f"import cycle: {module} -> {other} -> ... -> {module}")
        print("acyclic")
    """)], cwd=site, env=env, capture_output=True, text=True, timeout=300)
    assert cycles.returncode == 0 and "acyclic" in cycles.stdout, cycles.stdout + cycles.stderr


def test_the_sdist_carries_what_its_own_tests_need(tmp_path):
    build = uv(["build", "--sdist", "--quiet", "--out-dir", str(tmp_path), str(source_copy(tmp_path))], tmp_path,
               capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    [archive] = tmp_path.glob("ivh_mock-*.tar.gz")
    with tarfile.open(archive) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for needed in ("Makefile", "uv.lock", "README.md", ".importlinter", "tests/conftest.py", "examples/test_my_app.py",
                   "bench/__main__.py", "spec/openapi.yaml", "mock_server/routes/ui/index.html",
                   "contract_tests/plugin.py", "ivh_mock/__init__.py", "docs/ARCHITECTURE.md"):
        assert needed in names, f"{needed} missing from the sdist"


def test_uv_lock_is_what_pyproject_toml_resolves_to(tmp_path):
    """`make` installs .venv from uv.lock (D65); one that pyproject.toml has outgrown is resolved again at every fresh
    install, asking the package index about each package, which uv.lock is there to spare."""
    check = uv(["lock", "--locked", "--offline"], tmp_path, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, f"uv.lock is out of date with pyproject.toml (run `uv lock`): {check.stderr[-2000:]}"


def test_the_fixtures_work_under_xdist(tmp_path):
    sample = (ROOT / "examples" / "test_my_app.py").read_text(encoding="utf-8")
    for copy in range(3):  # several files, so that both workers start their own servers at the same time
        (tmp_path / f"test_app_{copy}.py").write_text(sample, encoding="utf-8")
    run = forked.run(["-q", "-n", "2", "-p", "no:cacheprovider", str(tmp_path)], cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "6 passed" in run.stdout


def test_the_fixtures_leave_nothing_to_the_garbage_collector_and_ignore_the_environments_proxy(tmp_path):
    """Under `filterwarnings = error` (a common app setting), every test of the fixture left its scratch folder to the
    collector, whose ResourceWarning failed whichever later test it fell in; and with HTTP_PROXY set (no NO_PROXY),
    `ivh_client` sent its calls to the mock on loopback through the proxy. A result read in-process
    (`in_process_session`) left its file open."""
    (tmp_path / "test_app.py").write_text((ROOT / "examples" / "test_my_app.py").read_text(encoding="utf-8"),
                                          encoding="utf-8")
    (tmp_path / "conftest.py").write_text(textwrap.dedent("""
        import gc
        import pytest

        @pytest.fixture(autouse=True)
        def collect():  # the collector runs after each test, not when it happens to
            yield
            gc.collect()
    """), encoding="utf-8")
    (tmp_path / "test_in_process.py").write_text(textwrap.dedent("""
        from ivh_mock.client import Client
        from ivh_mock.mock_server import VirtualClock, create_app, in_process_session, stop_app

        def test_a_result_read_in_process():
            clock = VirtualClock()
            app = create_app({"background": False}, clock=clock)
            session = in_process_session(app)
            ivh = Client("app", "mock-accesstoken", "http://ivh-mock.localhost", session=session,
                         clock=clock.now, sleep=clock.advance, monotonic=clock.now)
            task = ivh.phototovideonotrain(RefPhotoUrl="http://ivh-mock.localhost/__mock__/assets/samples/photo.jpg",
                                           DriverType="Text", InputSsml="hello",
                                           SpeechParam={"TimbreKey": "female_1", "Speed": 1.0})
            result = ivh.wait(task.task_id)
            assert session.get(result.media_url).content[4:8] == b"ftyp"
            stop_app(app)
    """), encoding="utf-8")
    env = {**os.environ, "HTTP_PROXY": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9", "NO_PROXY": "",
           "no_proxy": ""}
    run = forked.run(["-q", "-W", "error", "-p", "no:cacheprovider", str(tmp_path)], cwd=tmp_path, env=env,
                     timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "failed" not in run.stdout and "passed" in run.stdout


def test_a_run_that_never_uses_the_mock_does_not_import_it(tmp_path):
    """The plugin's entry point is in ivh_mock.mock_server, whose __init__ imported the whole mock (Flask, Pillow,
    PyAV): some 0.4 s added to every pytest run of every project it was installed beside, and of each xdist worker.
    A test that uses it, deselected (`-k`), had it imported all the same."""
    (tmp_path / "test_trivial.py").write_text(textwrap.dedent("""
        import sys

        def test_deselected(ivh_mock):
            pass

        def test_nothing_heavy_was_imported():
            heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("flask", "werkzeug", "PIL", "av", "jsonschema")
                           or m.startswith(("ivh_mock.mock_server.app", "ivh_mock.spec.")))
            assert heavy == []

        def test_the_package_names_still_import():
            from ivh_mock.mock_server import MockServer, VirtualClock, create_app
            import ivh_mock.mock_server as package
            assert callable(create_app) and MockServer.__name__ == "MockServer" and VirtualClock(frozen=True)
            assert sorted(package.__all__) == package.__all__ and "create_app" in package.__all__
    """), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                          "-k", "not deselected", str(tmp_path)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "2 passed, 1 deselected" in run.stdout


def test_sigterm_during_a_test_of_the_fixture_stops_its_mock_and_removes_its_scratch_folder(tmp_path):
    """SIGTERM (a CI job's timeout) killed the run where it stood: the test's mock left its scratch folder behind."""
    note = tmp_path / "scratch.txt"
    (tmp_path / "test_stopped.py").write_text(textwrap.dedent(f"""
        import os, signal, time

        def test_stopped(ivh_mock):
            open({str(note)!r}, "w").write(ivh_mock.app.extensions["ivh_mock_scratch"].name)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
    """), encoding="utf-8")
    run = forked.run(["-q", "-p", "no:cacheprovider", str(tmp_path)], cwd=tmp_path, timeout=60)
    assert run.returncode == 2 and "KeyboardInterrupt" in run.stdout, (run.returncode, run.stdout[-3000:])
    assert not Path(note.read_text()).exists()


def test_sigterm_to_an_xdist_runs_process_group_ends_it_as_ctrl_c_does(tmp_path):
    """A CI job's timeout signals the whole process group: under pytest-xdist the controller, which runs no test and
    so had no handler, died at once (exit status -15), and its workers, their tests interrupted, raised tracebacks at
    a controller gone. Now the controller takes SIGTERM as Ctrl-C once a worker's mock serves."""
    (tmp_path / "test_long.py").write_text(textwrap.dedent(f"""
        import os, time

        def test_long(ivh_mock, worker_id):
            with open({str(tmp_path)!r} + "/scratch-" + worker_id, "w") as note:
                note.write(ivh_mock.app.extensions["ivh_mock_scratch"].name)
            time.sleep(60)

        test_long_too = test_long
    """), encoding="utf-8")
    notes = [tmp_path / "scratch-gw0", tmp_path / "scratch-gw1"]
    returncode, out = _xdist_run_signalled(["-n", "2", str(tmp_path)], tmp_path, lambda: all(
        note.exists() and note.read_text() for note in notes), group=True)
    assert returncode == 2 and "KeyboardInterrupt" in out, (returncode, out[-3000:])
    assert "Traceback" not in out and "cannot send" not in out, out[-3000:]
    assert not [note.read_text() for note in notes if Path(note.read_text()).exists()]  # both mocks stopped


def test_sigterm_to_an_xdist_controller_alone_ends_the_run_once_a_mock_asked_for_in_a_test_served(tmp_path):
    """A mock a test asks for as it runs (request.getfixturevalue) marked nothing: the controller, signalled alone,
    died at once (exit status -15), its worker left running its test."""
    (tmp_path / "test_asked.py").write_text(textwrap.dedent(f"""
        import time

        def test_asks_for_a_mock(request):
            assert request.getfixturevalue("ivh_mock").base_url

        def test_long():
            open({str(tmp_path / "started")!r}, "w").close()
            time.sleep(60)
    """), encoding="utf-8")
    returncode, out = _xdist_run_signalled(["-p", "no:randomly", "-n", "1", str(tmp_path)], tmp_path,
                                           (tmp_path / "started").exists, group=False)
    assert returncode == 2 and "KeyboardInterrupt" in out and "1 passed" in out, (returncode, out[-3000:])


def _xdist_run_signalled(args: list[str], cwd: Path, ready, group: bool) -> tuple[int, str]:
    """Run `pytest -q *args` in `cwd` (Ctrl-C's default in it, whatever this process has), send it SIGTERM once
    `ready()` (to its whole process group, as a CI runner does, or to it alone) and return its exit status and
    output."""
    run = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=cwd,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=group,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not ready():
            assert time.monotonic() < deadline and run.poll() is None, run.stdout.read()[-3000:]
            time.sleep(0.1)
        if group:
            os.killpg(run.pid, signal.SIGTERM)
        else:
            run.send_signal(signal.SIGTERM)
        out, _ = run.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(run.pid, signal.SIGKILL)
            else:
                run.kill()
    return run.returncode, out


def test_the_suite_keeps_its_hypothesis_profile_to_itself(tmp_path):
    """Collecting the contract suite loaded its profile (25 examples, no deadline) for the whole session: an app's
    own tests, collected beside it, lost the profile their conftest had loaded."""
    (tmp_path / "conftest.py").write_text(textwrap.dedent("""
        from hypothesis import settings

        settings.register_profile("apps-own", max_examples=500, deadline=200)
        settings.load_profile("apps-own")
    """), encoding="utf-8")
    (tmp_path / "test_app.py").write_text(textwrap.dedent("""
        from hypothesis import given, settings, strategies as st

        @given(st.integers())
        def test_the_apps_profile(n):
            assert settings.default.max_examples == 500

        def test_the_suites_own_tests_keep_theirs():
            import sys  # collected, so imported, before any test runs

            [suite] = [module for name, module in sys.modules.items() if name.endswith("test_constraints")]
            speed = suite.test_speed_is_between_0_5_and_1_5
            assert speed._hypothesis_internal_use_settings.max_examples == 25
    """), encoding="utf-8")
    run = forked.run(["-q", "-p", "no:cacheprovider", str(tmp_path), "--pyargs",
                      "ivh_mock.contract_tests.test_constraints", "-k", "apps or suites or speed"], cwd=tmp_path,
                     timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "failed" not in run.stdout and "passed" in run.stdout
