"""Bare git repositories standing in for the DAG bundle repo and the GitOps repo."""

import tempfile
from dataclasses import dataclass
from pathlib import Path

import git

AUTHOR = git.Actor("modelci tests", "tests@modelci.invalid")
DEFAULT_FILES = {"README.md": "# test remote\n"}


@dataclass(frozen=True)
class GitRemotes:
    dags: Path
    gitops: Path


def make_bare_repo(path: Path, files: dict[str, str] | None = None, branch: str = "main") -> Path:
    """Create a bare repo at ``path`` whose ``branch`` (also its HEAD) has one commit of ``files``.

    ``files`` maps repo-relative paths (subdirectories allowed) to text; a README by default.
    """
    bare = git.Repo.init(path, bare=True, initial_branch=branch)
    with tempfile.TemporaryDirectory(prefix="seed-") as seed_dir:
        seed = git.Repo.init(seed_dir, initial_branch=branch)
        for name, text in (files if files is not None else DEFAULT_FILES).items():
            target = Path(seed_dir, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            seed.index.add([name])
        seed.index.commit("Initial commit", author=AUTHOR, committer=AUTHOR)
        seed.git.push(str(path), f"{branch}:refs/heads/{branch}")
        seed.close()
    bare.close()
    return path
