"""Argo CD's webhook: after a commit to the GitOps repo, tell Argo CD at once, so the
environment is generated and synced in seconds instead of at the next poll (3 minutes by
default, for Applications and for the ApplicationSet's git generator alike).

Argo CD takes GitLab push events on two endpoints, both `/api/webhook`: the API server's
(refreshes the Applications whose repoURL and revision match) and the ApplicationSet
controller's webhook server (port 7000: re-runs git generators whose repoURL and revision
match). From the event it reads `project.web_url` (matched against the repoURL, https and ssh
forms alike), `ref`, `before`/`after`, `project.default_branch` and the paths in
`commits[].added/modified/removed`; with `webhook.gitlab.secret` set in `argocd-secret`, the
`X-Gitlab-Token` header must carry that secret.

Optional: without MODELCI_ARGOCD_WEBHOOK_URLS nothing is sent. A failure is a warning, never a
failed job: the commit has landed and Argo CD's polling finds it anyway.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from ..errors import redact_url, strip_userinfo

SECRET_VARIABLE = "MODELCI_ARGOCD_WEBHOOK_SECRET"  # a masked CI/CD variable
TIMEOUT_SECONDS = 5.0
NO_COMMIT = "0" * 40  # what GitLab sends as `before` when it has no earlier commit to name


def web_url(repo_url: str) -> str:
    """The project URL GitLab would send for the repo at `repo_url` (no credentials, no .git)."""
    return strip_userinfo(repo_url).removesuffix("/").removesuffix(".git")


def push_event(
    repo_url: str, branch: str, commit: str, paths: Sequence[str], message: str
) -> dict[str, Any]:
    """A GitLab push event for `commit` on `branch`, with what Argo CD reads of one."""
    url = web_url(repo_url)
    return {
        "object_kind": "push",
        "event_name": "push",
        "ref": f"refs/heads/{branch}",
        "before": NO_COMMIT,
        "after": commit,
        "checkout_sha": commit,
        "project": {"web_url": url, "git_http_url": f"{url}.git", "default_branch": branch},
        "repository": {"homepage": url, "git_http_url": f"{url}.git"},
        "commits": [{"id": commit, "message": message, "modified": sorted(paths)}],
        "total_commits_count": 1,
    }


def notify(urls: Sequence[str], event: dict[str, Any], secret: str | None = None) -> list[str]:
    """POST `event` to each webhook URL; returns one warning per URL that did not take it."""
    secret = os.environ.get(SECRET_VARIABLE, "") if secret is None else secret
    body = json.dumps(event).encode("utf-8")
    headers = {"Content-Type": "application/json", "X-Gitlab-Event": "Push Hook"}
    if secret:
        headers["X-Gitlab-Token"] = secret
    warnings = []
    for url in urls:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                response.read()
        except urllib.error.HTTPError as error:
            warnings.append(f"{redact_url(url)} answered HTTP {error.code}")
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            warnings.append(f"{redact_url(url)} unreachable ({reason})")
    return warnings
