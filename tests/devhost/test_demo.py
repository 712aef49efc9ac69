"""`make demo`'s choices: the dashboard stays up for a person at a terminal, never in CI or when piped."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from devhost.demo import keep_serving, parse_args
from devhost.store import SQLiteStore

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
    """A short piped demo (as in CI) stores every transaction through the worker, says where, and exits by itself."""
    result = subprocess.run(
        [sys.executable, "-m", "devhost.demo", "--events", "3000", "--rate", "0", "--port", "0",
         "--functions-port", "0", "--data-dir", str(tmp_path), "--no-progress"],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip
    counts = re.search(r"generated ([\d,]+)  scored ([\d,]+)  rejected ([\d,]+)", result.stdout)
    assert counts, result.stdout
    generated, scored, rejected = (int(c.replace(",", "")) for c in counts.groups())
    assert generated == scored + rejected == 3000
    # Exit 1 only when the model could not load, every transaction was rejected, and the demo said so.
    unusable = "every transaction was rejected as model_unavailable" in result.stderr
    assert result.returncode == (1 if unusable else 0), result.stderr
    assert unusable == (scored == 0)
    assert "worker engine" in result.stdout
    assert "Ctrl-C" not in result.stdout
    store = tmp_path / "pipeline.sqlite"
    assert f"stored in {store}: table c_scored ({scored:,} documents) and c_rejected ({rejected:,})" in result.stdout
    assert "unless --keep-data" in result.stdout
    key = (tmp_path / "functions-key").read_text().strip()
    assert f"key (x-functions-key header or ?code=): {key}" in result.stdout
    assert (tmp_path / "functions-key").stat().st_mode & 0o077 == 0, "the key file is readable by its owner only"


def test_label_history_gives_merchant_risk_to_the_live_run(tmp_path: Path) -> None:
    """With a few days of label history, scored payments read merchant features and flags cite frauds there."""
    result = subprocess.run(
        [sys.executable, "-m", "devhost.demo", "--events", "4000", "--rate", "0", "--port", "0",
         "--functions-port", "0", "--data-dir", str(tmp_path), "--no-progress", "--label-history-days", "10"],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    line = re.search(
        r"label history: ([\d,]+) labels imported from 10 days .* ([\d,]+) merchants with a state", result.stdout
    )
    assert line, result.stdout
    assert int(line[1].replace(",", "")) > 0
    assert int(line[2].replace(",", "")) > 0
    explained = re.search(r"merchant risk: ([\d,]+) of ([\d,]+) flagged payments", result.stdout)
    assert explained, result.stdout
    with sqlite3.connect(tmp_path / "pipeline.sqlite") as db:
        rows = db.execute(
            "SELECT json_extract(CAST(body AS TEXT), '$.behaviour.merchant_labelled_7d'), "
            "json_extract(CAST(body AS TEXT), '$.reasons') FROM c_scored"
        ).fetchall()
    assert sum(1 for labelled, _ in rows if labelled > 0) > len(rows) // 2
    reasons = [r["field"] for _, text in rows for r in orjson.loads(text)]
    assert any(field.startswith("merchant_fraud_rate") for field in reasons)
    assert int(explained[1].replace(",", "")) > 0


README_QUERY = re.compile(r"```sql\n(.*?)```", re.DOTALL)


def test_the_readme_query_reads_what_the_store_holds(tmp_path: Path) -> None:
    """The README's example query runs on the store's tables as the runner writes them and ranks by probability."""
    store = SQLiteStore(tmp_path / "pipeline.sqlite")
    documents = [
        {"id": f"tx-{i}", "account_id": f"acct-{i % 3}", "fraud_probability": p, "amount": 10.0 * i}
        for i, p in enumerate([0.2, 0.9, 0.5, 0.7])
    ]
    store.upsert("scored", documents)
    store.close()
    section = (ROOT / "README.md").read_text().split("### Querying what a run stored")[1].split("\n## ")[0]
    query = README_QUERY.findall(section)[0]
    with sqlite3.connect(tmp_path / "pipeline.sqlite") as db:
        rows = db.execute(query).fetchall()
    assert [row[:2] for row in rows] == [("tx-1", 0.9), ("tx-3", 0.7), ("tx-2", 0.5), ("tx-0", 0.2)]
