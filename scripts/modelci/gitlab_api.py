"""The GitLab API, for the one thing the pipeline says there: a note on the branch's open merge
requests with the environment's links. The note carries a marker, so a re-run edits it in
place instead of adding another.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ModelciError

TOKEN_VARIABLE = "MODELCI_GITLAB_TOKEN"  # a project access token with `api` scope


def note_marker(environment: str) -> str:
    return f"<!-- modelci:links:{environment} -->"


@dataclass(frozen=True)
class NoteResult:
    merge_request_iid: int
    note_id: int
    created: bool


def upsert_merge_request_notes(
    *, server_url: str, token: str, project: str, branch: str, environment: str, body: str
) -> list[NoteResult]:
    """Create or update the environment's note on every open merge request of `branch`."""
    import gitlab  # python-gitlab; imported here to keep CLI start-up fast

    marker = note_marker(environment)
    text = f"{marker}\n{body}"
    client = gitlab.Gitlab(server_url, private_token=token, timeout=30, retry_transient_errors=True)
    try:
        gl_project = client.projects.get(project, lazy=True)
        requests = gl_project.mergerequests.list(source_branch=branch, state="opened", get_all=True)
        return [_upsert_note(request, marker, text) for request in requests]
    except gitlab.exceptions.GitlabError as error:
        code = getattr(error, "response_code", None)
        raise ModelciError(
            f"GitLab API at {server_url} refused the merge request note for {project} "
            f"(HTTP {code}): check that {TOKEN_VARIABLE} has the `api` scope and Reporter access"
        ) from None


def _upsert_note(merge_request, marker: str, text: str) -> NoteResult:
    for note in merge_request.notes.list(get_all=True):
        if note.body.startswith(marker):
            if note.body != text:
                note.body = text
                note.save()
            return NoteResult(merge_request.iid, note.id, created=False)
    note = merge_request.notes.create({"body": text})
    return NoteResult(merge_request.iid, note.id, created=True)
