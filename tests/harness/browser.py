"""Pages and notes as people see them: headless Chromium from Debian (`apt-get install
chromium`, done by scripts/bootstrap.sh), opening file URLs with no network at all, and
Mermaid's own JavaScript from npm (`.tools/node_modules/mermaid`).

`open_page` returns the DOM after the page's scripts ran (Chromium's `--dump-dom` once its
virtual time budget is spent) and keeps a screenshot where the test says.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MERMAID_JS = ROOT / ".tools" / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
ARTIFACTS = ROOT / "test-artifacts"

# Chromium's own background services (updates, sync, safe browsing) would try the network the
# machine does not have; the resolver rule makes any other request fail at once.
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--allow-file-access-from-files",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)


@dataclass(frozen=True)
class Page:
    dom: str
    screenshot: Path


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError("no chromium on PATH: run `bash scripts/bootstrap.sh`")
    return found


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        command = [chromium(), *_FLAGS, f"--user-data-dir={profile}", *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"chromium exited {result.returncode}: {result.stderr[-2000:]}")
    return result


def open_page(
    page: Path,
    screenshot: Path,
    *,
    width: int = 1280,
    height: int = 1600,
    budget_ms: int = 8000,
    timeout: float = 90,
) -> Page:
    """Open `page` (a local HTML file), let its scripts run for up to `budget_ms` of virtual
    time, and return its DOM; a PNG of the first `height` pixels goes to `screenshot`."""
    url = page.resolve().as_uri()
    budget = f"--virtual-time-budget={budget_ms}"
    dom = _run([budget, "--dump-dom", url], timeout).stdout
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    _run(
        [budget, f"--window-size={width},{height}", f"--screenshot={screenshot.resolve()}", url],
        timeout,
    )
    if not screenshot.is_file() or screenshot.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
        raise RuntimeError(f"chromium wrote no PNG screenshot of {page}")
    return Page(dom=dom, screenshot=screenshot)
