"""The two writes of a deployment, for a feature environment or a stand alike: the batch DAGs
into the DAG bundle repo and the online models' values into the GitOps repo, one commit per
repo. Used by `deploy-batch`, `deploy-online` and every move of a stand's alias."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .config import Model
from .errors import ModelciError
from .gitrepo import Changes, CommitResult
from .plan import checked_values, dag_files, gitops_files, owned_dag_paths
from .settings import Settings
from .workspace import Job, ResolvedModel, commit_message, dag_repo, gitops_repo


def put_code_archive(job: Job, store, uri: str, commit: str) -> bool:
    """The model repository's files at `commit` (from this job's checkout) as tar.gz at
    `uri`, unless the object is there already (content-addressed: written once). True when
    it was written now."""
    from .gitrepo import archive_commit

    if store.exists(uri):
        return False
    store.put_bytes(uri, archive_commit(Path(job.config.path).resolve().parent, commit))
    return True


def write_dags(
    job: Job,
    models: Sequence[Model],
    resolved: Mapping[str, ResolvedModel],
    code: Mapping[str, str],
) -> CommitResult:
    """Commit the batch DAGs of `models`; a DAG dropped from the config is removed. The code
    archives in `code` (and a Spark model's main file beside its archive) are in S3 already."""
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
    _report(repo.display_url, result, sorted(files))
    return result


def put_spark_main_files(store, models: Sequence[Model], code: Mapping[str, str]) -> None:
    """A Spark training DAG's main file: the entrypoint, taken out of the code archive in
    `code` and put beside it (the SparkApplication names it as `mainApplicationFile`)."""
    from .spark import main_file_uri

    for model in models:
        training = any(dag.kind == "training" for dag in model.batch.dags)
        if model.train.engine != "spark" or not training:
            continue
        target = main_file_uri(code[model.name], model.train.entrypoint)
        if store.exists(target):
            continue
        archive = store.get_bytes(code[model.name])
        store.put_bytes(target, file_in_archive(archive, model.train.entrypoint, code[model.name]))
        print(f"Spark main file of {model.name}: {target}", flush=True)


def file_in_archive(archive: bytes, path: str, uri: str) -> bytes:
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        member = tar.extractfile(path) if path in tar.getnames() else None
        if member is None:
            raise ModelciError(f"the code archive {uri} has no file {path}")
        return member.read()


def write_online(
    job: Job, models: Sequence[Model], resolved: Mapping[str, ResolvedModel]
) -> CommitResult:
    """Commit the values of the online models among `models`; the others' directories go.
    Values are checked against the chart's schema before anything is written."""
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
    tell_argocd(job.settings, repo.branch, result, model_dirs, f"deploy {environment}")
    shown = [
        f"{directory}: " + ("online" if m.name in online else "not online (directory removed)")
        for m, directory in zip(models, model_dirs, strict=True)
    ]
    _report(repo.display_url, result, shown)
    return result


def tell_argocd(
    settings: Settings, branch: str, result: CommitResult, paths: Sequence[str], what: str
) -> None:
    """Send Argo CD's webhooks the GitOps commit of `result` (when there is one), so that it
    syncs now rather than at its next poll; a webhook that fails is a warning."""
    if not result.sha or not settings.argocd_webhook_urls:
        return
    from .argocd_webhook import notify, push_event

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


def _report(where: str, result: CommitResult, lines: list[str]) -> None:
    if result.sha:
        retries = f" after {result.attempts} attempts" if result.attempts > 1 else ""
        verb = f"committed {result.sha[:12]}{retries}"
    else:
        verb = "already up to date, no commit"
    print(f"{where}: {verb}")
    for line in lines:
        print(f"  {line}")
