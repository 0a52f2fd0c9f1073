"""`modelci report`: the links of the environment (MLflow run, Airflow DAGs, model API) in a
collapsible section of the job log, in a dotenv that sets the GitLab environment URL, and in a
note on the branch's open merge requests (a note that cannot be written is only a warning)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from ..cilog import section, write_dotenv
from ..errors import strip_userinfo
from ..lifecycle.workspace import STATE_DIR, Job, add_config_arguments, load_job, read_run_state

DOTENV_PATH = STATE_DIR / "report.env"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


@dataclass(frozen=True)
class Link:
    model: str
    label: str
    url: str


def collect_links(job: Job, models) -> list[Link]:
    from ..render.values import model_api_url

    links = []
    tracking = strip_userinfo(job.settings.tracking_uri).rstrip("/")
    airflow = job.settings.airflow_url.rstrip("/")
    for model in models:
        state, names = read_run_state(model.name), job.names(model)
        run_url = f"{tracking}/#/experiments/{state.experiment_id}/runs/{state.run_id}"
        links.append(Link(model.name, "MLflow run", run_url))
        for kind, dag_id in sorted(state.dags.items()):
            url = f"{airflow}/dags/{dag_id}" if airflow else dag_id
            links.append(Link(model.name, f"Airflow DAG ({kind})", url))
        if model.online.enabled:
            links.append(Link(model.name, "Model API", model_api_url(names, job.settings)))
    return links


def environment_url(links: list[Link]) -> str:
    for label in ("Model API", "Airflow DAG", "MLflow run"):
        for link in links:
            if link.label.startswith(label) and link.url.startswith("http"):
                return link.url
    return ""


def markdown(job: Job, environment: str, links: list[Link]) -> str:
    rows = "\n".join(f"| {link.model} | {link.label} | {link.url} |" for link in links)
    return (
        f"**modelci** environment `{environment}` for commit {job.pipeline.commit[:12]} "
        f"([pipeline]({job.pipeline.pipeline_url}))\n\n"
        f"| model | what | link |\n|---|---|---|\n{rows}\n"
    )


def run(args: argparse.Namespace) -> int:
    job = load_job(args)
    models = job.models(args.model)
    environment = job.dirs.environment
    links = collect_links(job, models)
    with section("modelci_links", f"modelci links for environment {environment}"):
        for link in links:
            print(f"  {link.model:<20} {link.label:<24} {link.url}")
    write_dotenv(DOTENV_PATH, {"MODELCI_ENVIRONMENT_URL": environment_url(links)})
    _note_on_merge_requests(job, environment, markdown(job, environment, links))
    return 0


def _note_on_merge_requests(job: Job, environment: str, body: str) -> None:
    """The note is a convenience: when it cannot be written (no token, GitLab down, refused,
    too slow) the job says so in a WARNING and carries on (`write_note_or_warn`)."""
    from ..systems.gitlab_api import (
        ServerAccess,
        upsert_merge_request_notes,
        warn,
        write_note_or_warn,
    )

    access = ServerAccess.from_env(os.environ)
    if access.missing:
        warn("report", f"no note on merge requests: {', '.join(access.missing)} not set")
        return
    notes = write_note_or_warn(
        "report",
        lambda: upsert_merge_request_notes(
            server_url=access.url,
            token=access.token,
            project=job.pipeline.project,
            branch=job.pipeline.branch,
            environment=environment,
            body=body,
        ),
    )
    if notes is None:
        return
    for note in notes:
        verb = "added to" if note.created else "updated on" if note.changed else "unchanged on"
        print(f"links {verb} merge request !{note.merge_request_iid}")
    if not notes:
        print(f"no open merge request for {job.pipeline.branch}: no note")
