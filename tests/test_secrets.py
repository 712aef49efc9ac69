"""No secret in the repository or in what a run logs."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.powerbi_server import FakePowerBI, Fault

ROOT = Path(__file__).resolve().parent.parent
DEMO = [sys.executable, "-m", "devhost.demo"]
"""The demo as a user starts it; without label history, which only slows its start here."""

# Shapes of real credentials: connection-string keys, SAS signatures, Power BI push keys, bearer
# tokens, and long base64 blobs such as a Cosmos DB account key (88 characters ending in ==).
SECRET_SHAPES = [
    re.compile(r"(AccountKey|SharedAccessKey|SharedAccessSignature)=(?!<)[A-Za-z0-9+/=%]{16,}"),
    re.compile(r"[?&]sig=[A-Za-z0-9%+/=]{16,}"),
    re.compile(r"[?&]key=(?!<|\{)[A-Za-z0-9%+/=]{24,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    re.compile(r"(?<![A-Za-z0-9+/-])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/])"),
]
# Lockfile integrity hashes are base64 digests of public packages, not credentials.
ALLOWED_LINE = re.compile(r'"integrity":\s*"sha(256|384|512)-')
# The Cosmos DB emulator's fixed key, which Microsoft publishes and which opens only a local emulator.
EMULATOR_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="


def _tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


def _findings(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        if ALLOWED_LINE.search(line):
            continue
        line = line.replace(EMULATOR_KEY, "<emulator key>")
        found += [m.group(0)[:40] for shape in SECRET_SHAPES for m in shape.finditer(line)]
    return found


@pytest.mark.unit
def test_shapes_catch_real_looking_secrets() -> None:
    """The scanner itself finds what it is meant to find (so a clean scan means something)."""
    # Built at run time, so this file holds no secret-shaped literal of its own.
    cosmos_key = "A" * 86 + "=="
    assert _findings("AccountEndpoint=https://x.documents.azure.com:443/;Account" + f"Key={cosmos_key};")
    assert _findings("Endpoint=sb://ns.servicebus.windows.net/;SharedAccess" + "Key=" + "abcdefghij" * 2)
    assert _findings("https://api.powerbi.com/beta/t/datasets/d/rows?key=" + "k" * 40)
    assert not _findings(f"AccountKey={EMULATOR_KEY};")
    assert not _findings('"integrity": "sha512-' + "A" * 86 + '=="')


@pytest.mark.unit
def test_repository_holds_no_secret() -> None:
    """No tracked file contains a credential; local.settings.json is ignored, only the example is tracked."""
    problems = {}
    for path in _tracked_files():
        if path.suffix in {".joblib", ".png"} or not path.is_file():
            continue
        found = _findings(path.read_text(encoding="utf-8", errors="ignore"))
        if found:
            problems[str(path.relative_to(ROOT))] = found
    assert problems == {}
    tracked = {p.name for p in _tracked_files()}
    assert "local.settings.json" not in tracked
    assert "local.settings.json.example" in tracked
    ignored = subprocess.run(["git", "check-ignore", "-q", "local.settings.json"], cwd=ROOT, check=False)
    assert ignored.returncode == 0


@pytest.mark.integration
def test_demo_run_logs_no_secret() -> None:
    """A verbose demo run publishing to a (fake) Power BI through retried failures never prints the push key."""
    key = secrets.token_urlsafe(32)
    with FakePowerBI(key=key) as fake:
        fake.script(Fault.http(503), Fault.http(429, retry_after="1"))
        env = {**os.environ, "POWERBI_PUSH_URL": fake.url, "POWERBI_TIMEOUT_SECONDS": "5"}
        run = subprocess.run(
            [*DEMO, "--events", "3000", "--rate", "0", "--no-dashboard", "--verbose", "--label-history-days", "0"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert len(fake.rows) == 3000, "every row reaches the fake Power BI after the retries"
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-2000:]
    assert "retry" in log.lower()  # the failure path ran and was logged
    assert key not in log
    assert _findings(log) == []
