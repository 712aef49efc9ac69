"""Tests for model/benchmark/run.py: the command line behind `make benchmark-model`."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.benchmark import run

pytestmark = pytest.mark.unit

ARGS = ["--customers", "400", "--terminals", "800", "--days", "40", "--train-start", "2018-04-19", "--jobs", "1"]


def test_main_writes_the_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--baselines-only` leaves our recipe out, prints the tables and writes them to `--out`."""
    out = tmp_path / "bench.md"
    assert run.main([*ARGS, "--baselines-only", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "Measured here: Random forest" in text
    assert "- Ours: not run (`--baselines-only`)." in text
    assert text in capsys.readouterr().out


def test_periods_outside_the_simulation_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A training start too late for train, delay and test days exits with status 2 and says why."""
    with pytest.raises(SystemExit) as exit_info:
        run.main([*ARGS, "--train-start", "2018-05-01"])
    assert exit_info.value.code == 2
    assert "does not fit in 40 days" in capsys.readouterr().err
