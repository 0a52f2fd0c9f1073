"""What every benchmark shares: a figure, the one table they print, and a timed process.

A figure is several samples of one quantity and, where one makes sense, samples of its floor
measured in the same run (a bare Python start for a job, the same deploy into an empty repo,
the serial run of a burst...): the ratio to the floor is what carries from one machine to
another, the seconds are what this machine saw.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


@dataclass(frozen=True)
class Figure:
    benchmark: str
    name: str
    unit: str
    samples: Sequence[float]
    floor: Sequence[float] | None = None  # same unit, same run
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if not self.floor:
            return None
        floor = statistics.median(self.floor)
        return statistics.median(self.samples) / floor if floor else None


@dataclass(frozen=True)
class Finished:
    seconds: float
    peak_mb: float  # the largest resident set of the process and of any it waited for
    output: str


def run_process(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> Finished:
    """Run a command to its end; exits the benchmark with its output if it failed."""
    with tempfile.TemporaryFile() as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env), stdout=output, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read().decode("utf-8", "replace")
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {process.returncode}:\n{text[-4000:]}")
    return Finished(seconds, usage.ru_maxrss / 1024, text)


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def machine() -> str:
    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()[0]
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores {platform.machine()}, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"{git}, load average {load:.2f} at the start"
    )


HEADER = (
    f"{'benchmark':<14} {'figure':<40} {'n':>3} {'min':>8} {'median':>8} {'max':>8} "
    f"{'unit':<4} {'floor':>8} {'x floor':>7}  note"
)


def row(figure: Figure) -> str:
    samples = figure.samples
    floor = f"{statistics.median(figure.floor):8.3g}" if figure.floor else f"{'-':>8}"
    ratio = f"{figure.ratio:7.2f}" if figure.ratio is not None else f"{'-':>7}"
    return (
        f"{figure.benchmark:<14} {figure.name:<40} {len(samples):>3} {min(samples):8.3g} "
        f"{statistics.median(samples):8.3g} {max(samples):8.3g} {figure.unit:<4} {floor} "
        f"{ratio}  {figure.note}"
    ).rstrip()


def print_table(figures: Sequence[Figure]) -> None:
    print(HEADER)
    for figure in figures:
        print(row(figure))
    sys.stdout.flush()
