"""The two writes of a deployment, for a feature environment or a stand alike: the batch DAGs
into the DAG bundle repo and the online models' values into the GitOps repo, one commit per
repo. Used by `deploy-batch`, `deploy-online` and every move of a stand's alias."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config.settings import Settings
from ..config.types import Model
from ..errors import ModelciError
from ..render.plan import checked_values, dag_files, gitops_files, owned_dag_paths
from ..systems.gitrepo import Changes, CommitResult
from .workspace import Job, ResolvedModel, commit_message, dag_repo, gitops_repo


def put_code_archive(job: Job, store, uri: str, commit: str) -> str | None:
    """The model repository's files at `commit` (from this job's checkout) but those that
    mlops.yaml's `code.exclude` leaves out, as tar.gz at `uri`, unless the object is there
    already (content-addressed: written once). The sha256 of the archive when it was written
    now, None when it was there."""
    if store.exists(uri):
        return None
    config = job.config
    return upload_code_archive(
        store,
        uri,
        Path(config.path).resolve().parent,
        commit,
        exclude=config.code.exclude,
        needed=[
            d.entrypoint
            for m in config.models
            for d in m.batch.dags
            if not d.builtin and d.spark is None  # modelci's own program, not the repo's
        ],
    )


def upload_code_archive(
    store,
    uri: str,
    repo_dir: Path,
    commit: str,
    *,
    exclude: Sequence[str] = (),
    needed: Sequence[str] = (),
) -> str:
    """Archive `commit` of the clone at `repo_dir` (without `exclude`) to `uri`; its sha256.
    Streamed: `git archive` into a temporary file, hashed on the way, then uploaded from it
    in parts. Memory stays flat from an empty repository to gigabytes (benchmarks/README.md,
    `code-archive`); the disk holds the archive for the time of the upload. Each of the files
    `needed` (what the batch DAGs run) must be in it."""
    import tempfile

    from ..systems.gitarchive import archive_commit

    _require_kept(repo_dir, commit, needed, exclude)
    with tempfile.TemporaryDirectory(prefix="modelci-code-") as scratch:
        path = Path(scratch) / "code.tar.gz"
        with path.open("wb") as out:
            archived = archive_commit(repo_dir, commit, out, exclude=exclude)
        store.upload_file(uri, path)
    return archived.sha256


def _require_kept(
    repo_dir: Path, commit: str, needed: Sequence[str], exclude: Sequence[str]
) -> None:
    """A ModelciError when `exclude` would leave a file of `needed` out of the archive."""
    from ..systems.gitarchive import kept_paths

    if not exclude or not needed:
        return
    missing = sorted(set(needed) - kept_paths(repo_dir, commit, needed, exclude=exclude))
    if missing:
        raise ModelciError(
            f"code.exclude in mlops.yaml leaves {', '.join(missing)} out of the code archive of "
            f"commit {commit[:12]}, but a batch DAG runs it; nothing was uploaded. Narrow or "
            f"remove the pattern that matches it (exclude: {list(exclude)})"
        )


def write_dags(
    job: Job,
    models: Sequence[Model],
    resolved: Mapping[str, ResolvedModel],
    code: Mapping[str, str],
    *,
    recheck: bool = False,
) -> CommitResult:
    """Commit the batch DAGs of `models`; a DAG dropped from the config is removed. The code
    archives in `code` (and a Spark model's main file beside its archive) are in S3 already.
    A `recheck` (a write repeated to catch what moved meanwhile) says nothing when it finds
    the files as they should be: the write before it said what happened."""
    files = dag_files(job, models, code=code, resolved=resolved)
    owned = owned_dag_paths(job, models)
    changes = Changes(writes=files, removes=[path for path in owned if path not in files])
    environment = job.dirs.environment
    repo = dag_repo(job.settings, stands=job.stand is not None)
    result = repo.apply(
        [job.dirs.dag_dir],
        lambda _read: changes,
        commit_message(f"modelci: deploy DAGs of {environment}", job.pipeline, environment),
    )
    _report(repo.display_url, result, sorted(files), recheck=recheck)
    return result


def put_spark_main_files(store, models: Sequence[Model], code: Mapping[str, str]) -> None:
    """A Spark training DAG's main file: the DAG's entrypoint, taken out of the code archive in
    `code` and put beside it (the SparkApplication names it as `mainApplicationFile`); a Spark
    inference DAG's: modelci's scoring program, put beside it too."""
    from ..render.spark import (
        SCORING_PROGRAM,
        main_file_uri,
        scoring_main_file_uri,
        spark_scoring_dag,
        spark_training_dag,
    )

    for model in models:
        if spark_scoring_dag(model) is not None:
            target = scoring_main_file_uri(code[model.name])
            if not store.exists(target):
                store.put_bytes(target, SCORING_PROGRAM.read_bytes())
                print(f"Spark scoring program of {model.name}: {target}", flush=True)
        dag = spark_training_dag(model)
        if dag is None:
            continue
        target = main_file_uri(code[model.name], dag.entrypoint)
        if store.exists(target):
            continue
        main_file = file_in_archive(store, code[model.name], dag.entrypoint)
        store.put_bytes(target, main_file)
        print(f"Spark main file of {model.name}: {target}", flush=True)


def file_in_archive(store, uri: str, path: str) -> bytes:
    """The file `path` of the tar.gz at `uri`, read as the archive streams by: the rest of
    the archive is never held in memory."""
    import tarfile

    with store.open_object(uri) as stream, tarfile.open(fileobj=stream, mode="r|gz") as tar:
        for member in tar:
            extracted = tar.extractfile(member) if member.name == path and member.isfile() else None
            if extracted is not None:
                return extracted.read()
    raise ModelciError(f"the code archive {uri} has no file {path}")


def write_online(
    job: Job,
    models: Sequence[Model],
    resolved: Mapping[str, ResolvedModel],
    *,
    recheck: bool = False,
) -> CommitResult:
    """Commit the values of the online models among `models`; the others' directories go.
    Values are checked against the chart's schema before anything is written. A `recheck`
    says nothing when it finds the files as they should be (`write_dags`)."""
    online = {m.name: checked_values(job, m, resolved[m.name]) for m in models if m.online.enabled}
    environment = job.dirs.environment
    repo = gitops_repo(job.settings, stands=job.stand is not None)
    model_dirs = [job.names(m).gitops_dir for m in models]
    result = repo.apply(
        model_dirs,
        lambda read: _online_changes(job, models, online, read),
        commit_message(
            f"modelci: deploy online models of {environment}", job.pipeline, environment
        ),
    )
    shown = [
        f"{directory}: " + ("online" if m.name in online else "not online (directory removed)")
        for m, directory in zip(models, model_dirs, strict=True)
    ]
    _report(repo.display_url, result, shown, recheck=recheck)
    tell_argocd(job.settings, repo.branch, result, model_dirs, f"deploy {environment}")
    return result


def tell_argocd(
    settings: Settings, branch: str, result: CommitResult, paths: Sequence[str], what: str
) -> None:
    """Send Argo CD's webhooks the GitOps commit of `result` (when there is one), so that it
    syncs now rather than at its next poll; a webhook that fails is a warning."""
    if not result.sha or not settings.argocd_webhook_urls:
        return
    from ..systems.argocd_webhook import notify, push_event

    event = push_event(settings.gitops_repo_url, branch, result.sha, paths, f"modelci: {what}")
    warnings = notify(settings.argocd_webhook_urls, event)
    for warning in warnings:
        print(
            f"warning: Argo CD webhook {warning}; Argo CD picks the commit up at its next poll "
            "(3 minutes by default)"
        )
    told = len(settings.argocd_webhook_urls) - len(warnings)
    if told:
        print(f"Argo CD told of {result.sha[:12]} ({told} webhook(s))")


def _online_changes(
    job: Job, models: Sequence[Model], online: Mapping[str, dict[str, Any]], read
) -> Changes:
    writes, removes = {}, []
    for model in models:
        names = job.names(model)
        if model.name in online:
            writes |= gitops_files(job, model, online[model.name], read(names.values_path))
        else:
            removes.append(names.gitops_dir)
    return Changes(writes=writes, removes=removes)


def _report(where: str, result: CommitResult, lines: list[str], *, recheck: bool) -> None:
    """One line for one write, saying what happened, and the paths it concerned beneath it;
    nothing for a `recheck` that changed nothing."""
    if recheck and not result.sha:
        return
    if result.sha:
        retries = f" after {result.attempts} attempts" if result.attempts > 1 else ""
        verb = f"committed {result.sha[:12]}{retries}"
    else:
        verb = "already up to date, no commit"
    print(f"{where}: {verb}")
    for line in lines:
        print(f"  {line}")
