"""Bare repos served over smart HTTP with GitLab's access rules, for the stand-protection tests.

GitLab cannot run here, so this stands in for the part of it that decides who may push where:
a request must carry a known access token (HTTP Basic, any user name, the token as password,
as GitLab accepts project access tokens), and a push to a protected branch is refused unless
the token's user is allowed to push there, with GitLab's message. Everything else is real git:
each request is answered by `git http-backend`, and the refusal comes from a pre-receive hook
of the bare repo, which sees the pushing user as REMOTE_USER.
"""

from __future__ import annotations

import base64
import os
import shlex
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from tests.harness.ports import HOST

PROTECTED_MESSAGE = (
    "GitLab: You are not allowed to push code to protected branches on this project."
)

_HOOK = """#!/bin/sh
# Protected branches: only the listed users may update or delete them.
while read old new ref; do
  case "$ref" in
    {cases}
  esac
done
exit 0
"""
_CASE = """refs/heads/{branch})
      case " {users} " in *" $REMOTE_USER "*) ;; *) echo {message} >&2; exit 1 ;; esac ;;"""


@dataclass(frozen=True)
class GitHttpServer:
    url: str  # http://127.0.0.1:<port>; a repo `<root>/x.git` is at `<url>/x.git`

    def repo_url(self, bare: Path) -> str:
        return f"{self.url}/{bare.name}"


def protect(bare: Path, protected: Mapping[str, set[str]]) -> None:
    """Install the pre-receive hook: `protected` maps a branch to the users who may push it."""
    cases = "\n    ".join(
        _CASE.format(
            branch=branch, users=" ".join(sorted(users)), message=shlex.quote(PROTECTED_MESSAGE)
        )
        for branch, users in protected.items()
    )
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(_HOOK.format(cases=cases))
    hook.chmod(0o755)


def _dechunk(stream, first_line: bytes) -> bytes:
    body, line = b"", first_line
    while True:
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            stream.readline()
            return body
        body += stream.read(size)
        stream.readline()
        line = stream.readline()


def _handler(root: Path, tokens: Mapping[str, str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet: tests read their own output
            pass

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _user(self) -> str | None:
            scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "basic":
                return None
            _, _, token = base64.b64decode(encoded).decode().partition(":")
            return tokens.get(token)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                return _dechunk(self.rfile, self.rfile.readline())
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _serve(self) -> None:
            user = self._user()
            body = self._body()
            if user is None:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="GitLab"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            parts = urlsplit(self.path)
            env = {
                "PATH": os.environ.get("PATH", ""),
                "GIT_PROJECT_ROOT": str(root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": parts.path,
                "QUERY_STRING": parts.query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": user,
                "REMOTE_ADDR": HOST,
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            }
            result = subprocess.run(
                ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
            )
            head, _, payload = result.stdout.partition(b"\r\n\r\n")
            headers = [line.split(b":", 1) for line in head.split(b"\r\n") if b":" in line]
            status = next((int(v.split()[0]) for k, v in headers if k.lower() == b"status"), 200)
            self.send_response(status)
            for key, value in headers:
                if key.lower() != b"status":
                    self.send_header(key.decode(), value.decode().strip())
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@contextmanager
def serving(root: Path, tokens: Mapping[str, str]) -> Iterator[GitHttpServer]:
    """Serve the bare repos under `root`; `tokens` maps an access token to its user."""
    server = ThreadingHTTPServer((HOST, 0), _handler(root, tokens))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield GitHttpServer(f"http://{HOST}:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
