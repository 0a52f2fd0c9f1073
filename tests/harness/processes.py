"""Server processes for tests: own process group, output in a log file, always stopped.

Every started server is kept in ``RUNNING`` until stopped, so a failed test can show the
servers' logs, and ``stop_all`` (registered with ``atexit``) leaves no orphans behind even
when pytest exits without running fixture teardown.
"""

import atexit
import contextlib
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

STOP_GRACE_SECONDS = 10.0


class StartError(RuntimeError):
    """A server did not become ready; the message carries the tail of its log."""

    def __init__(self, message: str, *, exited: bool) -> None:
        super().__init__(message)
        self.exited = exited


class ServerProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            # A new session makes the server the leader of its own process group, so
            # stopping it also stops every worker it forked.
            self._popen = subprocess.Popen(
                [os.fspath(arg) for arg in argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        RUNNING.append(self)

    @property
    def pid(self) -> int:
        return self._popen.pid

    def exited(self) -> bool:
        return self._popen.poll() is not None

    def log_tail(self, lines: int = 60) -> str:
        try:
            with self.log_path.open(errors="replace") as log:
                return "".join(deque(log, maxlen=lines))
        except FileNotFoundError:
            return ""

    def wait_ready(
        self, is_ready: Callable[[], bool], timeout: float, what: str, interval: float = 0.2
    ) -> float:
        """Poll ``is_ready`` until it returns True; return the seconds waited.

        Fails fast when the process exits, and after ``timeout`` seconds otherwise, with
        the log tail in the message.
        """
        started = time.monotonic()
        while True:
            if self.exited():
                raise self._start_error(f"exited with code {self._popen.returncode}", exited=True)
            if is_ready():
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise self._start_error(f"{what} not ready after {timeout:.0f} s", exited=False)
            time.sleep(interval)

    def _start_error(self, why: str, *, exited: bool) -> StartError:
        message = f"{self.name} {why}; last lines of {self.log_path}:\n{self.log_tail()}"
        return StartError(message, exited=exited)

    def stop(self) -> None:
        """Terminate the whole process group, wait, then kill what is left."""
        if self not in RUNNING:
            return
        RUNNING.remove(self)
        _signal_group(self.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout=STOP_GRACE_SECONDS)
        # Workers may outlive their leader; the group id stays valid while any member lives.
        _signal_group(self.pid, signal.SIGKILL)
        self._popen.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


RUNNING: list[ServerProcess] = []


def start_with_retries(start: Callable[[int], T], attempts: int = 3) -> T:
    """Call ``start(attempt)`` until it succeeds.

    Retries only when the server exited during start-up, which is what losing the race for
    a just-released port looks like; a server that hangs fails at once.
    """
    for attempt in range(1, attempts + 1):
        try:
            return start(attempt)
        except StartError as error:
            if not error.exited or attempt == attempts:
                raise
    raise AssertionError("unreachable")


def stop_all() -> None:
    for server in reversed(list(RUNNING)):
        server.stop()


atexit.register(stop_all)
