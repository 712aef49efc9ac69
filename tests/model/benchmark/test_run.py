"""Tests for model/benchmark/run.py: the runner measures the baselines and a given recipe on the same test rows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from model.benchmark import run
from model.training import protocol

pytestmark = pytest.mark.unit

SMALL = run.Settings(customers=400, terminals=800, days=40, train_start=date(2018, 4, 19), jobs=1)
ARGS = ["--customers", "400", "--terminals", "800", "--days", "40", "--train-start", "2018-04-19", "--jobs", "1"]


class StandIn:
    """A recipe stand-in: scores by amount, and remembers what it was given."""

    def __init__(self) -> None:
        self.given: dict[str, np.ndarray] = {}
        self.train = np.zeros(0, dtype=np.int64)
        self.test = np.zeros(0, dtype=np.int64)
        self.scores = np.zeros(0)

    def __call__(self, columns: Mapping[str, np.ndarray], train: np.ndarray, test: np.ndarray, seed: int) -> np.ndarray:
        self.given, self.train, self.test = dict(columns), train, test
        self.scores = np.minimum(1.0, np.asarray(columns["amount"])[test] / 1_000.0)
        return self.scores


@pytest.fixture(scope="module")
def measured() -> tuple[run.Result, StandIn]:
    stand_in = StandIn()
    return run.run(SMALL, stand_in), stand_in


def test_the_recipe_gets_the_split_and_no_ground_truth(measured: tuple[run.Result, StandIn]) -> None:
    """Our recipe sees labels and when they were known, not the scenario or episode; train rows precede the test."""
    _, stand_in = measured
    assert {"is_fraud", "known_ms", "account_id", "merchant_id", "t_ms"} <= stand_in.given.keys()
    assert not {"typology", "episode"} & stand_in.given.keys()
    t_ms = stand_in.given["t_ms"]
    assert t_ms[stand_in.train].max() + 7 * protocol.DAY_MS < t_ms[stand_in.test].min()


def test_every_model_is_measured_on_the_same_rows(measured: tuple[run.Result, StandIn]) -> None:
    """Three baselines and ours, each with the protocol's figures; ours equal the protocol applied to its scores."""
    result, stand_in = measured
    assert [m.key for m in result.models] == ["logistic_regression", "random_forest", "xgboost", "ours"]
    assert {m.metrics.n for m in result.models} == {result.test[0]}
    cols = stand_in.given
    start = run._ms(SMALL.train_start)
    days = (cols["t_ms"][stand_in.test] - start) // protocol.DAY_MS
    expected = protocol.metrics(stand_in.scores, cols["is_fraud"][stand_in.test], cols["account"][stand_in.test], days)
    assert result.models[-1].metrics == expected
    assert result.train[0] == stand_in.train.size
    assert result.test[0] <= result.test_before_drop


def test_markdown_sets_ours_beside_the_published_baselines(measured: tuple[run.Result, StandIn]) -> None:
    """The tables hold the handbook's published figures, the measured baselines, ours, and the simulation's figures."""
    text = run.markdown(measured[0])
    assert "| Published (handbook's data): Random forest | 0.867 | 0.658 | 0.287 |" in text
    assert "Measured here: XGBoost" in text
    assert "**Ours** (project recipe)" in text
    assert "| Payments | 1,754,155 |" in text
    assert "## At 0.5% fraud prevalence" in text


def test_main_writes_the_tables(tmp_path: Path) -> None:
    """`--baselines-only` leaves our recipe out and writes the Markdown to `--out`."""
    out = tmp_path / "bench.md"
    assert run.main([*ARGS, "--baselines-only", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "Measured here: Random forest" in text
    assert "**Ours**" not in text
    assert "- Ours: not run (`--baselines-only`)." in text


def test_periods_outside_the_simulation_are_refused() -> None:
    """A training start too late for train, delay and test days is a usage error, before anything runs."""
    with pytest.raises(SystemExit) as exit_info:
        run.main([*ARGS, "--train-start", "2018-05-01"])
    assert exit_info.value.code == 2


def test_a_recipe_must_return_probabilities() -> None:
    """Scores of the wrong length or outside [0, 1] are refused."""
    with pytest.raises(ValueError, match="probabilities"):
        run._checked(np.array([0.2, 1.5]), 2)
    with pytest.raises(ValueError, match="probabilities"):
        run._checked(np.array([0.2]), 2)
