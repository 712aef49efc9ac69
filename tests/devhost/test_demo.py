"""`make demo`'s choices: the dashboard stays up for a person at a terminal, never in CI or when piped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devhost.demo import keep_serving, parse_args

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("argv", "interactive", "env", "expected"),
    [
        ([], True, {}, True),
        ([], False, {}, False),
        ([], True, {"CI": "true"}, False),
        ([], True, {"CI": "1"}, False),
        (["--exit"], True, {}, False),
        (["--no-dashboard"], True, {}, False),
        (["--keep-serving"], False, {"CI": "true"}, True),
    ],
)
def test_keep_serving(argv: list[str], interactive: bool, env: dict[str, str], expected: bool) -> None:
    """A terminal outside CI keeps serving; piped output, CI and --exit end with the run; --keep-serving forces it."""
    assert keep_serving(parse_args(argv), interactive, env) is expected


def test_piped_demo_runs_through_the_worker_and_exits(tmp_path: Path) -> None:
    """A short demo with output piped (as in CI) scores everything through the worker engine and exits by itself."""
    result = subprocess.run(
        [sys.executable, "-m", "devhost.demo", "--events", "3000", "--rate", "0", "--port", "0",
         "--data-dir", str(tmp_path), "--no-progress"],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "worker engine" in result.stdout
    assert "generated 3,000  scored 3,000  rejected 0" in result.stdout
    assert "Ctrl-C" not in result.stdout
