"""benchmarks/bench_since: a tiny run scores every record on both sides and reports; bad options are one line, exit 2.

No timing is asserted: speed is what the benchmark prints, against a baseline measured in the same run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import bench_since

ROOT = Path(__file__).resolve().parents[2]
PROG = "python -m benchmarks.bench_since"


def _worktrees() -> str:
    return subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True, check=True).stdout


@pytest.mark.integration
def test_a_quick_run_scores_every_record_on_both_sides() -> None:
    """Both trees score every timed record (none rejected), the report has its rows, and the worktree is gone."""
    known = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{bench_since.BASELINE}^{{commit}}"], cwd=ROOT, check=False
    )
    # A failure, not a skip: `make test` runs on a full clone, and a skipped test is a missing one.
    assert known.returncode == 0, f"the baseline {bench_since.BASELINE} is not in this clone (git fetch --unshallow)"
    before = _worktrees()
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_since", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    timed = bench_since.QUICK["invocations"] * bench_since.QUICK["events_per_delivery"] * 100

    rounds = re.findall(r"^ +1 (baseline|current) +(\d+\.\d\d) +([\d,]+) +([\d,]+) +([\d,]+)$", out, re.MULTILINE)
    assert [r[0] for r in rounds] == ["baseline", "current"]
    sides = re.findall(r"^(baseline|current) +(\d+\.\d\d) +([\d,]+) +([\d,]+) +([\d,]+)  (.*)$", out, re.MULTILINE)
    assert [s[0] for s in sides] == ["baseline", "current"]
    for _, us, _, scored, rejected, *_ in [*rounds, *sides]:
        assert float(us) > 0
        assert (scored, rejected) == (f"{timed:,}", "0")
    said = {side: words for side, *_, words in sides}
    # Every payment was scored with its account's stored state, and on the current side its merchant's.
    assert said["baseline"] == f"account_history=read {timed:,}"
    assert said["current"] == f"account_history=read {timed:,}, merchant_history=read {timed:,}"

    verdict = re.search(r"^ratio current / baseline.*: (\d+\.\d\d)x; target <= 2\.0x: (met|missed by \d+%)$", out, re.M)
    assert verdict is not None
    assert (verdict[2] == "met") == (float(verdict[1]) <= bench_since.TARGET_RATIO)
    assert re.search(r"^ratio round by round: \d+\.\d\dx$", out, re.MULTILINE)
    # The split: merchant risk exists on the current side only; every step has a figure.
    assert re.search(r"^ +merchant risk +- +\d+\.\d\d +[+-]\d+\.\d\d$", out, re.MULTILINE)
    for step in ("engine: convert", "engine: function", "account state", "predict", "whole invocation"):
        assert re.search(rf"^ +{step} +\d+\.\d\d +\d+\.\d\d +[+-]\d+\.\d\d$", out, re.MULTILINE), step
    assert _worktrees() == before


@pytest.mark.unit
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rounds", "0"], "argument --rounds: must be a whole number from 1 to 50, got '0'"),
        (["--accounts", "many"], "argument --accounts: must be a whole number from 1 to 100,000, got 'many'"),
        (
            ["--records-per-event", "5000", "--events-per-delivery", "11"],
            "--records-per-event x --events-per-delivery is 55,000 transactions per invocation; the scorer takes at "
            "most 50,000 (MAX_TRANSACTIONS_PER_INVOCATION)",
        ),
        (
            ["--baseline", "no-such-commit"],
            "--baseline 'no-such-commit' is not a commit in this repository (a shallow clone? `git fetch "
            "--unshallow` gets it)",
        ),
    ],
)
def test_bad_option(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    """One line naming the option and what it must be, exit status 2, before anything runs."""
    with pytest.raises(SystemExit) as exited:
        bench_since.main(argv)
    out, err = capsys.readouterr()
    assert exited.value.code == 2
    assert out == ""
    assert err == f"{PROG}: error: {message} (see --help)\n"


@pytest.mark.unit
def test_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    """--help shows each option's default, the baseline commit among them."""
    with pytest.raises(SystemExit):
        bench_since.main(["--help"])
    out = capsys.readouterr().out
    for default in ("(default: 4d5b66e)", "(default: 2000)", "(default: 100)", "(default: 3)"):
        assert default in out
