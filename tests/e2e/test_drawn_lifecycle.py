"""A sample of the configs `modelci validate` accepts, drawn by the same Hypothesis strategy as
tests/integration/test_config_space.py, lives through the whole lifecycle in gitlab-ci-local
with the real templates: push (every job passes), merge request (the note names what the merge
will do), merge (the first stand serves version 1 of every model, the branch environment is
gone), manual promotion to the last stand. Drawn stand names are passed to full.yml's inputs,
so a config with stands `dev` and `prod` is gated against `prod`.

The sample keeps what one machine can run: Python 3.11, the python engine, flavors the
sklearn environment of tests/repos/any-config logs, and no stands or exactly two (full.yml
promotes to two)."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from modelci.config.mlops import load_config
from modelci.config.naming import names_for
from modelci.errors import ConfigError
from tests.e2e.test_faults import job_states
from tests.harness.gitremotes import files_on
from tests.harness.lifecycle import (
    PUSH_JOBS,
    GitLabProject,
    LocalPlatform,
    commit_change,
    make_model_repo,
    merge_request_event,
    merge_request_merged,
    publish_push_pipeline,
)
from tests.integration.fake_gitlab import FakeGitLab, running
from tests.integration.test_config_space import config, write_repo

REPO = Path(__file__).resolve().parents[1] / "repos" / "any-config"
TOKEN = "glpat-drawn-config-token"
BRANCH = "feature/drawn"
# About 20 s each: one keeps the suite under 15 minutes (test_new_teams.py runs three more).
SAMPLES = 1


def fits_one_machine(document: dict[str, Any]) -> bool:
    return (
        document.get("python", "3.11") == "3.11"
        and len(document.get("stands", [None, None])) == 2
        and all(
            model["flavor"] in ("sklearn", "pyfunc") and "engine" not in model["train"]
            for model in document["models"]
        )
    )


def accepted(document: dict[str, Any]) -> bool:
    with tempfile.TemporaryDirectory() as where:
        try:
            load_config(write_repo(Path(where), document))
        except ConfigError:
            return False
    return True


def lifecycle_configs() -> st.SearchStrategy[dict[str, Any]]:
    return config().filter(fits_one_machine).filter(accepted)


def ci_file(stands: list[str]) -> str:
    inputs = {"config": "mlops.yaml"}
    if stands:
        inputs |= {"first_stand": stands[0], "last_stand": stands[1]}
    document = {
        "stages": ["build", "deploy"],
        "include": [
            {
                "project": "platform/modelci",
                "ref": "v0.1.0",
                "file": "ci-templates/full.yml",
                "inputs": inputs,
            }
        ],
    }
    return yaml_text(document)


def yaml_text(document: dict[str, Any]) -> str:
    out = io.StringIO()
    YAML().dump(document, out)
    return out.getvalue()


def live_through_the_lifecycle(
    platform: LocalPlatform, gitlab: FakeGitLab, index: int, where: Path, document: dict
) -> None:
    name = f"drawn/config-{index}"
    repo = make_model_repo(where / f"config-{index}", project=name, branch=BRANCH, example=REPO)
    project = GitLabProject(platform, gitlab.url, TOKEN, name, repo)
    stands = [stand["name"] for stand in document.get("stands", [])]
    first, last = stands or ["staging", "production"]
    models = [model["name"] for model in document["models"]]
    commit_change(repo, ".gitlab-ci.yml", ci_file(stands), "Include full.yml for the stands")
    commit_change(repo, "mlops.yaml", yaml_text(document), "The drawn config")
    iid = index + 1  # one fake GitLab serves every sample's project
    gitlab.add_merge_request(project.project, BRANCH, iid)

    states = job_states(project.run())
    assert all(states.get(job) == "PASS" for job in PUSH_JOBS), states
    publish_push_pipeline(gitlab, project.repo, project.project)
    states = job_states(project.run(**merge_request_event(project.project, BRANCH, iid)))
    assert states == {"modelci-compare": "PASS"}, states
    (note,) = [n["body"] for n in gitlab.notes[iid] if "<!-- modelci:compare" in n["body"]]
    assert note.count(f"{first}` will serve version **1**") == len(models), note

    merge_request_merged(gitlab, project.repo, BRANCH, iid, "lead")
    states = job_states(project.run())
    assert states.get(f"modelci-promote-{first}") == "PASS" and "FAIL" not in states.values()
    assert [project.alias(model, first) for model in models] == ["1"] * len(models)
    branch_dirs = {names_for(project.project, BRANCH, m).gitops_dir for m in models}
    live = files_on(platform.gitops_repo, "main") | files_on(platform.dag_repo, "main")
    assert not any(path.startswith(tuple(branch_dirs)) for path in live)

    states = job_states(project.run(f"modelci-promote-{last}"))
    assert states == {f"modelci-promote-{last}": "PASS"}, states
    assert [project.alias(model, last) for model in models] == ["1"] * len(models)


def test_drawn_configs_live_through_the_whole_lifecycle(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    counter = iter(range(SAMPLES * 10))
    with running(TOKEN) as gitlab:

        @settings(
            max_examples=SAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(document=lifecycle_configs())
        def each(document: dict[str, Any]) -> None:
            live_through_the_lifecycle(platform, gitlab, next(counter), tmp_path, document)

        each()
    assert next(counter) == SAMPLES  # every sample ran
