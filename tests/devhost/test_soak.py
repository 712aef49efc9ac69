"""The 50,000-event soak (the 1,000,000-event one is `make soak`): nothing lost, no duplicate, flat memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_soak_50k() -> None:
    """A fresh process runs 50,000 events; every one is stored once and resident memory grows < 10%."""
    run = subprocess.run(
        [sys.executable, "-m", "devhost.soak", "--events", "50000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["generated"] == 50_000
    assert report["stored_scored"] + report["stored_rejected"] == 50_000
    assert report["distinct_scored_ids"] == report["stored_scored"]
    assert report["rss_growth"] < 0.10
