"""Archiving one commit of the model repository the job runs in, as the tar.gz batch pods unpack.

This works on the job's own checkout, with one plain local `git archive` (or `cat-file`)
process each: no remote, no credentials, no GitPython, and a memory use that stays flat
whatever the size of the repository. That is why it is apart from gitrepo, which writes to
the shared remote repos; the code-archive upload of `lifecycle/deploy.py` and the stands'
check for a commit of this checkout use it.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from modelci.errors import ModelciError

ARCHIVE_CHUNK_BYTES = 1 << 20
# git reads a blob larger than core.bigFileThreshold as a stream rather than whole, and maps
# at most core.packedGitLimit of pack files at a time (by default windows of 1 GiB, up to
# 8 GiB): so a repository's largest file costs git no more memory than these few megabytes
# (about 20 MB in all, against 70 MB with windows of 8 MB, for no time measured either way).
# A loose object (a fetch of fewer than 100 objects leaves them loose) is mapped whole: clean
# file pages the kernel takes back under pressure, though counted as resident.
_ARCHIVE_SETTINGS = (
    ("core.bigFileThreshold", "8m"),
    ("core.packedGitWindowSize", "1m"),
    ("core.packedGitLimit", "16m"),
)
# Each of these would change what the exclusions' pathspec magic means, or turn it off.
_PATHSPEC_VARIABLES = (
    "GIT_LITERAL_PATHSPECS",
    "GIT_GLOB_PATHSPECS",
    "GIT_NOGLOB_PATHSPECS",
    "GIT_ICASE_PATHSPECS",
)
_COMMIT_ID = re.compile(r"[0-9a-f]{7,64}")


@dataclass(frozen=True)
class Archived:
    """What `archive_commit` wrote: the tar.gz's sha256 and size, taken as it streamed by."""

    sha256: str
    size: int


def archive_commit(
    repo_dir: Path, commit: str, out: BinaryIO, *, exclude: Sequence[str] = ()
) -> Archived:
    """Write the files of `commit` in a local clone to `out` as the tar.gz that batch pods
    unpack, without the paths `exclude` matches (globs relative to `repo_dir`, as git's
    `:(exclude,glob)` pathspecs read them: `data`, `data/**`, `**/*.parquet`). The archive
    streams through in pieces of ARCHIVE_CHUNK_BYTES, hashed on the way: memory stays flat
    whatever the size of the repository.

    One local command, run without GitPython: resolve, which stages the code, would import it
    (a twentieth of a second) for this alone."""
    _check_commit_id(repo_dir, commit)
    argv = ["git", "archive", "--format=tar.gz", commit, *exclusion_pathspecs(exclude)]
    with _git_output(repo_dir, commit, argv) as stream:
        return _copy_hashing(stream, out)


def kept_paths(
    repo_dir: Path, commit: str, paths: Iterable[str], *, exclude: Sequence[str] = ()
) -> set[str]:
    """Which of the files `paths` (relative to `repo_dir`) the archive of `commit` that
    `archive_commit` writes with `exclude` holds; each must be a file of `commit`. One git
    process, whose archive holds these files only."""
    import tarfile

    _check_commit_id(repo_dir, commit)
    wanted = [f":(literal){path}" for path in dict.fromkeys(paths)]
    if not wanted:
        return set()
    argv = ["git", "archive", "--format=tar", commit, "--", *wanted, *_excluded(exclude)]
    with (
        _git_output(repo_dir, commit, argv) as stream,
        tarfile.open(fileobj=stream, mode="r|") as tar,
    ):
        return {member.name for member in tar if member.isfile()}


def exclusion_pathspecs(exclude: Sequence[str]) -> list[str]:
    """The pathspecs of `git archive` for everything but `exclude`; none without exclusions."""
    return ["--", ".", *_excluded(exclude)] if exclude else []


def _excluded(exclude: Sequence[str]) -> list[str]:
    return [f":(exclude,glob){pattern}" for pattern in exclude]


@contextmanager
def _git_output(repo_dir: Path, commit: str, argv: list[str]) -> Iterator[BinaryIO]:
    """The stdout of a local git command, read as it comes; an archive error when it fails.
    Its stderr goes to a file, so that neither pipe can fill up and stall git."""
    settings = [arg for key, value in _ARCHIVE_SETTINGS for arg in ("-c", f"{key}={value}")]
    env = {k: v for k, v in os.environ.items() if k not in _PATHSPEC_VARIABLES}
    with tempfile.TemporaryFile() as stderr:
        try:
            process = subprocess.Popen(
                [argv[0], *settings, *argv[1:]],
                cwd=repo_dir, env=env, stdout=subprocess.PIPE, stderr=stderr,
            )  # fmt: skip
        except OSError as error:  # no such directory
            raise _archive_error(repo_dir, commit, str(error)) from None
        with process:
            stdout = cast(BinaryIO, process.stdout)  # stdout=PIPE
            yield stdout
            for _ in iter(lambda: stdout.read(ARCHIVE_CHUNK_BYTES), b""):
                pass  # what the reader left (a tar's end padding): git ends once it is read
            status = process.wait()
        if status != 0:
            stderr.seek(0)
            detail = stderr.read(8192).decode("utf-8", "replace").strip()
            raise _archive_error(repo_dir, commit, detail or f"exit status {status}")


def _copy_hashing(stream: BinaryIO, out: BinaryIO) -> Archived:
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: stream.read(ARCHIVE_CHUNK_BYTES), b""):
        digest.update(chunk)
        out.write(chunk)
        size += len(chunk)
    return Archived(digest.hexdigest(), size)


def _check_commit_id(repo_dir: Path, commit: str) -> None:
    if not _COMMIT_ID.fullmatch(commit):
        raise ModelciError(
            f"cannot archive commit {commit!r} of the repository at {repo_dir}: not a commit id "
            "(CI_COMMIT_SHA holds 40 hex digits in a GitLab job)"
        )


def has_commit(repo_dir: Path, commit: str) -> bool:
    """True when the local clone at `repo_dir` holds `commit` (a shallow or squashed history
    may not)."""
    if not _COMMIT_ID.fullmatch(commit):
        return False
    try:
        done = subprocess.run(
            ["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=repo_dir, capture_output=True
        )
    except OSError:
        return False
    return done.returncode == 0


def _archive_error(repo_dir: Path, commit: str, detail: str) -> ModelciError:
    return ModelciError(
        f"cannot archive commit {commit} of the repository at {repo_dir}: {detail}. "
        "The job needs a checkout of the model repository (GIT_STRATEGY fetch or clone)."
    )
