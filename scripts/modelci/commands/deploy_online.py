"""`modelci deploy-online`: write the Helm values of `charts/kserve-model` and the Argo CD
generator file for each online model into the environment's directory of the GitOps repo, in
one commit. Values are checked against the chart's schema before anything is written."""

from __future__ import annotations

import argparse

from ..workspace import (
    Job,
    add_config_arguments,
    commit_message,
    gitops_repo,
    load_job,
    read_resolved_state,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..plan import checked_values

    job = load_job(args)
    models = job.models(args.model)
    online = {
        m.name: checked_values(job, m, read_resolved_state(m.name))
        for m in models
        if m.online.enabled
    }
    environment = job.dirs.environment
    repo = gitops_repo(job.settings)
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


def _changes(job: Job, models, online: dict[str, dict], read):
    from ..gitrepo import Changes
    from ..plan import gitops_files

    writes, removes = {}, []
    for model in models:
        names = job.names(model)
        if model.name in online:
            writes |= gitops_files(job, model, online[model.name], read(names.values_path))
        else:
            removes.append(names.gitops_dir)
    return Changes(writes=writes, removes=removes)
