"""`modelci names`: every name the product derives for a branch, as JSON."""

from __future__ import annotations

import argparse
import json
import os

from ..config.fields import DAG_KINDS
from ..config.naming import names_for
from ..errors import ModelciError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", help="GitLab project path (default: $CI_PROJECT_PATH)")
    parser.add_argument("--branch", help="branch name (default: $CI_COMMIT_REF_NAME)")
    parser.add_argument("--model", action="append", required=True, help="model name (repeatable)")
    parser.add_argument("--stand", help="name the stand instead of a feature environment")


def run(args: argparse.Namespace) -> int:
    project = args.project or os.environ.get("CI_PROJECT_PATH", "")
    branch = args.branch or os.environ.get("CI_COMMIT_REF_NAME", "")
    if not project or not branch:
        raise ModelciError("give --project and --branch (or run inside GitLab CI, which sets them)")
    try:
        result = [
            names_for(project, branch, m, stand=args.stand).as_dict(DAG_KINDS) for m in args.model
        ]
    except ValueError as error:
        raise ModelciError(str(error)) from None
    print(json.dumps(result if len(result) > 1 else result[0], indent=2, ensure_ascii=False))
    return 0
