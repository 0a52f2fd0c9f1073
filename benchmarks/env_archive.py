"""How long does the model's environment take: built cold, unpacked from its archive on another
runner, and found in a runner's cache? And how big is the archive?

Starts a real SeaweedFS S3 (the test harness's), then for the example model's requirements
(examples/churn/requirements.txt, with MLServer added as for an online model) times
`ensure_environment` three ways, each in a fresh process-local cache directory where it matters:
  cold    lock, build with uv (its package cache may be warm, as on a long-lived runner), pack,
          upload: what the first pipeline with these requirements pays;
  archive lock, download and unpack: a pipeline on another runner, or a batch pod;
  cache   lock, then the environment is already in this runner's cache.
Every way starts with the lock (`uv pip compile`), so the cache hit costs the lock and one
lookup: it is the floor of the other two. The archive's size is in the note. `--quick` (what the
test suite runs) takes a two-package environment instead, through the same steps.

Run: .venv/bin/python benchmarks/env_archive.py [--quick]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, Figure, print_table

from modelci.lifecycle.modelenv import SERVING_RUNTIME, Archives, ensure_environment
from modelci.systems.s3 import S3Store
from tests.harness.processes import stop_all
from tests.harness.s3server import start_seaweedfs

NAME = "environment"
REQUIREMENTS = ROOT / "examples" / "churn" / "requirements.txt"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
SERVING = SERVING_RUNTIME  # the example has an online model: its environment carries MLServer
QUICK_REQUIREMENTS = "mlflow-skinny==3.17.2\nsix==1.16.0\n"


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def figures(quick: bool = False) -> list[Figure]:
    repeat = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="modelci-bench-env-") as tmp:
        base = Path(tmp)
        requirements, serving = REQUIREMENTS, SERVING
        if quick:
            requirements, serving = base / "requirements.txt", ()
            requirements.write_text(QUICK_REQUIREMENTS, encoding="utf-8")
        s3 = start_seaweedfs(base / "s3")
        try:
            os.environ.update(s3.env)
            store = S3Store(s3.endpoint_url, s3.region)
            results: dict[str, list[float]] = {"cold": [], "archive": [], "cache": []}
            size = 0
            for number in range(repeat):
                archives = Archives(store, f"s3://{s3.bucket}/bench-{number}/envs")
                builder = base / f"builder-{number}"
                cold, built = timed(
                    lambda a=archives, b=builder: ensure_environment(
                        PYTHON, requirements, b, a, serving
                    )
                )
                assert built.how == "built", built
                warm, unpacked = timed(
                    lambda a=archives, n=number: ensure_environment(
                        PYTHON, requirements, base / f"runner-{n}", a, serving
                    )
                )
                assert unpacked.how == "unpacked from its archive", unpacked
                hit, cached = timed(
                    lambda a=archives, b=builder: ensure_environment(
                        PYTHON, requirements, b, a, serving
                    )
                )
                assert cached.how == "reused", cached
                results["cold"].append(cold)
                results["archive"].append(warm)
                results["cache"].append(hit)
                key = built.archive_uri.split("/", 3)[3]
                size = s3.client().head_object(Bucket=s3.bucket, Key=key)["ContentLength"]
        finally:
            stop_all()
        which = "mlflow-skinny and six (--quick)" if quick else REQUIREMENTS.relative_to(ROOT)
    note = f"{which}, Python {PYTHON}; archive {size / 1e6:.1f} MB"
    floor = results["cache"]
    return [
        Figure(NAME, "built cold", "s", results["cold"], floor, note),
        Figure(NAME, "unpacked from its archive", "s", results["archive"], floor),
        Figure(NAME, "found in the runner's cache", "s", floor),
    ]


if __name__ == "__main__":
    print_table(figures(quick="--quick" in sys.argv))
