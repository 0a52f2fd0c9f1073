"""The GitLab API, for the few things the pipeline says or asks there: a note on a merge
request (the environment's links, the comparison with the stands) and the merge requests a
commit belongs to. A note carries a marker, so a re-run edits it in place instead of adding
another.

python-gitlab's HTTP layer, one small function per API use, every request bounded: a
connect/read timeout of `TIMEOUT_SECONDS`, at most `RETRIES` retries of a refused connection
or a 429/5xx answer (python-gitlab's own retries and rate-limit sleeps are off: they are not
bounded in time), no retry after a timeout (a server that kept us waiting once is not waited
for again), and an overall `BUDGET_SECONDS` per call. Redirects are refused, so the token is
only ever sent to `CI_SERVER_URL`. Failures are `GitLabError`s (a
`ModelciError`) whose text never holds the token; what a command does with one is its
policy (`write_note_or_warn`: a note is never worth failing a pipeline).

The pipeline trigger (`trigger_event_pipeline`) is the one request that is never simply
retried: GitLab may have created the pipeline before a 5xx, or after the client stopped
waiting. Each trigger names its event in a variable; after any failure GitLab may have acted
on, the event's pipeline is looked for through the API first (`find_event_pipeline`), and
the trigger is asked again only when GitLab answered and no pipeline carries the event.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

from ..errors import ModelciError, redact_url

TOKEN_VARIABLE = "MODELCI_GITLAB_TOKEN"  # a project access token with `api` scope
TRIGGER_TOKEN_VARIABLE = "MODELCI_TRIGGER_TOKEN"  # a pipeline trigger token of the project
TIMEOUT_SECONDS = 5.0
RETRIES = 2
BACKOFF_SECONDS = 0.5
BUDGET_SECONDS = 15.0
PER_PAGE = 100
MAX_PAGES = 20
LOOK_PAUSE_SECONDS = 1.0  # before looking for a pipeline a failed trigger may have created
CLOCK_SLACK = timedelta(minutes=10)  # pipelines updated this long before `since` are read too
_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})

T = TypeVar("T")


class GitLabError(ModelciError):
    """A GitLab API call that failed; `status` is the HTTP status, None without an answer.
    `maybe_acted`: GitLab may have carried the request out (a 5xx, no answer in time, a
    connection lost after sending), as opposed to a refusal or a request that never left."""

    def __init__(self, message: str, status: int | None = None, *, maybe_acted: bool = False):
        super().__init__(message)
        self.status = status
        self.maybe_acted = maybe_acted


class TriggerUnknown(GitLabError):
    """A trigger GitLab may have acted on, and no pipeline of its event was found (or could
    be looked for): whether the pipeline exists is not known, so the trigger is not asked
    again; a later look settles it."""


@dataclass(frozen=True)
class _Advice:
    """What a refusal asks to check of the token a call used."""

    refused: str  # the hint of a 401 or 403
    not_found: str  # the hint of a 404


_API_ADVICE = _Advice(
    refused=f"check that {TOKEN_VARIABLE} is a valid, unexpired token with the `api` scope and "
    "at least Reporter access to the project",
    not_found=f"the project or merge request does not exist, or {TOKEN_VARIABLE} cannot see it",
)
_TRIGGER_ADVICE = _Advice(
    refused=f"check that {TRIGGER_TOKEN_VARIABLE} is a pipeline trigger token of the project "
    "(Settings > CI/CD > Pipeline trigger tokens) whose owner may run pipelines on the ref",
    not_found=f"GitLab answers 404 to a trigger token it does not know: check that "
    f"{TRIGGER_TOKEN_VARIABLE} is a pipeline trigger token of this project",
)
_READER_ADVICE = _Advice(
    refused=f"check that {TOKEN_VARIABLE} is a valid, unexpired token with the `read_api` scope "
    "and the Maintainer role (GitLab shows a pipeline's variables to Maintainers only)",
    not_found=f"the project or pipeline does not exist, or {TOKEN_VARIABLE} cannot see it",
)


@dataclass(frozen=True)
class ServerAccess:
    """Where the GitLab API is and the token for it, as a CI job has them."""

    url: str  # CI_SERVER_URL
    token: str  # TOKEN_VARIABLE

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServerAccess:
        return cls(
            url=env.get("CI_SERVER_URL", "").strip(), token=env.get(TOKEN_VARIABLE, "").strip()
        )

    @property
    def missing(self) -> list[str]:
        """The variables that are not set; [] when the API can be called."""
        return [
            name
            for name, value in ((TOKEN_VARIABLE, self.token), ("CI_SERVER_URL", self.url))
            if not value
        ]


def note_marker(environment: str) -> str:
    return f"<!-- modelci:links:{environment} -->"


@dataclass(frozen=True)
class NoteResult:
    merge_request_iid: int
    note_id: int
    created: bool
    changed: bool = True  # False: the note already said exactly this


@dataclass(frozen=True)
class MergeRequestInfo:
    iid: int
    source_branch: str
    target_branch: str
    state: str  # opened, merged, closed, locked
    merged_by: str | None  # username of who merged it; None when not merged (or not known)
    web_url: str
    sha: str = ""  # the source branch's head commit: what was reviewed and merged


@dataclass(frozen=True)
class JobArtifact:
    """One file of a job's artifacts, as GitLab keeps it: written by that job alone, and by
    nothing after it ended."""

    pipeline_url: str
    job_url: str
    content: dict[str, Any]


# --- the API uses ---------------------------------------------------------------------------


def upsert_note(
    server_url: str, token: str, project: str, mr_iid: int, marker: str, body: str
) -> NoteResult:
    """Put `marker` + `body` on merge request `mr_iid`: edit the note whose body starts with
    `marker` (only when its text changed), or create it."""
    api = _Api(server_url, token, project)
    return _upsert_note(api, int(mr_iid), marker, f"{marker}\n{body}")


def upsert_merge_request_notes(
    *, server_url: str, token: str, project: str, branch: str, environment: str, body: str
) -> list[NoteResult]:
    """Create or update the environment's note on every open merge request of `branch`."""
    api = _Api(server_url, token, project)
    marker = note_marker(environment)
    return [
        _upsert_note(api, iid, marker, f"{marker}\n{body}")
        for iid in _open_merge_requests(api, branch)
    ]


def merge_requests_of_commit(
    server_url: str, token: str, project: str, sha: str
) -> list[MergeRequestInfo]:
    """The merge requests commit `sha` belongs to (GitLab: merged ones, for a merge commit or
    a commit of a merged source branch; open ones for a commit on their source branch)."""
    api = _Api(server_url, token, project)
    items = api.get_all(f"repository/commits/{quote(sha, safe='')}/merge_requests", {})
    return [_merge_request_info(item) for item in items]


def push_pipeline_artifact(
    server_url: str, token: str, project: str, ref: str, sha: str, job_name: str, path: str
) -> JobArtifact:
    """The JSON file `path` of the successful job `job_name` in the newest push pipeline of
    `ref` at commit `sha` that had no variables given to it: a pipeline that ran exactly the
    code of that commit, as pushed. Anything else is an error saying what was found."""
    api = _Api(server_url, token, project)
    query = {"ref": ref, "sha": sha, "source": "push", "order_by": "id", "sort": "desc"}
    found = []
    for pipeline in api.get_all("pipelines", query):
        pipeline_id = int(pipeline["id"])
        if pipeline.get("source", "push") != "push":
            continue
        if api.get_all(f"pipelines/{pipeline_id}/variables", {}):
            found.append(f"pipeline {pipeline_id} was run with variables")
            continue
        jobs = api.get_all(f"pipelines/{pipeline_id}/jobs", {})
        done = [j for j in jobs if j.get("name") == job_name and j.get("status") == "success"]
        if not done:
            found.append(f"pipeline {pipeline_id} has no successful job {job_name}")
            continue
        job = done[0]
        content = api.request("GET", f"jobs/{int(job['id'])}/artifacts/{quote(path)}", body=None)
        return JobArtifact(str(pipeline.get("web_url", "")), str(job.get("web_url", "")), content)
    raise GitLabError(
        f"no push pipeline of {project} on {ref} at commit {sha[:12]} has {path} from a "
        f"successful {job_name} job ({'; '.join(found) or 'no push pipeline at that commit'})"
    )


def project_branches(server_url: str, token: str, project: str) -> list[str]:
    """The names of every branch of the project (all pages, or an error)."""
    api = _Api(server_url, token, project)
    items = api.iterate("repository/branches", {}, complete=True)
    return [str(item["name"]) for item in items]


@dataclass(frozen=True)
class BranchTip:
    name: str
    committed: str  # ISO 8601: when its newest commit was made ("" when GitLab gives none)


@dataclass(frozen=True)
class EnvironmentInfo:
    """A GitLab environment as the environments API lists it."""

    name: str  # <prefix>/<branch> for a branch's
    state: str  # available, stopping, stopped
    created_at: str
    auto_stop_at: str  # "" when it never stops by itself
    url: str  # its external URL ("" when none)


def project_branch_tips(server_url: str, token: str, project: str) -> list[BranchTip]:
    """Every branch of the project with the time of its newest commit (all pages, or an
    error): what a list of many environments needs in a page per hundred branches."""
    api = _Api(server_url, token, project, advice=_READER_ADVICE)
    items = api.iterate("repository/branches", {}, complete=True)
    return [
        BranchTip(str(item["name"]), str((item.get("commit") or {}).get("committed_date") or ""))
        for item in items
    ]


def project_environments(server_url: str, token: str, project: str) -> list[EnvironmentInfo]:
    """The project's available environments (all pages, or an error)."""
    api = _Api(server_url, token, project, advice=_READER_ADVICE)
    items = api.iterate("environments", {"states": "available"}, complete=True)
    return [
        EnvironmentInfo(
            name=str(item.get("name", "")),
            state=str(item.get("state", "")),
            created_at=str(item.get("created_at") or ""),
            auto_stop_at=str(item.get("auto_stop_at") or ""),
            url=str(item.get("external_url") or ""),
        )
        for item in items
    ]


@dataclass(frozen=True)
class TriggeredPipeline:
    id: str
    web_url: str


@dataclass(frozen=True)
class EventLookup:
    """How to find the pipeline of one event: the variable `key` = `value` it was triggered
    with, read back with an API `token` that may read pipelines' variables ("" when there is
    none: then nothing GitLab may have acted on is ever asked again)."""

    token: str
    key: str
    value: str


def trigger_event_pipeline(
    server_url: str,
    trigger_token: str,
    project: str,
    ref: str,
    variables: Mapping[str, str],
    lookup: EventLookup,
) -> TriggeredPipeline:
    """Start the pipeline of one event (`variables` must hold `lookup.key` = `lookup.value`)
    through the pipeline trigger API, at most once. The trigger token is sent in the body,
    never as a header, and kept out of every error.

    A request that never reached GitLab, or that it refused for now (429), is sent again. After
    one GitLab may have acted on (a 5xx, no answer within `TIMEOUT_SECONDS`, a lost connection),
    the event's pipeline is looked for first: found, it is the answer; not found after a 5xx,
    the trigger is sent again (at most `RETRIES` times, then a `GitLabError`); not found
    without an answer (or after a gateway's 504), or not looked for, it raises
    `TriggerUnknown` (GitLab may still be creating it). A refusal raises `GitLabError`.
    Everything within `BUDGET_SECONDS`."""
    deadline = time.monotonic() + BUDGET_SECONDS
    since = datetime.now(UTC)
    api = _Api(server_url, trigger_token, project, send_token=False, advice=_TRIGGER_ADVICE)
    api.deadline = deadline
    body = {"token": trigger_token, "ref": ref, "variables": dict(variables)}  # sent as JSON
    for attempt in range(RETRIES + 1):
        try:
            return _triggered(api.request("POST", "trigger/pipeline", body=body, retries=0))
        except GitLabError as error:
            again = attempt < RETRIES and time.monotonic() < deadline
            if error.maybe_acted:
                reader = _Api(server_url, lookup.token, project, advice=_READER_ADVICE)
                reader.deadline = deadline
                found = _look_after(reader, ref, lookup, since, error)
                if found is not None:
                    return found
                if error.status in (None, 504):  # no answer: GitLab may still be creating it
                    raise _unknown(error, lookup, "no pipeline carries it yet") from None
            elif error.status not in (None, 429):  # refused: asking again changes nothing
                raise
            if not again:
                raise _given_up(error, attempt + 1) from None
            api.pause(attempt)
    raise AssertionError("unreachable")


def find_event_pipeline(
    server_url: str, project: str, ref: str, lookup: EventLookup, since: datetime
) -> TriggeredPipeline | None:
    """The trigger pipeline of `ref` whose variables hold `lookup.key` = `lookup.value`,
    among those updated after `since` (less `CLOCK_SLACK`); None when there is none. Needs a
    token that may read pipeline variables (`read_api`, Maintainer)."""
    api = _Api(server_url, lookup.token, project, advice=_READER_ADVICE)
    return _find_event_pipeline(api, ref, lookup, since)


def _look_after(
    reader: _Api, ref: str, lookup: EventLookup, since: datetime, error: GitLabError
) -> TriggeredPipeline | None:
    """The event's pipeline after a trigger GitLab may have acted on, looked for once GitLab
    had a moment to store it (`LOOK_PAUSE_SECONDS`); `TriggerUnknown` when it cannot be
    looked for."""
    if not lookup.token:
        raise _unknown(error, lookup, f"there is no {TOKEN_VARIABLE} to look for it with")
    reader.sleep(LOOK_PAUSE_SECONDS)
    try:
        return _find_event_pipeline(reader, ref, lookup, since)
    except GitLabError as failure:
        raise _unknown(error, lookup, f"looking for it failed: {failure}") from None


def _find_event_pipeline(
    api: _Api, ref: str, lookup: EventLookup, since: datetime
) -> TriggeredPipeline | None:
    after = (since - CLOCK_SLACK).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = {"ref": ref, "source": "trigger", "updated_after": after, "order_by": "id"}
    for pipeline in api.iterate("pipelines", {**query, "sort": "desc"}, complete=True):
        pipeline_id = int(pipeline["id"])
        variables = api.get_all(f"pipelines/{pipeline_id}/variables", {})
        if any(v.get("key") == lookup.key and v.get("value") == lookup.value for v in variables):
            return TriggeredPipeline(id=str(pipeline_id), web_url=str(pipeline.get("web_url", "")))
    return None


def _triggered(created: dict) -> TriggeredPipeline:
    return TriggeredPipeline(id=str(created.get("id", "")), web_url=str(created.get("web_url", "")))


def _unknown(error: GitLabError, lookup: EventLookup, why: str) -> TriggerUnknown:
    return TriggerUnknown(
        f"{error}. GitLab may have started the pipeline of event {lookup.value}, and {why}: "
        "the trigger is not sent again; the next check looks for the pipeline before it "
        "triggers anything",
        error.status,
        maybe_acted=True,
    )


def _given_up(error: GitLabError, attempts: int) -> GitLabError:
    looked = " (and no pipeline of the event was created)" if error.maybe_acted else ""
    return GitLabError(f"{error}; gave up after {attempts} attempts{looked}", error.status)


def write_note_or_warn(command: str, action: Callable[[], T]) -> T | None:
    """The notes' failure policy: run `action`; a GitLab failure is a WARNING in the job log
    (stderr), never a failed job. None when it failed."""
    try:
        return action()
    except ModelciError as error:
        warn(command, f"the merge request note was not written: {error}")
        return None


def warn(command: str, message: str) -> None:
    print(f"modelci {command}: WARNING: {message}", file=sys.stderr, flush=True)


# --- one function per endpoint --------------------------------------------------------------


def _open_merge_requests(api: _Api, branch: str) -> list[int]:
    items = api.get_all("merge_requests", {"source_branch": branch, "state": "opened"})
    return [int(item["iid"]) for item in items]


def _upsert_note(api: _Api, iid: int, marker: str, text: str) -> NoteResult:
    note = _find_note(api, iid, marker)
    if note is None:
        return _create_note(api, iid, marker, text)
    if note.get("body") == text:
        return NoteResult(iid, int(note["id"]), created=False, changed=False)
    api.request("PUT", f"merge_requests/{iid}/notes/{int(note['id'])}", body={"body": text})
    return NoteResult(iid, int(note["id"]), created=False)


def _create_note(api: _Api, iid: int, marker: str, text: str) -> NoteResult:
    """POST a new note. A POST is not repeated blindly: after an answer that GitLab may have
    created the note before (a 5xx, no answer), the note is looked for by its marker first.
    Only a 5xx that GitLab answered itself (not a gateway's 504, not a timeout) and that left
    no note is sent once more; otherwise the note may still appear, and sending again could
    make two."""
    path = f"merge_requests/{iid}/notes"
    for attempt in range(2):
        try:
            created = api.request("POST", path, body={"body": text}, retries=0)
            return NoteResult(iid, int(created["id"]), created=True)
        except GitLabError as error:
            if not error.maybe_acted:
                raise
            found = _find_note(api, iid, marker)
            if found is not None:
                return NoteResult(iid, int(found["id"]), created=True)
            answered = error.status is not None and error.status >= 500 and error.status != 504
            if attempt or not answered:
                raise
            api.pause(attempt)
    raise AssertionError("unreachable")


def _find_note(api: _Api, iid: int, marker: str) -> dict | None:
    query = {"sort": "asc", "order_by": "created_at"}  # ours is usually among the first
    for note in api.iterate(f"merge_requests/{iid}/notes", query):
        if str(note.get("body", "")).startswith(marker):
            return note
    return None


def _merge_request_info(item: dict) -> MergeRequestInfo:
    merger = item.get("merged_by") or item.get("merge_user") or {}
    return MergeRequestInfo(
        iid=int(item["iid"]),
        source_branch=str(item.get("source_branch", "")),
        target_branch=str(item.get("target_branch", "")),
        state=str(item.get("state", "")),
        merged_by=merger.get("username") if isinstance(merger, dict) else None,
        web_url=str(item.get("web_url", "")),
        sha=str(item.get("sha") or ""),
    )


# --- HTTP -----------------------------------------------------------------------------------


class _Api:
    """Requests to one project of one GitLab server, within one time budget."""

    def __init__(
        self,
        server_url: str,
        token: str,
        project: str,
        *,
        send_token: bool = True,
        advice: _Advice = _API_ADVICE,
    ) -> None:
        import gitlab  # imported here to keep CLI start-up fast
        import requests

        self._server = server_url.rstrip("/")
        self._token = token
        self._project = project
        self._advice = advice
        self._base = f"/projects/{quote(project, safe='')}"
        self.deadline = time.monotonic() + BUDGET_SECONDS  # the budget's end (monotonic)
        session = requests.Session()
        session.max_redirects = 0  # a redirect is an error: the token stays with the server
        self._gitlab = gitlab.Gitlab(
            self._server,
            private_token=token if send_token else None,
            session=session,
            timeout=TIMEOUT_SECONDS,
            retry_transient_errors=False,
            keep_base_url=True,
        )

    def get_all(self, path: str, query: dict[str, str]) -> list[dict]:
        return list(self.iterate(path, query))

    def iterate(self, path: str, query: dict[str, str], *, complete: bool = False):
        """The items of every page; with `complete`, more pages than `MAX_PAGES` is an error
        rather than a silently shortened list."""
        page = "1"
        for _ in range(MAX_PAGES):
            items, headers = self._send("GET", path, {**query, "per_page": PER_PAGE, "page": page})
            if not isinstance(items, list):
                raise self._error(f"list {path}", None, "the answer is not a list")
            yield from items
            page = (headers.get("X-Next-Page") or "").strip()
            if not page:
                return
        if complete:
            raise self._error(
                f"list {path}", None, f"more than {MAX_PAGES * PER_PAGE} items; not all read"
            )

    def request(
        self, method: str, path: str, body: dict[str, Any] | None, *, retries: int = RETRIES
    ) -> dict:
        """One JSON object; `retries=0` for a request that must not be sent twice blindly."""
        payload, _ = self._send(method, path, {}, body, retries=retries)
        if not isinstance(payload, dict):
            raise self._error(
                f"{method} {path}", None, "the answer is not a JSON object", maybe_acted=True
            )
        return payload

    def _send(
        self,
        method: str,
        path: str,
        query: dict[str, Any],
        body: dict[str, Any] | None = None,
        *,
        retries: int = RETRIES,
    ) -> tuple[Any, Any]:
        import requests
        from gitlab.exceptions import GitlabError

        what = f"{method} {path}"
        for attempt in range(retries + 1):
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise self._error(what, None, f"no answer within the {BUDGET_SECONDS:g} s budget")
            try:
                response = self._gitlab.http_request(
                    method.lower(),
                    f"{self._base}/{path}",
                    query_data=query,
                    post_data=body,
                    timeout=min(TIMEOUT_SECONDS, remaining),
                    obey_rate_limit=False,
                    retry_transient_errors=False,
                    max_retries=0,
                )
                return (response.json() if response.content.strip() else None), response.headers
            except GitlabError as error:  # HTTP errors, 401 included
                status, reason = error.response_code, _short(error.error_message)
                if status in _TRANSIENT_STATUS and attempt < retries:
                    self.pause(attempt)
                    continue
                raise self._error(
                    what, status, reason, attempts=attempt + 1, maybe_acted=(status or 500) >= 500
                ) from None
            except requests.exceptions.TooManyRedirects:
                raise self._error(what, 302, "redirected", attempts=attempt + 1) from None
            except requests.exceptions.Timeout as error:
                raise self._timed_out(what, maybe_acted=not _unsent(error)) from None
            except requests.exceptions.ConnectionError as error:
                if attempt < retries:
                    self.pause(attempt)
                    continue
                raise self._error(
                    what,
                    None,
                    f"unreachable ({_short(error)})",
                    attempts=attempt + 1,
                    maybe_acted=not _unsent(error),
                ) from None
            except ValueError:
                raise self._error(what, None, "the answer is not JSON", maybe_acted=True) from None
        raise AssertionError("unreachable")

    def pause(self, attempt: int) -> None:
        """The back-off before attempt `attempt + 1`, within the budget."""
        self.sleep(BACKOFF_SECONDS * 2**attempt)

    def sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, max(0.0, self.deadline - time.monotonic())))

    def _timed_out(self, what: str, *, maybe_acted: bool = True) -> GitLabError:
        return self._error(
            what, None, f"no answer within {TIMEOUT_SECONDS:g} s", maybe_acted=maybe_acted
        )

    def _error(
        self,
        what: str,
        status: int | None,
        reason: str,
        *,
        attempts: int = 1,
        maybe_acted: bool = False,
    ) -> GitLabError:
        where = f"GitLab API at {redact_url(self._server)}"
        tried = f" after {attempts} attempts" if attempts > 1 else ""
        if status is None:
            message = f"{where}: {what} for project {self._project} failed{tried}: {reason}"
        else:
            message = (
                f"{where} answered HTTP {status} to {what} for project {self._project}{tried}"
                f" ({reason}){_hint(status, self._advice)}"
            )
        if self._token:
            message = message.replace(self._token, "***")
        return GitLabError(message, status, maybe_acted=maybe_acted)


def _unsent(error: Exception) -> bool:
    """Whether a request failed before any byte of it reached the server (no connection, a
    connect timeout, a TLS handshake refused), so that the server cannot have acted on it."""
    import requests
    from urllib3.exceptions import NewConnectionError

    if isinstance(error, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return True
    cause = error.args[0] if error.args else None
    return isinstance(getattr(cause, "reason", cause), NewConnectionError)


def _hint(status: int, advice: _Advice) -> str:
    if status in (401, 403):
        return f": {advice.refused}"
    if status == 404:
        return f": {advice.not_found}"
    if 300 <= status < 400:
        return ": redirected; set CI_SERVER_URL to the server's final URL (https)"
    if status in _TRANSIENT_STATUS:
        return ": GitLab is failing or overloaded"
    return ""


def _short(reason: object) -> str:
    return str(reason).replace("\n", " ")[:200]
