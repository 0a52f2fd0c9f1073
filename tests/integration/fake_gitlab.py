"""A FAKE GitLab API server: the one stand-in this test suite uses, because a GitLab server
cannot run on a test machine (it is a multi-gigabyte Rails application with PostgreSQL, Redis
and Gitaly). It answers exactly the endpoints `modelci.systems.gitlab_api` calls, the way GitLab's
REST API v4 documents them, and nothing else (anything else is a 404):

- `GET  /api/v4/projects/:id/merge_requests?source_branch=&state=opened` (open MRs of a branch)
- `GET  /api/v4/projects/:id/merge_requests/:iid/notes` (paginated: `per_page`, `page`,
  `X-Next-Page`)
- `POST /api/v4/projects/:id/merge_requests/:iid/notes` (create a note)
- `PUT  /api/v4/projects/:id/merge_requests/:iid/notes/:note_id` (edit a note)
- `GET  /api/v4/projects/:id/repository/commits/:sha/merge_requests`
- `GET  /api/v4/projects/:id/repository/branches` (paginated; with the newest commit's time)
- `GET  /api/v4/projects/:id/environments?states=` (paginated)
- `GET  /api/v4/projects/:id/pipelines?ref=&sha=&source=&updated_after=` (newest first),
  `GET  /api/v4/projects/:id/pipelines/:pipeline_id/variables`,
  `GET  /api/v4/projects/:id/pipelines/:pipeline_id/jobs` and
  `GET  /api/v4/projects/:id/jobs/:job_id/artifacts/*path` (one file of a job's artifacts, as
  the job left it): the pipelines a test publishes with `add_pipeline`, usually the files a
  gitlab-ci-local run left in `.gitlab-ci-local/artifacts/<job>/`, and the triggered ones
- `POST /api/v4/projects/:id/trigger/pipeline` (pipeline trigger API: `token` and `ref` in the
  body, `variables` as an object; no PRIVATE-TOKEN; a wrong trigger token is a 404 as on
  GitLab). Each trigger is kept in `FakeGitLab.triggered` and is a pipeline of source
  `trigger` whose variables the API shows, as GitLab stores them; the pipeline itself is for
  the test to run (under gitlab-ci-local, or step by step).

Every request is recorded (`FakeGitLab.requests`) so tests can assert on what was asked, with
which token. It can be told to fail: answer a status code to the next N requests
(`fail_with`), or keep requests waiting (`hang`) to test time-outs. And it misbehaves the
ways a real GitLab's trigger API does under load, each after acting, as GitLab would:
`act_then_fail` creates the pipeline and then answers a 5xx (a proxy losing the answer);
`slow_trigger` creates it late and answers later still, after the client stopped waiting.
Requests are served on threads, so two monitoring runs at once reach it at once, as they
would reach GitLab; `event_pipelines` counts the pipelines each event got.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

_PREFIX = "/api/v4/projects/"


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # as sent, project id still URL-encoded
    query: dict[str, str]
    body: dict
    token: str | None  # the PRIVATE-TOKEN header


@dataclass
class MergeRequest:
    project: str
    iid: int
    source_branch: str
    target_branch: str = "main"
    state: str = "opened"
    merged_by: str | None = None
    commits: tuple[str, ...] = ()
    sha: str = ""  # the source branch's head commit

    def as_json(self, url: str) -> dict:
        merger = {"username": self.merged_by} if self.merged_by else None
        return {
            "id": 1000 + self.iid,
            "iid": self.iid,
            "sha": self.sha or None,
            "project_id": 1,
            "source_branch": self.source_branch,
            "target_branch": self.target_branch,
            "state": self.state,
            "merged_by": merger,
            "merge_user": merger,
            "web_url": f"{url}/{self.project}/-/merge_requests/{self.iid}",
        }


@dataclass
class Job:
    id: int
    name: str
    status: str = "success"
    artifacts: dict[str, bytes] = field(default_factory=dict)  # path -> content


@dataclass
class Pipeline:
    id: int
    project: str
    ref: str
    sha: str
    source: str = "push"
    variables: list[dict] = field(default_factory=list)  # [{"key", "value"}], given at creation
    jobs: list[Job] = field(default_factory=list)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_json(self, url: str) -> dict:
        at = self.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {
            "id": self.id,
            "ref": self.ref,
            "sha": self.sha,
            "source": self.source,
            "status": "success",
            "created_at": at,
            "updated_at": at,
            "web_url": f"{url}/{self.project}/-/pipelines/{self.id}",
        }


@dataclass
class FakeGitLab:
    """State: merge requests, their notes, the requests received and the failures to play."""

    token: str
    merge_requests: list[MergeRequest] = field(default_factory=list)
    branches: list[str] = field(default_factory=list)  # of the one project the tests use
    # Of other projects, by path (a project here answers with these instead of `branches`).
    project_branches: dict[str, list[str]] = field(default_factory=dict)
    committed: dict[str, str] = field(default_factory=dict)  # branch -> newest commit's time
    environments: dict[str, list[dict]] = field(default_factory=dict)  # project -> as the API
    notes: dict[int, list[dict]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    url: str = ""
    fail_status: int | None = None  # answer this status ...
    fail_count: int = 0  # ... to this many requests (then behave again)
    fail_method: str | None = None  # ... of this method only (None: any)
    hang_seconds: float = 0.0  # wait this long before answering anything
    trigger_token: str = ""  # the project's pipeline trigger token
    triggered: list[dict] = field(default_factory=list)  # {"project", "ref", "variables", "id"}
    pipelines: list[Pipeline] = field(default_factory=list)
    act_then_status: int | None = None  # create the triggered pipeline, then answer this ...
    act_then_count: int = 0  # ... to this many triggers
    trigger_create_after: float = 0.0  # a trigger creates its pipeline this late ...
    trigger_answer_after: float = 0.0  # ... and answers this late (both from its arrival)
    _release: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_merge_request(
        self, project: str, branch: str, iid: int, **fields: object
    ) -> MergeRequest:
        request = MergeRequest(project=project, iid=iid, source_branch=branch, **fields)
        self.merge_requests.append(request)
        self.notes.setdefault(iid, [])
        return request

    def add_pipeline(
        self, project: str, ref: str, sha: str, jobs: dict[str, dict[str, bytes]], **fields
    ) -> Pipeline:
        """A finished pipeline with successful jobs (name -> artifact files)."""
        with self._lock:
            number = len(self.pipelines) + 1
            made = [
                Job(id=100 * number + index, name=name, artifacts=files)
                for index, (name, files) in enumerate(jobs.items(), 1)
            ]
            pipeline = Pipeline(id=number, project=project, ref=ref, sha=sha, jobs=made, **fields)
            self.pipelines.append(pipeline)
        return pipeline

    def fail_with(self, status: int, count: int = 1_000_000, method: str | None = None) -> None:
        self.fail_status, self.fail_count, self.fail_method = status, count, method

    def hang(self, seconds: float) -> None:
        self.hang_seconds = seconds

    def act_then_fail(self, status: int, count: int = 1) -> None:
        """The next `count` triggers and new notes are created, then answered `status` (GitLab
        did the work; the answer was lost on the way, e.g. a proxy's 502)."""
        self.act_then_status, self.act_then_count = status, count

    def slow_trigger(self, create_after: float, answer_after: float) -> None:
        """Triggers create their pipeline `create_after` seconds after they arrive and answer
        201 `answer_after` seconds after (GitLab under load: with both beyond the client's
        timeout, the client looks before the pipeline exists)."""
        self.trigger_create_after, self.trigger_answer_after = create_after, answer_after

    def calls(self, method: str | None = None) -> list[Request]:
        return [r for r in self.requests if method is None or r.method == method]

    def trigger_calls(self) -> list[Request]:
        return [r for r in self.calls("POST") if r.path.endswith("/trigger/pipeline")]

    def event_pipelines(self, key: str) -> dict[str, list[int]]:
        """The triggered pipelines by the value of their variable `key` (an event's id)."""
        found: dict[str, list[int]] = {}
        with self._lock:
            for pipeline in self.pipelines:
                for variable in pipeline.variables:
                    if variable["key"] == key:
                        found.setdefault(variable["value"], []).append(pipeline.id)
        return found

    def add_note(self, iid: int, body: str) -> dict:
        notes = self.notes.setdefault(iid, [])
        note = {"id": 100 * iid + len(notes) + 1, "body": body, "system": False}
        notes.append(note)
        return note


@contextmanager
def running(token: str) -> Iterator[FakeGitLab]:
    """A fake GitLab serving on a free local port until the block ends."""
    fake = FakeGitLab(token=token)
    server = start(fake)
    try:
        yield fake
    finally:
        stop(fake, server)


def start(fake: FakeGitLab) -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop(fake: FakeGitLab, server: ThreadingHTTPServer) -> None:
    fake._release.set()  # wake hanging handlers
    server.shutdown()
    server.server_close()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGitLab

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _reply(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        if self.headers.get("Content-Type", "").startswith("application/json"):
            return json.loads(raw or "{}")
        return {k: v[0] for k, v in parse_qs(raw).items()}

    def _handle(self, method: str) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = self._body() if method in ("POST", "PUT") else {}
        fake = self.fake
        fake.requests.append(
            Request(method, url.path, query, body, self.headers.get("PRIVATE-TOKEN"))
        )
        if fake.hang_seconds:
            fake._release.wait(fake.hang_seconds)
            if fake._release.is_set():
                return
        with fake._lock:
            failing = fake.fail_method in (None, method)
            if fake.fail_status is not None and fake.fail_count > 0 and failing:
                fake.fail_count -= 1
                return self._reply(fake.fail_status, {"message": f"{fake.fail_status} fake"})
        if not url.path.startswith(_PREFIX):
            return self._reply(404, {"message": "404 Not Found"})
        project_id, _, rest = url.path.removeprefix(_PREFIX).partition("/")
        route = (method, *rest.split("/"))
        if route == ("POST", "trigger", "pipeline"):
            return self._trigger(unquote(project_id), body)
        if self.headers.get("PRIVATE-TOKEN") != fake.token:
            return self._reply(401, {"message": "401 Unauthorized"})
        with fake._lock:
            self._route(unquote(project_id), route, query, body)

    def _route(self, project: str, route: tuple[str, ...], query: dict, body: dict) -> None:
        fake = self.fake
        match route:
            case ("GET", "merge_requests"):
                found = [
                    mr.as_json(fake.url)
                    for mr in fake.merge_requests
                    if mr.project == project
                    and mr.source_branch == query.get("source_branch")
                    and query.get("state", mr.state) == mr.state
                ]
                return self._page(found, query)
            case ("GET", "merge_requests", iid, "notes") if self._known(project, iid):
                return self._page(fake.notes[int(iid)], query)
            case ("POST", "merge_requests", iid, "notes") if self._known(project, iid):
                if not body.get("body"):
                    return self._reply(400, {"message": "body is missing"})
                note = fake.add_note(int(iid), body["body"])
                if fake.act_then_count > 0 and fake.act_then_status is not None:
                    fake.act_then_count -= 1
                    return self._reply(fake.act_then_status, {"message": "fake (note created)"})
                return self._reply(201, note)
            case ("PUT", "merge_requests", iid, "notes", note_id) if self._known(project, iid):
                for note in fake.notes[int(iid)]:
                    if str(note["id"]) == note_id:
                        note["body"] = body["body"]
                        return self._reply(200, note)
            case ("GET", "pipelines"):
                after = _timestamp(query.get("updated_after"))
                found = [
                    pipeline.as_json(fake.url)
                    for pipeline in reversed(fake.pipelines)
                    if pipeline.project == project
                    and all(
                        query.get(key, value) == value
                        for key, value in (
                            ("ref", pipeline.ref),
                            ("sha", pipeline.sha),
                            ("source", pipeline.source),
                        )
                    )
                    and (after is None or pipeline.created_at > after)
                ]
                return self._page(found, query)
            case ("GET", "pipelines", pipeline_id, "variables"):
                if (pipeline := self._pipeline(project, pipeline_id)) is not None:
                    return self._reply(200, pipeline.variables)
            case ("GET", "pipelines", pipeline_id, "jobs"):
                if (pipeline := self._pipeline(project, pipeline_id)) is not None:
                    jobs = [
                        {
                            "id": job.id,
                            "name": job.name,
                            "status": job.status,
                            "web_url": f"{fake.url}/{project}/-/jobs/{job.id}",
                        }
                        for job in pipeline.jobs
                    ]
                    return self._page(jobs, query)
            case ("GET", "jobs", job_id, "artifacts", *path):
                wanted = unquote("/".join(path))
                for pipeline in fake.pipelines:
                    for job in pipeline.jobs:
                        mine = pipeline.project == project and str(job.id) == job_id
                        if mine and wanted in job.artifacts:
                            return self._raw(job.artifacts[wanted])
            case ("GET", "repository", "branches"):
                names = fake.project_branches.get(project, fake.branches)
                found = [
                    {"name": name, "commit": {"committed_date": fake.committed.get(name)}}
                    for name in names
                ]
                return self._page(found, query)
            case ("GET", "environments"):
                wanted = query.get("states")
                found = [
                    environment
                    for environment in fake.environments.get(project, [])
                    if wanted in (None, environment.get("state"))
                ]
                return self._page(found, query)
            case ("GET", "repository", "commits", sha, "merge_requests"):
                found = [
                    mr.as_json(fake.url)
                    for mr in fake.merge_requests
                    if mr.project == project and unquote(sha) in mr.commits
                ]
                return self._page(found, query)
        self._reply(404, {"message": "404 Not Found"})

    def _trigger(self, project: str, body: dict) -> None:
        """A trigger: checked, then its pipeline created (late, with `slow_trigger`), then
        answered (later, with `slow_trigger`; a 5xx instead of 201, with `act_then_fail`)."""
        fake = self.fake
        if not fake.trigger_token or body.get("token") != fake.trigger_token:
            return self._reply(404, {"message": "404 Not Found"})
        if not body.get("ref"):
            return self._reply(400, {"message": "ref is missing"})
        arrived = time.monotonic()
        if not self._wait_until(arrived + fake.trigger_create_after):
            return
        with fake._lock:
            pipeline = self._create_triggered(project, body)
            status = fake.act_then_status if fake.act_then_count > 0 else None
            if status is not None:
                fake.act_then_count -= 1
        if not self._wait_until(arrived + fake.trigger_answer_after):
            return
        with contextlib.suppress(OSError):  # the client may have stopped waiting
            if status is not None:
                return self._reply(status, {"message": f"{status} fake (pipeline created)"})
            web_url = pipeline.as_json(fake.url)["web_url"]
            self._reply(201, {"id": pipeline.id, "status": "created", "web_url": web_url})

    def _create_triggered(self, project: str, body: dict) -> Pipeline:
        """The triggered pipeline, kept as GitLab keeps it (call with the lock held)."""
        fake = self.fake
        pipeline_id = 9000 + len(fake.triggered)
        variables = {str(k): str(v) for k, v in (body.get("variables") or {}).items()}
        fake.triggered.append(
            {"project": project, "ref": body["ref"], "variables": variables, "id": pipeline_id}
        )
        pipeline = Pipeline(
            id=pipeline_id,
            project=project,
            ref=body["ref"],
            sha="",
            source="trigger",
            variables=[
                {"variable_type": "env_var", "key": key, "value": value}
                for key, value in variables.items()
            ],
        )
        fake.pipelines.append(pipeline)
        return pipeline

    def _wait_until(self, moment: float) -> bool:
        """Wait until `moment` (monotonic); False when the server is stopping meanwhile."""
        fake = self.fake
        if moment > time.monotonic():
            fake._release.wait(moment - time.monotonic())
        return not fake._release.is_set()

    def _pipeline(self, project: str, pipeline_id: str) -> Pipeline | None:
        return next(
            (p for p in self.fake.pipelines if p.project == project and str(p.id) == pipeline_id),
            None,
        )

    def _raw(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _known(self, project: str, iid: str) -> bool:
        return any(mr.project == project and str(mr.iid) == iid for mr in self.fake.merge_requests)

    def _page(self, items: list, query: dict) -> None:
        per_page = int(query.get("per_page", 20))
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(items)
        self._reply(200, chunk, {"X-Next-Page": str(page + 1) if more else ""})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")


def _timestamp(value: str | None) -> datetime | None:
    """An ISO 8601 query value (`2026-12-01T08:00:00Z`), as GitLab reads `updated_after`."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
