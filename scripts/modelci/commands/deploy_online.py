"""`modelci deploy-online`: write the Helm values of `charts/kserve-model` and the Argo CD
generator file for each online model into the environment's directory of the GitOps repo, in
one commit. Values are checked against the chart's schema before anything is written."""

from __future__ import annotations

import argparse

from ..lifecycle.workspace import (
    add_config_arguments,
    load_job,
    read_resolved_state,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..lifecycle.deploy import write_online

    job = load_job(args)
    models = job.models(args.model)
    resolved = {m.name: read_resolved_state(m.name) for m in models if m.online.enabled}
    write_online(job, models, resolved)
    return 0
