"""`modelci deploy-version`: put a chosen registered version (or run) of one model on a stand,
from GitLab's "Run pipeline" form. It must exist and have passed the quality gate, unless a
reason for overriding the gate is given; either way the move is audited."""

from __future__ import annotations

import argparse
import os

from ..errors import ModelciError
from ..lifecycle.stands import load_stand_job
from ..lifecycle.workspace import add_config_arguments

FORM_VARIABLES = {  # the "Run pipeline" form's variables, declared in the model repo's CI file
    "stand": "MODELCI_DEPLOY_STAND",
    "version": "MODELCI_DEPLOY_VERSION",
    "run_id": "MODELCI_DEPLOY_RUN_ID",
    "reason": "MODELCI_DEPLOY_REASON",
    "model": "MODELCI_DEPLOY_MODEL",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    for name, variable in FORM_VARIABLES.items():
        if name != "model":
            option = "--" + name.replace("_", "-")
            parser.add_argument(
                option, default=os.environ.get(variable) or None, help=f"default: ${variable}"
            )


def run(args: argparse.Namespace) -> int:
    from ..lifecycle.promotion import stand_index
    from ..lifecycle.stands import Move, deploy_to_stand, stand_job
    from ..systems.tracking import GATE_PASSED, TAG_GATE, Tracker

    model_names = args.model or [m for m in [os.environ.get(FORM_VARIABLES["model"])] if m]
    job = load_stand_job(args)
    if len(model_names) != 1 or not args.stand or bool(args.version) == bool(args.run_id):
        raise ModelciError(
            "deploy-version needs one model, a stand and either a version or a run id: "
            f"--model/{FORM_VARIABLES['model']}, --stand/{FORM_VARIABLES['stand']}, "
            f"--version/{FORM_VARIABLES['version']} or --run-id/{FORM_VARIABLES['run_id']}"
        )
    stand_index(job.config.stands, args.stand, job.config.path)
    (model,) = job.models(model_names)
    tracker = Tracker(job.settings.tracking_uri)
    registered = job.names(model).registered_model
    version = _chosen_version(tracker, registered, args)
    gate = tracker.get_run(version.run_id).data.tags.get(TAG_GATE, "not run")
    if gate != GATE_PASSED and not args.reason:
        raise ModelciError(
            f"version {version.version} of {registered} (run {version.run_id}) did not pass "
            f"the quality gate (modelci.gate: {gate}); nothing was deployed. To deploy it "
            f"anyway, say why in --reason or the {FORM_VARIABLES['reason']} variable: the "
            "reason is recorded with the deployment"
        )
    reason = args.reason if gate != GATE_PASSED else ""
    move = Move(model, version, "deploy", "", reason, first_copy=True)
    deploy_to_stand(stand_job(job, args.stand), tracker, [move])
    return 0


def _chosen_version(tracker, registered: str, args: argparse.Namespace):
    from ..lifecycle.stands import existing_version

    if args.version:
        return existing_version(tracker, registered, args.version)
    version, _ = tracker.version_for_run(registered, args.run_id, {})
    return version
