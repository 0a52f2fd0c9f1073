"""`bash scripts/demo.sh`, the README's first command, run as a user runs it: end to end,
through bootstrap (demo mode), the push pipeline and the stop job."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from modelci.config.naming import names_for
from tests.harness.lifecycle import PUSH_JOBS
from tests.harness.tools import ROOT

DEMO = ROOT / "scripts" / "demo.sh"
PROJECT = "ml/churn"
BRANCH = "feature/better-churn"
STANDS = ("staging", "production")
TIMEOUT_SECONDS = 1800  # the first run installs the demo's environments


def test_demo_runs_a_branch_lifecycle_and_tears_it_down() -> None:
    # A user's shell, not a CI job's: none of GitLab's or the platform's variables.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CI", "MLFLOW_", "AWS_"))}
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(DEMO)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    print(f"demo took {seconds:.0f} s")  # shown with -s or -rP

    assert output.startswith("[demo] The first run installs about"), output[:500]
    push, _, rest = output.partition("=== Merge request !1")
    review, _, rest = rest.partition("=== Merge !1")
    merge, _, rest = rest.partition("=== Manual job: promote to production")
    production, _, stop = rest.partition(f"=== Branch {BRANCH} deleted")
    assert stop, output[-8000:]
    for job in PUSH_JOBS:
        assert f"PASS  {job}" in push, push[-8000:]
    assert "PASS  modelci-compare" in review and "<!-- modelci:compare -->" in review
    assert "PASS  modelci-promote-staging" in merge, merge[-8000:]
    assert "staging now serves version 1" in merge
    assert "production now serves version 1" in production, production[-8000:]
    assert "PASS  modelci-stop" in stop, stop[-8000:]
    stands = [names_for(PROJECT, "main", "churn", stand=s).values_path for s in STANDS]

    names = names_for(PROJECT, BRANCH, "churn")
    deployed = [names.dag_path("inference"), names.dag_path("monitoring"), names.values_path]
    after_push = push.rpartition("DAG bundle repo, branch main")[2]
    after_stop = stop.rpartition("DAG bundle repo, branch main")[2]
    for path in deployed:
        assert f"\n  {path}\n" in after_push, after_push
        assert path not in after_stop, after_stop
    assert f"/{names.environment}/" not in after_stop
    stands_at_end = stop.rpartition("GitOps repo, branch stands (stands):")[2]
    assert all(f"\n  {path}" in stands_at_end for path in stands), stands_at_end  # stands stay
    assert "Done in" in stop and "promoted to staging and production, and torn down" in stop
    assert "The local platform stays up" not in output  # only with --keep


def _demo_py(*args: str) -> subprocess.CompletedProcess[str]:
    python = ROOT / ".venv" / "bin" / "python"
    command = [str(python), str(ROOT / "scripts" / "demo.py"), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_demo_of_an_unusable_repository_says_why_and_starts_nothing(tmp_path: Path) -> None:
    workdir = ROOT / ".demo"
    before = sorted(p.name for p in workdir.iterdir()) if workdir.is_dir() else None

    missing = _demo_py("--repo", str(tmp_path / "nowhere"))
    assert missing.returncode != 0
    assert f"--repo {tmp_path / 'nowhere'}: no such folder" in missing.stderr

    repo = tmp_path / "my-model"
    repo.mkdir()
    (repo / "mlops.yaml").write_text("version: 1\nmodels: []\n", encoding="utf-8")
    no_include = _demo_py("--repo", str(repo))
    assert no_include.returncode != 0
    assert f"{repo / '.gitlab-ci.yml'}: no `include: - project: ...`" in no_include.stderr
    assert "docs/data-scientists/getting-started.md" in no_include.stderr

    shutil.copy(ROOT / "examples" / "churn" / ".gitlab-ci.yml", repo / ".gitlab-ci.yml")
    invalid = _demo_py("--repo", str(repo))
    assert invalid.returncode != 0
    assert "does not validate" in invalid.stderr and f"{repo / 'mlops.yaml'}:" in invalid.stderr
    assert "Starting the embedded platform" not in invalid.stdout
    after = sorted(p.name for p in workdir.iterdir()) if workdir.is_dir() else None
    assert after == before  # a refused repository leaves an earlier demo's folder alone


def test_demo_takes_a_checkouts_committed_files_only(tmp_path: Path) -> None:
    import git

    from scripts.demo import committed_copy

    source = tmp_path / "repo"
    shutil.copytree(ROOT / "examples" / "churn", source)
    repo = git.Repo.init(source)
    repo.git.add(A=True)
    repo.index.commit("model")
    (source / "scratch.ipynb").write_text("{}", encoding="utf-8")  # not committed

    copy = committed_copy(source, tmp_path / "copy")
    assert (copy / "mlops.yaml").is_file() and not (copy / "scratch.ipynb").exists()
    plain = tmp_path / "plain"
    plain.mkdir()
    assert committed_copy(plain, tmp_path / "copy2") == plain  # not a checkout: as it is
