"""The fleet page's CI template: published with GitLab Pages from scheduled pipelines and after
each promote and rollback job of the stand it is included for, with a command the CLI takes."""

from __future__ import annotations

import shlex

from modelci.cli import build_parser
from tests.harness.tools import ROOT
from tests.unit.test_ci_schema import _interpolated

FLEET = ROOT / "ci-templates" / "fleet.yml"


def test_the_page_is_published_on_schedule_and_after_each_move_of_the_stand() -> None:
    jobs = _interpolated(FLEET, stand="production", platform="true", days="365")

    assert set(jobs) == {
        "modelci-fleet",
        "modelci-fleet-after-promote-production",
        "modelci-fleet-after-rollback-production",
    }
    for name, job in jobs.items():
        assert job["pages"] is True and job["artifacts"]["paths"] == ["public"], name
        assert job["stage"] == ".post"
        assert job["variables"]["MODELCI_FLEET_PLATFORM"] == "true"
        assert job["variables"]["MODELCI_FLEET_DAYS"] == "365"
    assert jobs["modelci-fleet"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    assert jobs["modelci-fleet"]["needs"] == []
    after = {
        name.rsplit("-", 2)[1]: job["needs"][0]["job"]
        for name, job in jobs.items()
        if "after" in name
    }
    assert after == {
        "promote": "modelci-promote-production",
        "rollback": "modelci-rollback-production",
    }


def test_the_job_runs_a_command_the_cli_accepts() -> None:
    (job,) = [j for n, j in _interpolated(FLEET, stand="staging").items() if n == "modelci-fleet"]
    command = job["script"][-1].replace("$scope", "--platform")
    variables = {"$MODELCI_CONFIG": "mlops.yaml", "$MODELCI_FLEET_DAYS": "90"}
    for name, value in variables.items():
        command = command.replace(f'"{name}"', value)
    argv = shlex.split(command)
    assert argv[:2] == ["modelci", "fleet"]
    args = build_parser("fleet").parse_args(argv[1:])
    assert (args.platform, args.days, args.out, args.config) == (True, 90, "public", "mlops.yaml")
