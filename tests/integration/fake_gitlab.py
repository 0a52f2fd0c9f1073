"""A FAKE GitLab API server: the one stand-in this test suite uses, because a GitLab server
cannot run on a test machine. It answers only the few endpoints python-gitlab calls to put a
note on a merge request, and records what was asked so tests can check it.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

_MERGE_REQUESTS = re.compile(r"^/api/v4/projects/([^/]+)/merge_requests$")
_NOTES = re.compile(r"^/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes(?:/(\d+))?$")


@dataclass
class FakeGitLab:
    """State: open merge requests per (project, source branch) and their notes."""

    token: str
    merge_requests: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    notes: dict[int, list[dict]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""

    def add_merge_request(self, project: str, branch: str, iid: int) -> None:
        self.merge_requests.setdefault((project, branch), []).append(iid)
        self.notes.setdefault(iid, [])


def start(fake: FakeGitLab) -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGitLab

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _reply(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        if self.headers.get("PRIVATE-TOKEN") == self.fake.token:
            return True
        self._reply(401, {"message": "401 Unauthorized"})
        return False

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        if self.headers.get("Content-Type", "").startswith("application/json"):
            return json.loads(raw or "{}")
        return {k: v[0] for k, v in parse_qs(raw).items()}

    def do_GET(self) -> None:
        url = urlparse(self.path)
        self.fake.requests.append(("GET", url.path))
        if not self._authorised():
            return
        if match := _MERGE_REQUESTS.match(url.path):
            query = parse_qs(url.query)
            key = (unquote(match.group(1)), query.get("source_branch", [""])[0])
            iids = self.fake.merge_requests.get(key, []) if query.get("state") == ["opened"] else []
            return self._reply(200, [{"iid": iid, "id": 1000 + iid} for iid in iids])
        if match := _NOTES.match(url.path):
            return self._reply(200, self.fake.notes.get(int(match.group(2)), []))
        self._reply(404, {"message": "404 Not Found"})

    def do_POST(self) -> None:
        url = urlparse(self.path)
        self.fake.requests.append(("POST", url.path))
        if not self._authorised():
            return
        if (match := _NOTES.match(url.path)) and not match.group(3):
            notes = self.fake.notes.setdefault(int(match.group(2)), [])
            note = {"id": len(notes) + 1, "body": self._body()["body"]}
            notes.append(note)
            return self._reply(201, note)
        self._reply(404, {"message": "404 Not Found"})

    def do_PUT(self) -> None:
        url = urlparse(self.path)
        self.fake.requests.append(("PUT", url.path))
        if not self._authorised():
            return
        if (match := _NOTES.match(url.path)) and match.group(3):
            for note in self.fake.notes.get(int(match.group(2)), []):
                if note["id"] == int(match.group(3)):
                    note["body"] = self._body()["body"]
                    return self._reply(200, note)
        self._reply(404, {"message": "404 Not Found"})
