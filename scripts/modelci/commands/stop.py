"""`modelci stop`: tear down a branch environment. Runs with no checkout (the branch may be
gone), so it needs no config: everything of the environment lives under directories derived
from the project and branch alone. Idempotent: a second stop finds nothing and commits nothing.

`--stand` tears down a stand instead: a stand command like promote, it switches to the stand
credentials first and refuses, before touching anything, in a job that has none of them (a
feature branch's job)."""

from __future__ import annotations

import argparse
import os

from ..config.naming import environment_dirs
from ..config.settings import Pipeline, Settings, require_stand_credentials
from ..lifecycle.workspace import commit_message, dag_repo, gitops_repo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stand", help="tear down this stand instead of the branch's feature environment"
    )


def run(args: argparse.Namespace) -> int:
    if args.stand:
        require_stand_credentials(os.environ, f"stop --stand {args.stand}")
    env = dict(os.environ)
    pipeline, settings = Pipeline.from_env(env), Settings.from_env(env)
    stop_environment(pipeline, settings, pipeline.branch, stand=args.stand)
    return 0


def stop_environment(
    pipeline: Pipeline, settings: Settings, branch: str, *, stand: str | None = None
) -> None:
    """Remove `branch`'s environment (or `stand`) of the pipeline's project: DAG directory,
    GitOps directory (one commit per repo) and scratch objects."""
    from ..lifecycle.deploy import tell_argocd
    from ..systems.gitrepo import Changes

    dirs = environment_dirs(pipeline.project, branch, stand=stand)
    message = commit_message(f"modelci: stop {dirs.environment}", pipeline, dirs.environment)
    stands = stand is not None  # a stand lives on the protected stands branch of both repos
    targets = [
        (dag_repo(settings, stands=stands), dirs.dag_dir),
        (gitops_repo(settings, stands=stands), dirs.gitops_dir),
    ]
    for repo, path in targets:
        result = repo.apply([path], lambda _read, path=path: Changes(removes=[path]), message)
        verb = f"removed in {result.sha[:12]}" if result.sha else "already absent"
        print(f"{repo.display_url}: {path} {verb}")
        if path == dirs.gitops_dir:
            tell_argocd(settings, repo.branch, result, [path], f"stop {dirs.environment}")
    _remove_scratch(settings, dirs.s3_prefix)


def _remove_scratch(settings: Settings, prefix: str) -> None:
    if not settings.scratch_uri:
        print("MODELCI_SCRATCH_URI not set: no scratch objects to remove")
        return
    from ..systems.s3 import S3Store

    uri = f"{settings.scratch_uri.rstrip('/')}/{prefix}"
    removed = S3Store(settings.s3_endpoint, settings.s3_region).delete_prefix(uri)
    print(f"{uri}: {removed} scratch object(s) removed")
