"""The code archive batch pods unpack, against real git and a real S3 (SeaweedFS): it streams
from `git archive` to a multipart upload in flat memory whatever the size of the repository,
its sha256 is taken on the way, `code.exclude` leaves data out of it, and a pod unpacks it as
it downloads."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest

from benchmarks.common import run_process
from modelci.errors import ModelciError
from modelci.lifecycle.deploy import file_in_archive, upload_code_archive
from modelci.systems.s3 import S3Store
from tests.harness.tools import VENV_BIN
from tests.integration.test_benchmarks import by_figure, suite

MB = 1 << 20
BIG_FILE_MB = 200
# The archive and upload of `resolve`, in a process of its own (its peak memory is measured).
UPLOAD = """
import sys
from pathlib import Path
from modelci.lifecycle.deploy import upload_code_archive
from modelci.systems.s3 import S3Store
endpoint, uri, repo, commit = sys.argv[1:5]
print(upload_code_archive(S3Store(endpoint, "us-east-1"), uri, Path(repo), commit))
"""
AUTHOR = ["-c", "user.name=tests", "-c", "user.email=tests@modelci.invalid"]


@pytest.fixture
def aws_env(s3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """A job's S3 variables, in this process and for the processes it starts."""
    variables = {
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return {**os.environ, **variables}


@pytest.fixture
def store(s3, aws_env: dict[str, str]) -> S3Store:
    return S3Store(s3.endpoint_url, s3.region)


def code_uri(s3) -> str:
    return f"s3://{s3.bucket}/tests/code/{uuid.uuid4().hex}.tar.gz"


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *AUTHOR, *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def checkout(tmp_path: Path, files: dict[str, bytes | int]) -> tuple[Path, str]:
    """A clone of a one-commit repository holding `files` (content, or a size in bytes of
    random data), as a CI job's checkout has it (objects packed); (path, commit)."""
    seed = tmp_path / "seed"
    for name, content in files.items():
        path = seed / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, int):
            write_random(path, content)
        else:
            path.write_bytes(content)
    git("init", "-q", "-b", "main", cwd=seed)
    git("add", "--all", cwd=seed)
    git("commit", "-q", "-m", "model", cwd=seed)
    clone = tmp_path / "checkout"
    git("clone", "-q", "--no-local", str(seed), str(clone), cwd=tmp_path)
    return clone, git("rev-parse", "HEAD", cwd=clone)


def write_random(path: Path, size: int) -> None:
    """Incompressible bytes: a tar.gz of them is as large as they are."""
    with path.open("wb") as out:
        for start in range(0, size, 16 * MB):
            out.write(os.urandom(min(16 * MB, size - start)))


def members(store: S3Store, uri: str) -> dict[str, int]:
    with store.open_object(uri) as stream, tarfile.open(fileobj=stream, mode="r|gz") as tar:
        return {member.name: member.size for member in tar if member.isfile()}


def test_a_repository_with_a_200_mb_file_goes_up_in_flat_memory(
    s3, store: S3Store, aws_env: dict[str, str], tmp_path: Path
) -> None:
    size = BIG_FILE_MB * MB
    repo, commit = checkout(tmp_path, {"train.py": b"print('trained')\n", "data/big.bin": size})
    uri = code_uri(s3)
    argv = [sys.executable, "-c", UPLOAD, s3.endpoint_url, uri, str(repo), commit]

    uploaded = run_process(argv, tmp_path, aws_env)

    digest = uploaded.output.strip()
    assert digest == store.sha256(uri)  # taken on the way up, equal to the object's
    assert members(store, uri) == {"train.py": 17, "data/big.bin": size}
    print(f"peak memory of archive+upload of {BIG_FILE_MB} MB: {uploaded.peak_mb:.1f} MB")
    assert uploaded.peak_mb < BIG_FILE_MB / 2, uploaded  # git's and Python's, together

    # A batch pod unpacks it as it downloads: its memory stays as flat.
    listing = [str(VENV_BIN / "modelci"), "pod-run", "--code", uri, "--", "ls", "-l", "data"]
    env = {**aws_env, "MLFLOW_S3_ENDPOINT_URL": s3.endpoint_url}
    unpacked = run_process(listing, tmp_path, env)
    assert f" {size} " in unpacked.output
    print(f"peak memory of pod-run unpacking it: {unpacked.peak_mb:.1f} MB")
    assert unpacked.peak_mb < BIG_FILE_MB / 2, unpacked


def test_code_exclude_leaves_the_matching_paths_out(s3, store: S3Store, tmp_path: Path) -> None:
    files: dict[str, bytes | int] = {
        "train.py": b"train\n",
        "score.py": b"score\n",
        "src/features.py": b"features\n",
        "data/train.csv": b"a,b\n",
        "data/raw/2026/day.csv": b"c,d\n",
        "models/cache.parquet": b"PAR1",
        "notebooks/explore.parquet": b"PAR1",
        "notes.parquet.md": b"kept\n",
    }
    repo, commit = checkout(tmp_path, files)
    uri = code_uri(s3)

    digest = upload_code_archive(
        store, uri, repo, commit, exclude=("data", "**/*.parquet"), needed=("score.py",)
    )

    assert set(members(store, uri)) == {
        "train.py",
        "score.py",
        "src/features.py",
        "notes.parquet.md",
    }
    assert digest == store.sha256(uri)
    assert file_in_archive(store, uri, "src/features.py") == b"features\n"
    with pytest.raises(ModelciError, match=r"has no file data/train\.csv"):
        file_in_archive(store, uri, "data/train.csv")


def test_an_exclusion_that_drops_what_a_dag_runs_is_refused_before_any_upload(
    s3, store: S3Store, tmp_path: Path
) -> None:
    repo, commit = checkout(tmp_path, {"train.py": b"t\n", "jobs/score.py": b"s\n"})
    uri = code_uri(s3)

    with pytest.raises(ModelciError) as error:
        upload_code_archive(
            store, uri, repo, commit, exclude=("jobs/**",), needed=("train.py", "jobs/score.py")
        )

    assert "code.exclude in mlops.yaml leaves jobs/score.py out of the code archive" in str(
        error.value
    )
    assert "train.py," not in str(error.value)
    assert not store.exists(uri)


def test_the_benchmark_measures_the_peak_memory_at_each_size() -> None:
    rows = by_figure(suite("code-archive"))

    assert set(rows) == {"peak memory, 0 MB of files", "peak memory, 16 MB of files"}
    assert all(float(row.floor) > 5 for row in rows.values())  # MB: at least a Python
