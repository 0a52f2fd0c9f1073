"""An editor session: the YAML language server checks an example's mlops.yaml with its schema.

The server (`yaml-language-server` from npm, installed into .tools by scripts/bootstrap.sh)
runs over stdio as an editor runs it. The example is opened with one field misspelt; the
server finds the schema through the example's `# yaml-language-server: $schema=...` line
and reports the field, on the line `modelci validate` names. The diagnostics it published
are kept in test-artifacts/ (the CI job keeps that directory).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import IO, Any

from modelci.config.fields import SCHEMA_FILE
from modelci.config.mlops import load_config
from modelci.errors import ConfigError
from tests.harness.tools import ROOT, require

SERVER = ROOT / ".tools" / "node_modules" / ".bin" / "yaml-language-server"
EXAMPLE = ROOT / "examples" / "churn" / "mlops.yaml"
ARTIFACTS = ROOT / "test-artifacts" / "yaml-language-server"
TIMEOUT = 60.0
SCHEMA = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def send(stream: IO[bytes], message: dict[str, Any]) -> None:
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    stream.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    stream.flush()


def receive(stream: IO[bytes]) -> dict[str, Any]:
    length = 0
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    if not length:
        raise EOFError("the language server closed its output")
    return json.loads(stream.read(length))


def answer(stream: IO[bytes], request: dict[str, Any]) -> None:
    """Answer a request of the server: its settings (validation on), else nothing."""
    if request["method"] == "workspace/configuration":
        settings = {"validate": True, "schemaStore": {"enable": False}}
        result: Any = [settings for _ in request["params"]["items"]]
    else:
        result = None
    send(stream, {"id": request["id"], "result": result})


def diagnostics_of(text: str, uri: str) -> list[dict[str, Any]]:
    """Open `text` as the document `uri` in a fresh server; the first diagnostics it
    publishes for it that are not empty."""
    process = subprocess.Popen(
        [str(require(SERVER)), "--stdio"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        send(
            process.stdin,
            {
                "id": 1,
                "method": "initialize",
                "params": {
                    "processId": None,
                    "rootUri": ROOT.as_uri(),
                    "capabilities": {"workspace": {"configuration": True}},
                },
            },
        )
        deadline = time.monotonic() + TIMEOUT
        opened = False
        while time.monotonic() < deadline:
            message = receive(process.stdout)
            if "method" in message and "id" in message:
                answer(process.stdin, message)
            elif message.get("id") == 1 and not opened:
                send(process.stdin, {"method": "initialized", "params": {}})
                settings = {"yaml": {"validate": True, "schemaStore": {"enable": False}}}
                send(
                    process.stdin,
                    {
                        "method": "workspace/didChangeConfiguration",
                        "params": {"settings": settings},
                    },
                )
                document = {"uri": uri, "languageId": "yaml", "version": 1, "text": text}
                send(
                    process.stdin,
                    {"method": "textDocument/didOpen", "params": {"textDocument": document}},
                )
                opened = True
            elif message.get("method") == "textDocument/publishDiagnostics":
                params = message["params"]
                if params["uri"] == uri and params["diagnostics"]:
                    return params["diagnostics"]
        raise AssertionError(f"no diagnostics for {uri} within {TIMEOUT:g} s")
    finally:
        process.kill()
        process.wait()


def test_the_language_server_reports_a_wrong_field_with_the_schema_message(
    tmp_path: Path,
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "      tolerance: 0.02" in text
    wrong = text.replace("      tolerance: 0.02", "      tolerence: 0.02", 1)
    line = wrong.splitlines().index(next(x for x in wrong.splitlines() if "tolerence" in x))

    # The document is the example's own (its $schema line resolves next to it); its text is
    # the one the editor holds, with the mistake.
    diagnostics = diagnostics_of(wrong, EXAMPLE.as_uri())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    kept = {"document": EXAMPLE.relative_to(ROOT).as_posix(), "diagnostics": diagnostics}
    (ARTIFACTS / "diagnostics.json").write_text(json.dumps(kept, indent=2) + "\n")

    reported = [d for d in diagnostics if d["range"]["start"]["line"] == line]
    assert [d["message"] for d in reported] == ["Property tolerence is not allowed."], diagnostics
    # From the example's schema (named by its title), which also offers the right name.
    assert reported[0]["source"] == f"yaml-schema: {SCHEMA['title']}", reported
    assert reported[0]["data"]["schemaUri"] == [SCHEMA_FILE.as_uri()], reported
    assert reported[0]["data"]["properties"] == ["tolerance"], reported
    assert len(diagnostics) == 1, diagnostics

    # validate names the same field on the same line (1-based), with its own fix.
    copy = tmp_path / "mlops.yaml"
    copy.write_text(wrong, encoding="utf-8")
    for name in ("train.py", "score.py"):
        (tmp_path / name).write_text("", encoding="utf-8")
    try:
        load_config(copy)
    except ConfigError as error:
        printed = str(error)
    else:
        raise AssertionError("validate accepted the misspelt field")
    assert f"mlops.yaml:{line + 1}:" in printed
    assert 'unknown key "tolerence". Did you mean "tolerance"?' in printed
