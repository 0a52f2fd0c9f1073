"""Python loads this at start in a job the `jobs` benchmark traces (its directory is put on
PYTHONPATH): it adds up how long the job waits on the network calls it makes, the figure its
floor is built from, and writes it as JSON to $MODELCI_BENCH_NETWAIT at exit.

- HTTP (MLflow's REST API through urllib, S3 through botocore): the time blocked in socket
  connects, sends and reads; each response counts as one request.
- git: the lifetime of each git process that talks to a remote (fetch, push, ls-remote).

Only the benchmark sets the variable; without it this file does nothing.
"""

from __future__ import annotations

import atexit
import functools
import http.client
import json
import os
import socket
import subprocess
import time

_REMOTE_GIT_COMMANDS = frozenset({"fetch", "push", "ls-remote", "clone"})
_waits = {"http_seconds": 0.0, "http_requests": 0, "git_seconds": 0.0, "git_processes": 0}


def _timed(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            _waits["http_seconds"] += time.perf_counter() - start

    return wrapper


def _counted(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        _waits["http_requests"] += 1
        return method(*args, **kwargs)

    return wrapper


def _is_remote_git(args) -> bool:
    argv = [str(a) for a in args] if isinstance(args, (list, tuple)) else str(args).split()
    return (
        bool(argv)
        and os.path.basename(argv[0]) == "git"
        and bool(_REMOTE_GIT_COMMANDS.intersection(argv[1:4]))
    )


_popen_init = subprocess.Popen.__init__
_popen_wait = subprocess.Popen.wait


def _init(self, args, *rest, **kwargs):
    self._netwait_start = time.perf_counter() if _is_remote_git(args) else None
    _popen_init(self, args, *rest, **kwargs)


def _wait(self, *args, **kwargs):
    status = _popen_wait(self, *args, **kwargs)
    start = getattr(self, "_netwait_start", None)
    if start is not None:
        _waits["git_seconds"] += time.perf_counter() - start
        _waits["git_processes"] += 1
        self._netwait_start = None
    return status


def _write() -> None:
    with open(os.environ["MODELCI_BENCH_NETWAIT"], "w") as out:
        json.dump(_waits, out)


if os.environ.get("MODELCI_BENCH_NETWAIT"):
    for name in ("connect", "sendall", "recv", "recv_into"):
        setattr(socket.socket, name, _timed(getattr(socket.socket, name)))
    http.client.HTTPConnection.getresponse = _counted(http.client.HTTPConnection.getresponse)
    subprocess.Popen.__init__ = _init
    subprocess.Popen.wait = _wait
    atexit.register(_write)
