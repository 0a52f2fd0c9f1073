"""After a GitOps commit, `deploy-online` and `stop` send Argo CD's webhooks a GitLab push
event, so the environment syncs in seconds instead of at the next 3-minute poll.

Argo CD cannot run here (it needs Kubernetes): `WebhookReceiver` is a small HTTP server that
stands in for its two `/api/webhook` endpoints and records what they would receive. What the
tests hold the event to is what Argo CD's handlers read (util/webhook and
applicationset/webhook in argo-cd): the `X-Gitlab-Event: Push Hook` and `X-Gitlab-Token`
headers, `project.web_url` matched against the ApplicationSet's repoURL, `ref` against its
revision, `after`, and the changed paths. Everything else is real: the CLI, the bare GitOps
repo and its commits.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import git
import pytest
import yaml

from modelci.systems.argocd_webhook import push_event, web_url
from tests.harness.ports import HOST
from tests.harness.tools import ROOT, VENV_BIN
from tests.integration.test_deploy_online_refusals import CI

SECRET = "argocd-webhook-secret-3f9a"
STORAGE_URI = "s3://mlops/mlflow-artifacts/1/models/m-1/artifacts"


@dataclass
class WebhookReceiver:
    status: int = 200
    received: list[dict[str, Any]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    state = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append(
                {"path": self.path, "headers": dict(self.headers), "event": json.loads(body)}
            )
            self.send_response(state.status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def modelci(command: str, repo: Path, gitops: Path, urls: list[str]) -> subprocess.CompletedProcess:
    state = repo / ".modelci" / "churn" / "resolve.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"run_id": "r1", "storage_uri": STORAGE_URI}))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CI_", "MODELCI_"))},
        **CI,
        "MODELCI_GITOPS_REPO_URL": gitops.as_uri(),
        "MODELCI_DAG_REPO_URL": gitops.as_uri(),  # stop also empties the DAG directory
        "MODELCI_ARGOCD_WEBHOOK_URLS": " ".join(urls),
        "MODELCI_ARGOCD_WEBHOOK_SECRET": SECRET,
    }
    return subprocess.run(
        [str(VENV_BIN / "modelci"), command],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return Path(shutil.copytree(ROOT / "examples" / "churn", tmp_path / "churn"))


def test_a_deploy_tells_both_endpoints_of_its_commit_and_a_no_op_tells_none(
    repo: Path, git_remotes, receiver: WebhookReceiver
) -> None:
    urls = [receiver.url("/api/webhook"), receiver.url("/appset/api/webhook")]

    deployed = modelci("deploy-online", repo, git_remotes.gitops, urls)

    assert deployed.returncode == 0, deployed.stderr
    tip = git.Repo(git_remotes.gitops).commit("main")
    assert sorted(r["path"] for r in receiver.received) == ["/api/webhook", "/appset/api/webhook"]
    for request in receiver.received:
        assert request["headers"]["X-Gitlab-Event"] == "Push Hook"
        assert request["headers"]["X-Gitlab-Token"] == SECRET
        event = request["event"]
        assert (event["object_kind"], event["ref"], event["after"]) == (
            "push",
            "refs/heads/main",
            tip.hexsha,
        )
        assert event["project"]["web_url"] == web_url(git_remotes.gitops.as_uri())
        (commit,) = event["commits"]
        changed = {str(path) for path in tip.stats.files}
        assert all(any(f.startswith(p) for p in commit["modified"]) for f in changed), changed
    assert f"Argo CD told of {tip.hexsha[:12]} (2 webhook(s))" in deployed.stdout
    assert SECRET not in deployed.stdout + deployed.stderr

    again = modelci("deploy-online", repo, git_remotes.gitops, urls)
    assert again.returncode == 0 and "no commit" in again.stdout
    assert len(receiver.received) == 2  # nothing new to tell


def test_a_webhook_that_fails_is_a_warning_and_the_commit_stands(
    repo: Path, git_remotes, receiver: WebhookReceiver
) -> None:
    receiver.status = 500
    closed = receiver.url("/api/webhook").replace(str(receiver.port), "1")  # nothing listens

    deployed = modelci("deploy-online", repo, git_remotes.gitops, [receiver.url("/x"), closed])

    assert deployed.returncode == 0, deployed.stderr
    assert int(git.Repo(git_remotes.gitops).git.rev_list("--count", "main")) == 2
    assert "warning: Argo CD webhook" in deployed.stdout
    assert "answered HTTP 500" in deployed.stdout and "unreachable" in deployed.stdout
    assert "Argo CD told" not in deployed.stdout


def test_stopping_an_environment_tells_argocd_of_the_removal(
    repo: Path, git_remotes, receiver: WebhookReceiver
) -> None:
    urls = [receiver.url("/api/webhook")]
    assert modelci("deploy-online", repo, git_remotes.gitops, urls).returncode == 0
    (model_dir,) = receiver.received[0]["event"]["commits"][0]["modified"]

    stopped = modelci("stop", repo, git_remotes.gitops, urls)

    assert stopped.returncode == 0, stopped.stderr
    tip = git.Repo(git_remotes.gitops).commit("main")
    last = receiver.received[-1]["event"]
    assert last["after"] == tip.hexsha
    assert last["commits"][0]["modified"] == [model_dir.rpartition("/")[0]]


def test_the_event_matches_the_applicationset_argocd_reads() -> None:
    """Argo CD refreshes a git generator when the event's web_url names its repoURL (with or
    without .git) and the event's ref its revision."""
    appset = yaml.safe_load((ROOT / "argocd" / "applicationset.yaml").read_text())
    (generator,) = appset["spec"]["generators"]
    repo_url, revision = generator["git"]["repoURL"], generator["git"]["revision"]

    event = push_event(repo_url, revision, "a" * 40, ["environments/p/b-x/m"], "deploy")

    assert event["project"]["web_url"] + ".git" == repo_url
    assert event["ref"] == f"refs/heads/{revision}"
    tokened = repo_url.replace("https://", "https://oauth2:glpat-xyz@")
    assert push_event(tokened, revision, "a" * 40, [], "deploy")["project"] == event["project"]
