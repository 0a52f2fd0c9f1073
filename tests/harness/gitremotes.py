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


def add_branch(bare_path: Path, branch: str, files: dict[str, str]) -> str:
    """Add `branch` to the bare repo with one parentless commit of `files`; its sha."""
    with tempfile.TemporaryDirectory(prefix="seed-") as seed_dir:
        seed = git.Repo.init(seed_dir, initial_branch=branch)
        for name, text in files.items():
            target = Path(seed_dir, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            seed.index.add([name])
        sha = seed.index.commit(f"{branch}", author=AUTHOR, committer=AUTHOR).hexsha
        seed.git.push(str(bare_path), f"{branch}:refs/heads/{branch}")
        seed.close()
    return sha


STANDS_BRANCH = "stands"  # MODELCI_STANDS_BRANCH's default: where stand jobs write


def files_on(bare: Path, branch: str = "main") -> set[str]:
    """Paths of the files at the tip of `branch` of the bare repo; empty if there is none."""
    repo = git.Repo(bare)
    try:
        if not repo.git.rev_parse("--verify", "--quiet", f"refs/heads/{branch}"):
            return set()
        return set(repo.git.ls_tree("-r", "--name-only", branch).splitlines())
    except git.GitCommandError:
        return set()
    finally:
        repo.close()
