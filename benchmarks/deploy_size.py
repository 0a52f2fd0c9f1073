"""Does one deploy cost more when the shared repo holds more environments?

Builds local bare repos holding 10, 1,000 and 20,000 environments of the example model (one
`git fast-import` commit each, as in shared_repo_commit.py, which prints the detail per
operation) and times one deploy's commit into each: `RemoteRepo.apply` writing an environment's
values, app config and DAG, as deploy-online and deploy-batch do. The floor is the same deploy
into a repo with no other environment. The note counts the trees the operation's temporary
clone held: the trees above the environment and its own, not the whole repo's.

Run: .venv/bin/python benchmarks/deploy_size.py [--quick]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from common import Figure, print_table
from shared_repo_commit import build_repo, deploy, load_workload, stop, tree_count

from modelci.systems.gitrepo import RemoteRepo

NAME = "deploy-size"


def deploy_seconds(bare: Path, repetitions: int) -> tuple[list[float], int]:
    """Seconds of each deploy into `bare` (each then stopped again), and the trees the last held."""
    workload = load_workload()
    repo = RemoteRepo(bare.as_uri(), "main")
    warm_up = workload.names("feature/warm-up")  # fills the OS cache; not timed
    deploy(repo, workload, warm_up)
    stop(repo, warm_up)
    seconds = []
    for repetition in range(repetitions):
        names = workload.names(f"feature/bench-{repetition}")
        started = time.perf_counter()
        deploy(repo, workload, names)
        seconds.append(time.perf_counter() - started)
        stop(repo, names)
    objects = repo.last_local_objects
    return seconds, objects.trees if objects else 0


def figures(quick: bool = False) -> list[Figure]:
    sizes, repetitions = ((10, 100), 2) if quick else ((10, 1000, 20_000), 5)
    workload = load_workload()
    result = []
    with tempfile.TemporaryDirectory(prefix="modelci-bench-size-") as tmp:
        empty = Path(tmp) / "empty.git"
        build_repo(empty, workload, 0)
        floor, _ = deploy_seconds(empty, repetitions)
        for size in sizes:
            bare = Path(tmp) / f"shared-{size}.git"
            build_repo(bare, workload, size)
            seconds, held = deploy_seconds(bare, repetitions)
            note = f"repo trees {tree_count(bare):,}, the clone held {held:,}"
            if size == sizes[0]:
                note += "; floor: an empty repo"
            result.append(Figure(NAME, f"deploy among {size:,} envs", "s", seconds, floor, note))
    return result


if __name__ == "__main__":
    print_table(figures(quick="--quick" in sys.argv))
