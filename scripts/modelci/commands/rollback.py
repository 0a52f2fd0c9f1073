"""`modelci rollback`: move a stand back to the version it served before (read from the audit
tags of the version it serves now), or to a version given, and rewrite the stand's DAGs and
values. The rollback is itself recorded in the audit trail."""

from __future__ import annotations

import argparse
import os

from ..errors import ModelciError
from ..lifecycle.stands import load_stand_job
from ..lifecycle.workspace import add_config_arguments

VERSION_VARIABLE = "MODELCI_ROLLBACK_VERSION"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--stand", required=True, help="the stand to roll back")
    parser.add_argument(
        "--version",
        default=os.environ.get(VERSION_VARIABLE) or None,
        help=f"the registered version to go back to (default: ${VERSION_VARIABLE}, else the "
        "version the stand served before)",
    )


def run(args: argparse.Namespace) -> int:
    from ..lifecycle.promotion import previous_version, stand_index
    from ..lifecycle.stands import Move, deploy_to_stand, existing_version, stand_job
    from ..systems.tracking import Tracker

    job = load_stand_job(args)
    stand_index(job.config.stands, args.stand, job.config.path)
    tracker = Tracker(job.settings.tracking_uri)
    moves = []
    for model in job.models(args.model):
        registered = job.names(model).registered_model
        current = tracker.stand_version(registered, args.stand)
        if current is None:
            raise ModelciError(
                f"{args.stand} serves no version of {registered}: there is nothing to roll back"
            )
        target = args.version or previous_version(current.tags, args.stand)
        if not target:
            raise ModelciError(
                f"no earlier version of {registered} is recorded for {args.stand} (version "
                f"{current.version} was its first): give the version to go back to with "
                f"--version or the {VERSION_VARIABLE} pipeline variable"
            )
        moves.append(Move(model, existing_version(tracker, registered, target), "rollback"))
    deploy_to_stand(stand_job(job, args.stand), tracker, moves)
    return 0
