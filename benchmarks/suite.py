"""Every benchmark, one table: `.venv/bin/python benchmarks/suite.py [--quick] [--only a,b]`.

Each row is one figure: min/median/max over its samples, the median of its floor measured in
the same run, and the ratio to that floor (what carries over to another machine). The first
line says which machine it ran on. About 32 minutes on 2 cores (five of them waiting for
Airflow's default 5-minute bundle refresh); --quick runs each benchmark at a small size in a
few minutes, as the tests do, so that none of them rots. Needs what `scripts/bootstrap.sh`
installs, and PyPI for dag-factory on the first run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import cleanup
import code_archive
import commit_to_listed
import concurrent_deploys
import dag_parse
import deploy_size
import env_archive
import fleet
import job_overhead
import monitoring_check
import spark_scoring
from common import HEADER, Figure, machine, row

BENCHMARKS: dict[str, Callable[[bool], list[Figure]]] = {
    module.NAME: module.figures
    for module in (
        job_overhead,
        deploy_size,
        concurrent_deploys,
        cleanup,
        code_archive,
        dag_parse,
        env_archive,
        commit_to_listed,
        monitoring_check,
        fleet,
        spark_scoring,
    )
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    parser.add_argument("--only", default="", help=f"comma-separated: {', '.join(BENCHMARKS)}")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")
    print(machine())
    print(HEADER, flush=True)
    started = time.monotonic()
    count = 0
    for name in chosen:
        for figure in BENCHMARKS[name](args.quick):  # each benchmark's rows as soon as it ends
            print(row(figure), flush=True)
            count += 1
    print(f"{count} figures in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
