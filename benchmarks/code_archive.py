"""Does archiving and uploading the code cost memory in proportion to the repository?

Makes a model repository holding 0, 100 MB and 1 GB of incompressible files (one file: git's
worst case, a single blob), cloned as a CI job's checkout has it (objects packed), starts
SeaweedFS (the tests' S3), and runs what `resolve` does to stage the code
(`modelci.lifecycle.deploy.upload_code_archive`: `git archive` into a temporary file, hashed on
the way, then S3's managed multipart upload) in a process of its own. The figure is that process's
peak resident memory, git's included. The floor is a process that imports the same modules
and makes the same S3 client, but archives and uploads nothing. The note gives the time and
the archive's size.

Run: .venv/bin/python benchmarks/code_archive.py [--quick]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from common import Figure, Finished, print_table, run_process

from tests.harness.processes import stop_all
from tests.harness.s3server import S3Server, start_seaweedfs

NAME = "code-archive"
MB = 1 << 20
DRIVER = """
import sys
from pathlib import Path
import modelci.lifecycle.deploy, modelci.systems.gitarchive, s3transfer.manager
from modelci.systems.s3 import S3Store
endpoint, uri, repo, commit = sys.argv[1:5]
store = S3Store(endpoint, "us-east-1")
if uri:
    print(modelci.lifecycle.deploy.upload_code_archive(store, uri, Path(repo), commit))
"""
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@modelci.invalid"]


def checkout(base: Path, size_mb: int) -> tuple[Path, str]:
    """A clone of a one-commit repository of a training script and `size_mb` of random
    bytes in one file; (path, commit)."""
    seed = base / "seed"
    (seed / "data").mkdir(parents=True)
    (seed / "train.py").write_text("print('trained')\n")
    with (seed / "data" / "big.bin").open("wb") as out:
        for _ in range(size_mb):
            out.write(os.urandom(MB))
    for args in (["init", "-q", "-b", "main"], ["add", "--all"], ["commit", "-q", "-m", "m"]):
        subprocess.run([*GIT, *args], cwd=seed, check=True)
    clone = base / "checkout"
    subprocess.run([*GIT, "clone", "-q", "--no-local", "--no-checkout", str(seed), str(clone)],
                   check=True)  # fmt: skip
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True, check=True
    ).stdout.strip()
    return clone, commit


def upload(s3: S3Server, base: Path, repo: Path, commit: str, uri: str) -> Finished:
    env = {**os.environ, **s3.env}
    argv = [sys.executable, "-c", DRIVER, s3.endpoint_url, uri, str(repo), commit]
    return run_process(argv, base, env)


def measure(
    s3: S3Server, size_mb: int, repeat: int
) -> tuple[list[Finished], list[Finished], float]:
    """(archive+upload runs, floor runs, the archive's MB) for a repository of `size_mb`."""
    with tempfile.TemporaryDirectory(prefix=f"modelci-bench-code-{size_mb}-") as tmp:
        base = Path(tmp)
        repo, commit = checkout(base, size_mb)
        runs, floors, archive_mb = [], [], 0.0
        for _ in range(repeat):
            key = f"bench/code/{uuid.uuid4().hex}.tar.gz"
            runs.append(upload(s3, base, repo, commit, f"s3://{s3.bucket}/{key}"))
            floors.append(upload(s3, base, repo, commit, ""))
            archive_mb = s3.client().head_object(Bucket=s3.bucket, Key=key)["ContentLength"] / MB
            s3.client().delete_object(Bucket=s3.bucket, Key=key)
    return runs, floors, archive_mb


def figures(quick: bool = False) -> list[Figure]:
    sizes, repeat = ((0, 16), 1) if quick else ((0, 100, 1000), 3)
    result = []
    with tempfile.TemporaryDirectory(prefix="modelci-bench-code-s3-") as tmp:
        s3 = start_seaweedfs(Path(tmp))
        try:
            for size in sizes:
                runs, floors, archive_mb = measure(s3, size, repeat)
                seconds = sorted(run.seconds for run in runs)[len(runs) // 2]
                note = (
                    f"archive {archive_mb:.1f} MB in {seconds:.1f} s (median); floor: the same "
                    "process, nothing archived"
                )
                result.append(
                    Figure(NAME, f"peak memory, {size:,} MB of files", "MB",
                           [run.peak_mb for run in runs], [f.peak_mb for f in floors], note)
                )  # fmt: skip
        finally:
            stop_all()
    return result


if __name__ == "__main__":
    print_table(figures(quick="--quick" in sys.argv))
