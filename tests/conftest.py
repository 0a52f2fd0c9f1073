"""Shared fixtures: real SeaweedFS S3, a real MLflow server and bare git remotes.

One S3 and one MLflow server per test session; everything outside ``tests/unit`` is
marked ``slow`` so ``pytest tests/unit`` or ``-m "not slow"`` stays fast.
"""

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import processes
from tests.harness.gitremotes import GitRemotes, make_bare_repo
from tests.harness.mlflowserver import MlflowServer, start_mlflow
from tests.harness.s3server import S3Server, start_seaweedfs

TESTS_DIR = Path(__file__).resolve().parent
UNIT_DIR = TESTS_DIR / "unit"
SERVER_LOG_DIRS = (TESTS_DIR / "integration", TESTS_DIR / "e2e")
LOG_TAIL_LINES = 60


def pytest_configure(config: pytest.Config) -> None:
    # CI runners stop a job with SIGTERM; turning it into an exception lets the fixture
    # teardown stop the servers instead of orphaning them.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# The order files are handed to test workers (scripts/test.sh passes --no-loadscope-reorder,
# which keeps it): the long end-to-end flows first, the many quick unit tests last, where they
# fill the workers that finish early instead of leaving one long flow running alone at the end.
# The files that ran longest (`--durations`, 2026-12-06) lead; a stale entry costs nothing.
LONGEST_FILES = tuple(
    TESTS_DIR / name
    for name in (
        "e2e/test_promotion.py",
        "integration/test_spark_scoring.py",
        "e2e/test_spark_training.py",
        "e2e/test_model_environment.py",
        "integration/test_benchmarks.py",
        "e2e/test_new_teams.py",
    )
)
RUN_ORDER = (*LONGEST_FILES, TESTS_DIR / "e2e", TESTS_DIR / "integration", UNIT_DIR)


def _run_order(item: pytest.Item) -> int:
    return next((n for n, d in enumerate(RUN_ORDER) if item.path.is_relative_to(d)), len(RUN_ORDER))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(UNIT_DIR):
            item.add_marker(pytest.mark.slow)
    items.sort(key=_run_order)  # stable: each file's tests stay together, in their order


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report: pytest.TestReport = yield
    if report.failed and any(item.path.is_relative_to(d) for d in SERVER_LOG_DIRS):
        for server in processes.RUNNING:
            report.sections.append(
                (
                    f"{server.name} log, last {LOG_TAIL_LINES} lines ({server.log_path})",
                    server.log_tail(LOG_TAIL_LINES),
                )
            )
    return report


def _announce(config: pytest.Config, line: str) -> None:
    """Write ``line`` to the terminal even while pytest captures output."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if config.get_verbosity() < 0:
        # Quiet mode writes progress dots without ending the line; write_line cannot tell.
        line = "\n" + line
    if capture is None:
        reporter.write_line(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[S3Server]:
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    _announce(
        pytestconfig,
        f"started SeaweedFS S3 on {server.endpoint_url.removeprefix('http://')} "
        f"(bucket {server.bucket}) in {server.startup_seconds:.1f} s",
    )
    try:
        yield server
    finally:
        if server.process is not None:
            server.process.stop()


@pytest.fixture(scope="session")
def mlflow_server(
    s3: S3Server, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[MlflowServer]:
    server = start_mlflow(tmp_path_factory.mktemp("mlflow"), s3)
    _announce(
        pytestconfig,
        f"started MLflow server on {server.tracking_uri.removeprefix('http://')} "
        f"(sqlite, artifacts {server.artifacts_destination}) in {server.startup_seconds:.1f} s",
    )
    try:
        yield server
    finally:
        if server.process is not None:
            server.process.stop()


_announced: set[str] = set()


@pytest.fixture
def git_remotes(tmp_path: Path, pytestconfig: pytest.Config) -> GitRemotes:
    remotes = tmp_path / "remotes"
    made = GitRemotes(
        dags=make_bare_repo(remotes / "dags.git"),
        gitops=make_bare_repo(remotes / "gitops.git"),
    )
    if "git" not in _announced:
        _announced.add("git")
        _announce(pytestconfig, f"made bare git remotes {made.dags} and {made.gitops} (and more)")
    return made
