"""`modelci cleanup`: the scheduled clean-up of what stop jobs missed. Lists the project's
branches through the GitLab API and removes every feature environment of the project whose
branch is gone: DAG files and GitOps directories (one commit per repo) and S3 scratch objects.
Never a stand, never another project. Then removes the model environment archives that no
deployed environment (of any project) refers to and that are older than
MODELCI_ENV_RETENTION_DAYS. `--dry-run` prints the plan and writes nothing. Needs no checkout
(like `stop`)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, replace
from typing import Any

from ..config.settings import Pipeline, Settings
from ..errors import ModelciError

DRY_RUN_VARIABLE = "MODELCI_CLEANUP_DRY_RUN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=os.environ.get(DRY_RUN_VARIABLE, "").lower() in ("1", "true", "yes"),
        help=f"print what would be removed, remove nothing (default: ${DRY_RUN_VARIABLE})",
    )


def run(args: argparse.Namespace) -> int:
    from ..config.naming import project_slug_of
    from ..lifecycle.cleanup import plan_cleanup
    from ..systems.gitlab_api import TOKEN_VARIABLE, ServerAccess, project_branches

    env = dict(os.environ)
    pipeline, settings = Pipeline.from_env(env), Settings.from_env(env)
    access = ServerAccess.from_env(env)
    if access.missing:
        raise ModelciError(
            f"{TOKEN_VARIABLE} or CI_SERVER_URL is not set: the clean-up lists the project's "
            "branches through the GitLab API (read_api scope); nothing was removed"
        )
    slug = project_slug_of(pipeline.project)
    scratch = _Scratch.of(settings, slug)
    found = _found_environments(settings, slug, scratch)
    try:
        branches = project_branches(access.url, access.token, pipeline.project)
    except ModelciError as error:
        raise ModelciError(f"{error}. Nothing was removed") from None
    present = set().union(*found.values())
    plan = plan_cleanup(sorted(present), branches, pipeline.default_branch, pipeline.project)
    if scratch is not None:
        found[SCRATCH] = scratch.holding_objects(found[SCRATCH], plan.stale)
        present = set().union(*found.values())
        plan = replace(plan, stale=tuple(name for name in plan.stale if name in present))
    print(
        f"{pipeline.project}: {len(branches)} branches, "
        f"{len(present)} environment(s) found, {len(plan.stale)} stale"
    )
    for environment in plan.stale:
        where = ", ".join(place for place, names in found.items() if environment in names)
        verb = "would remove" if args.dry_run else "removing"
        print(f"  {verb} {environment} ({where})")
    if not args.dry_run and plan.stale:
        _remove(pipeline, settings, slug, plan.stale, found)
        if scratch is not None:
            scratch.remove([name for name in plan.stale if name in found[SCRATCH]])
    if scratch is not None:
        gone = [f"{scratch.base}/{name}/" for name in plan.stale]
        _clean_archives(scratch.store, settings, slug, gone, dry_run=args.dry_run)
    return 0


def _clean_archives(
    store, settings: Settings, slug: str, gone: list[str], *, dry_run: bool
) -> None:
    """The project's environment archives no deployed environment refers to (each environment
    records its archives beside its code; the records under `gone` are being removed) and older
    than the retention. A stand runs a copy under its own prefix, so its archive is never one
    of them."""
    from datetime import UTC, datetime, timedelta

    from ..config.naming import BRANCHES_SCRATCH
    from ..lifecycle.cleanup import stale_archives
    from ..lifecycle.modelenv import Archives, archive_key, is_archives_record

    cache = Archives.of_project(store, settings.scratch_uri, slug)
    base = f"{cache.base}/"
    scratch = settings.scratch_uri.rstrip("/")
    objects = {
        **store.list_objects(cache.base),
        **store.list_objects(f"{scratch}/{BRANCHES_SCRATCH}/{slug}"),
    }
    archives = {
        key: at
        for uri, at in objects.items()
        if uri.startswith(base) and (key := archive_key(uri)) is not None
    }
    records = [
        uri for uri in objects if is_archives_record(uri) and not uri.startswith(tuple(gone))
    ]
    referenced = {
        key
        for record in records
        for line in store.get_bytes(record).decode().split()
        if line.startswith(base) and (key := archive_key(line)) is not None
    }
    days = settings.env_retention_days
    stale = stale_archives(archives, referenced, datetime.now(UTC), timedelta(days=days))
    in_use = len(referenced & archives.keys())
    print(
        f"environment archives: {len(archives)} found, {in_use} in use by deployed "
        f"environments, {len(stale)} unused and older than {days:g} days"
    )
    for key in stale:
        print(f"  {'would remove' if dry_run else 'removing'} archive {key}")
        if not dry_run:
            store.delete_prefix(f"{base}{key}/")


SCRATCH = "S3 scratch"


@dataclass(frozen=True)
class _Scratch:
    """The project's directory of S3 scratch objects, one directory per environment."""

    store: Any  # S3Store
    base: str  # s3://bucket/prefix/branches/<project slug>

    @classmethod
    def of(cls, settings: Settings, slug: str) -> _Scratch | None:
        if not settings.scratch_uri:
            return None
        from ..config.naming import BRANCHES_SCRATCH
        from ..systems.s3 import S3Store

        store = S3Store(settings.s3_endpoint, settings.s3_region)
        return cls(store, f"{settings.scratch_uri.rstrip('/')}/{BRANCHES_SCRATCH}/{slug}")

    def environments(self) -> set[str]:
        return set(self.store.list_prefixes(self.base))

    def holding_objects(self, names: set[str], stale: tuple[str, ...]) -> set[str]:
        """Some stores list a prefix whose objects were all deleted: only the stale names
        that still hold objects count."""
        checked = {n for n in names & set(stale) if self.store.exists(f"{self.base}/{n}/")}
        return (names - set(stale)) | checked

    def remove(self, names: list[str]) -> None:
        removed = sum(self.store.delete_prefix(f"{self.base}/{name}/") for name in names)
        print(f"{self.base}/: {removed} scratch object(s) removed")


def _found_environments(
    settings: Settings, slug: str, scratch: _Scratch | None
) -> dict[str, set[str]]:
    from ..lifecycle.workspace import dag_repo, gitops_repo

    found = {
        "DAG bundle repo": set(dag_repo(settings).list_dir(f"dags/{slug}")),
        "GitOps repo": set(gitops_repo(settings).list_dir(f"environments/{slug}")),
    }
    if scratch is not None:
        found[SCRATCH] = scratch.environments()
    return found


def _remove(
    pipeline: Pipeline,
    settings: Settings,
    slug: str,
    stale: tuple[str, ...],
    found: dict[str, set[str]],
) -> None:
    """The stale environments' directories, in one commit per repo."""
    from ..lifecycle.workspace import commit_message, dag_repo, gitops_repo
    from ..systems.gitrepo import Changes

    message = commit_message(
        f"modelci: clean up {len(stale)} environment(s) whose branch is gone",
        pipeline,
        ", ".join(stale),
    )
    for place, repo, top in (
        ("DAG bundle repo", dag_repo(settings), f"dags/{slug}"),
        ("GitOps repo", gitops_repo(settings), f"environments/{slug}"),
    ):
        removes = [f"{top}/{name}" for name in stale if name in found[place]]
        if not removes:
            continue
        result = repo.apply([top], lambda _read, r=removes: Changes(removes=r), message)
        verb = f"removed in {result.sha[:12]}" if result.sha else "already absent"
        print(f"{repo.display_url}: {len(removes)} environment(s) {verb}")
