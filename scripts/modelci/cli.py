"""The `modelci` command: one subcommand per pipeline step, each a thin wire between the
pure core (config, naming, rendering) and the adapters (MLflow, git, S3, GitLab).

Subcommand modules are imported only when chosen, so `modelci --help` and `validate` stay fast.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence

from .errors import ModelciError

# name -> (module under modelci.commands, one-line purpose)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("validate", "check mlops.yaml; exit non-zero with every problem found"),
    "names": ("names", "print every name the product derives for a branch, as JSON"),
    "train": ("train", "start a tagged MLflow run and run the training entrypoint in it"),
    "gate": ("gate", "apply the quality gate to this pipeline's runs; write a JUnit report"),
    "resolve": (
        "resolve",
        "pick the run for this environment from MLflow tags, find its s3:// URI; stage the code",
    ),
    "deploy-batch": ("deploy_batch", "render Airflow DAGs and commit them to the DAG bundle repo"),
    "deploy-online": (
        "deploy_online",
        "write Helm values for charts/kserve-model to the GitOps repo",
    ),
    "report": ("report", "print the links (MLflow run, DAGs, model API); set the environment URL"),
    "compare": (
        "compare",
        "merge request: candidate vs each stand's model, in the log and one updated MR note",
    ),
    "stop": ("stop", "tear down a branch environment: DAG files, GitOps directory, S3 scratch"),
    "promote": (
        "promote",
        "after a merge: the branch's validated model to the first stand; --stand: onwards",
    ),
    "rollback": ("rollback", "move a stand back to the version it served before"),
    "deploy-version": (
        "deploy_version",
        "put a chosen version (or run) of a model on a stand, audited",
    ),
    "cleanup": (
        "cleanup",
        "scheduled: remove the project's environments whose branch is gone (--dry-run first)",
    ),
    "fleet": ("fleet", "build the fleet's static site (stands, audit, monitoring, branch envs)"),
    "render": ("render", "dry run: print every file a pipeline would write, touching no remote"),
    "monitor": (
        "monitor",
        "inside the monitoring DAG's pod: check drift and quality; trigger retraining",
    ),
    "pod-run": (
        "pod_run",
        "inside a batch pod: fetch the model repo's code archive and run a command",
    ),
    "serve": (
        "serve",
        "inside the model server's pod: run MLServer from the model's environment archive",
    ),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or with `only` of that one: a job imports just the
    module of the step it runs (the others cost a tenth of a second to import)."""
    parser = argparse.ArgumentParser(
        prog="modelci",
        description="Train, gate, deploy and clean up ML models per git branch.",
    )
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, purpose) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=purpose, description=purpose)
        sub.set_defaults(module_name=module_name)
        if only in (None, name):
            _command_module(module_name).add_arguments(sub)
    return parser


def _command_module(module_name: str):
    return importlib.import_module(f"modelci.commands.{module_name}")


def _version() -> str:
    from . import __version__

    return f"modelci {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    args = build_parser(chosen).parse_args(argv)
    try:
        return _command_module(args.module_name).run(args) or 0
    except ModelciError as error:
        print(f"modelci {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


def entry() -> None:
    """The `modelci` executable: `main` in a process that lives for one command.

    A job builds a few hundred thousand objects that live until it exits (botocore's S3
    model, the imported modules) and frees few. With Python's default thresholds the cyclic
    garbage collector walks them again and again while they are built, and once more at exit,
    finding nothing: about a quarter of a second of a deploy (benchmarks/README.md). So it
    runs after 50,000 new objects instead of 700, and what is left at the end is frozen,
    out of the collector's reach, before the interpreter shuts down.
    """
    gc.set_threshold(50_000, 10, 10)
    status = main()
    gc.freeze()
    sys.exit(status)


if __name__ == "__main__":
    entry()
