"""Tests for model/benchmark/run.py: the command line behind `make benchmark-model`."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.benchmark import run

pytestmark = pytest.mark.unit

ARGS = ["--customers", "400", "--terminals", "800", "--days", "40", "--train-start", "2018-04-19", "--jobs", "1"]


def test_main_writes_the_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--baselines-only` leaves our recipe out; the tables are printed and written to `--out`; `--seeds` passed on."""
    out = tmp_path / "bench.md"
    assert run.main([*ARGS, "--seed", "1", "--seeds", "1", "--baselines-only", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert ": seed 1, 400 customers," in text
    assert "## Across 1 simulation\n" in text
    assert "Measured here: Random forest" in text
    assert "- Ours: not run (`--baselines-only`)." in text
    assert text in capsys.readouterr().out


@pytest.mark.parametrize("seeds", ["0", "-2"])
def test_fewer_than_one_seed_is_a_usage_error(seeds: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`--seeds` below 1 exits with status 2 and one line that says why, before anything is simulated."""
    with pytest.raises(SystemExit) as exit_info:
        run.main([*ARGS, "--seeds", seeds])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"python -m model.benchmark.run: error: seeds must be at least 1, got {seeds}"
    )


def test_seeds_default_to_five(capsys: pytest.CaptureFixture[str]) -> None:
    """`--help` gives five simulations as the default of `make benchmark-model`."""
    with pytest.raises(SystemExit):
        run.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--seeds N simulations, seeds --seed to --seed + N - 1, summarised by their mean (default 5)" in help_text


def test_periods_outside_the_simulation_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A training start too late for train, delay and test days exits with status 2 and says why."""
    with pytest.raises(SystemExit) as exit_info:
        run.main([*ARGS, "--train-start", "2018-05-01"])
    assert exit_info.value.code == 2
    assert "does not fit in 40 days" in capsys.readouterr().err
