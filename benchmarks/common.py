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


# Forks the command from a small process and reports its wall time and peak memory. Started
# from the benchmark itself, a command's ru_maxrss would be at least the benchmark's own: on
# exec, Linux keeps the high-water mark of the memory the new program replaces, and Python
# spawns children with vfork, i.e. in the benchmark's memory.
_LAUNCHER = """
import os, sys, time
report, argv = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as out:
    out.write(f"{time.perf_counter() - started} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_process(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> Finished:
    """Run a command to its end; exits the benchmark with its output if it failed."""
    with tempfile.TemporaryDirectory(prefix="modelci-bench-run-") as tmp:
        report, output = Path(tmp) / "report", Path(tmp) / "output"
        with output.open("wb") as out:
            launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(report), *argv]
            status = subprocess.run(
                launcher, cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT
            ).returncode
        text = output.read_text("utf-8", "replace")
        if status != 0:
            raise SystemExit(f"{' '.join(argv)} exited {status}:\n{text[-4000:]}")
        seconds, peak_kb = report.read_text().split()
    return Finished(float(seconds), int(peak_kb) / 1024, text)


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
