"""`modelci deploy-online`: write the Helm values of `charts/kserve-model` and the Argo CD
generator file for each online model into the environment's directory of the GitOps repo, in
one commit. Values are checked against the chart's schema before anything is written."""

from __future__ import annotations

import argparse

from ..workspace import (
    Job,
    add_config_arguments,
    commit_message,
    load_job,
    read_resolved_state,
    shared_repo,
)

TOKEN_VARIABLE = "MODELCI_GITOPS_REPO_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    job = load_job(args)
    models = job.models(args.model)
    online = {
        m.name: checked_values(job, m, read_resolved_state(m.name))
        for m in models
        if m.online.enabled
    }
    environment = job.names(models[0]).environment
    repo = shared_repo(
        job.settings.gitops_repo_url,
        job.settings.gitops_repo_branch,
        what="GitOps",
        token_variable=TOKEN_VARIABLE,
    )
    scope = [job.names(m).gitops_dir for m in models]
    result = repo.apply(
        scope,
        lambda read: _changes(job, models, online, read),
        commit_message(
            f"modelci: deploy online models of {environment}", job.pipeline, environment
        ),
    )
    verb = f"committed {result.sha[:12]}" if result.sha else "already up to date, no commit"
    print(f"{repo.display_url}: {verb}")
    for model in models:
        state = "online" if model.name in online else "not online (directory removed)"
        print(f"  {job.names(model).gitops_dir}: {state}")
    return 0


def checked_values(job: Job, model, state: dict) -> dict:
    from ..values import build_values, validate_values

    names = job.names(model)
    values = build_values(
        model,
        names,
        job.settings,
        storage_uri=state["storage_uri"],
        run_id=state["run_id"],
        model_version=state.get("model_version"),
        pipeline=job.pipeline,
    )
    validate_values(values, source=f"values for {model.name} in {names.values_path}")
    return values


def _changes(job: Job, models, online: dict[str, dict], read):
    from ..gitrepo import Changes
    from ..values import app_config_text, update_values_text, values_header

    writes, removes = {}, []
    for model in models:
        names = job.names(model)
        if model.name not in online:
            removes.append(names.gitops_dir)
            continue
        existing = read(names.values_path)
        text = update_values_text(
            existing.decode("utf-8") if existing is not None else None,
            online[model.name],
            values_header(job.pipeline, names),
        )
        writes[names.values_path] = text.encode("utf-8")
        writes[names.app_config_path] = app_config_text(names).encode("utf-8")
    return Changes(writes=writes, removes=removes)
