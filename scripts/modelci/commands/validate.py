"""`modelci validate`: check the model config file; write nothing. In a feature branch's
pipeline, also check that GitLab can name the branch's environment after it. With
`--max-environments N`, also refuse a push that would make more than N live branch
environments of the project (counted in the shared repos), before anything is trained. With
`--stands "a b"`, also refuse a config whose stands are not the ones the CI template promotes
to, so a config that validates is one whose first merge works."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path

from ..config.mlops import CONFIG_FILE_NAME, load_config
from ..config.types import Config
from ..errors import ModelciError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=CONFIG_FILE_NAME,
        help=f"the model config file (default: {CONFIG_FILE_NAME})",
    )
    parser.add_argument(
        "--max-environments",
        type=int,
        default=0,
        help="most live branch environments the project may have (0: no cap)",
    )
    parser.add_argument(
        "--stands",
        default="",
        help="the stands the including CI template promotes to, in order, separated by spaces "
        "(full.yml passes its first_stand and last_stand inputs); mlops.yaml must name these",
    )


def run(args: argparse.Namespace) -> int:
    config = load_config(Path(args.config))
    models = ", ".join(model.name for model in config.models)
    print(f"{config.path}: valid ({len(config.models)} model(s): {models})")
    check_branch_name(os.environ)
    if args.stands.split():
        check_template_stands(config, args.stands.split())
    if args.max_environments > 0:
        check_capacity(args.max_environments)
    return 0


def check_template_stands(config: Config, template: list[str]) -> None:
    """The promote jobs are fixed when the pipeline is created; mlops.yaml must agree with
    them, or the pipeline of the first merge fails after the merge request promised a stand."""
    ours = [stand.name for stand in config.stands]
    if ours == template:
        return
    listed = " then ".join(template)
    block = ", ".join(f"{{name: {name}}}" for name in template[:-1])
    last = f"{{name: {template[-1]}, manual: true}}" if len(template) > 1 else ""
    example = ", ".join(part for part in (block, last) if part) or f"{{name: {template[0]}}}"
    raise ModelciError(
        f"{config.path}: stands are {', '.join(ours)}, but the CI template promotes to "
        f"{listed} (the inputs first_stand and last_stand of ci-templates/full.yml); the "
        "first merge would fail. Nothing was trained or written. Fix: write "
        f"`stands: [{example}]` in {config.path}, or set the include's first_stand and "
        "last_stand inputs to your stands (for another number of stands, include "
        "ci-templates/promote.yml once per stand, as docs/data-scientists/merge-request-note.md "
        "shows)"
    )


def check_branch_name(env: Mapping[str, str]) -> None:
    """A feature branch's GitLab environment is `<prefix>/<branch>`: the branch must fit."""
    from ..config.naming import gitlab_environment_problem

    branch = env.get("CI_COMMIT_BRANCH", "")
    if not branch or branch == env.get("CI_DEFAULT_BRANCH", ""):
        return  # not a feature branch's push pipeline: no branch environment
    problem = gitlab_environment_problem(branch)
    if problem:
        raise ModelciError(
            f"branch {branch} cannot name its GitLab environment (<environment_prefix>/<branch>, "
            f"e.g. review/{branch}): "
            f"{problem}. Nothing was trained or written. Rename the branch "
            "(`git branch -m <new-name>`) and push it under the new name"
        )


def check_capacity(limit: int) -> None:
    """A new branch environment must not take the project past `limit` live ones."""
    from ..config.naming import FEATURE_PREFIX, environment_dirs, project_slug_of
    from ..config.settings import Pipeline, Settings
    from ..lifecycle.workspace import dag_repo, gitops_repo

    env = dict(os.environ)
    pipeline, settings = Pipeline.from_env(env), Settings.from_env(env)
    ours = environment_dirs(pipeline.project, pipeline.branch).environment
    slug = project_slug_of(pipeline.project)
    live = {
        name
        for names in (
            gitops_repo(settings).list_dir(f"environments/{slug}"),
            dag_repo(settings).list_dir(f"dags/{slug}"),
        )
        for name in names
        if name.startswith(FEATURE_PREFIX)
    }
    if ours in live or len(live) < limit:
        print(f"{len(live)} of at most {limit} branch environments are live")
        return
    raise ModelciError(
        f"{pipeline.project} already has {len(live)} live branch environments, the most the "
        f"platform allows ({limit}): {', '.join(sorted(live))}. Nothing was trained or "
        "written. Merge or delete a branch you no longer need (its stop job frees its "
        "environment), then run the pipeline again"
    )
