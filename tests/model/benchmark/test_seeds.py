"""Tests for model/benchmark/seeds.py: per-seed figures, their mean and spread, ours paired with each baseline."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from model.benchmark import measure, seeds
from tests.model.benchmark.conftest import SMALL, StandIn

pytestmark = pytest.mark.unit

HAND = (
    seeds.Draw(0, {"random_forest": (0.80, 0.60, 0.30), "ours": (0.82, 0.60, 0.28)}, 1.0),
    seeds.Draw(1, {"random_forest": (0.90, 0.70, 0.20), "ours": (0.88, 0.75, 0.20)}, 1.0),
    seeds.Draw(2, {"random_forest": (0.85, 0.65, 0.25), "ours": (0.89, 0.64, 0.24)}, 1.0),
)
"""Three simulations' figures, chosen so that the mean and deviation are easy by hand."""


def test_summary_means_deviations_and_paired_counts_by_hand() -> None:
    """Means and sample deviations per figure; ours minus the baseline per seed, averaged, and the seeds ours >= it."""
    summary = seeds.summarise(HAND)
    assert summary.seeds == (0, 1, 2)
    auc, ap, cp = summary.spreads["random_forest"]
    # 0.80, 0.90, 0.85: mean 0.85, squared deviations 0.0025 + 0.0025 + 0 over n - 1 = 2, so sd 0.05.
    assert (auc.mean, auc.sd) == pytest.approx((0.85, 0.05))
    assert (ap.mean, ap.sd) == pytest.approx((0.65, 0.05))
    assert (cp.mean, cp.sd) == pytest.approx((0.25, 0.05))
    # Ours: 0.82, 0.88, 0.89 -> mean 0.8633; deviations -0.0433, 0.0167, 0.0267 -> sd sqrt(0.002867 / 2).
    assert summary.spreads["ours"][0].mean == pytest.approx(0.86333, abs=1e-5)
    assert summary.spreads["ours"][0].sd == pytest.approx(math.sqrt(0.0028667 / 2), abs=1e-5)
    (paired,) = summary.paired
    assert paired.baseline == "random_forest"
    # Differences: AUC +0.02, -0.02, +0.04; AP 0, +0.05, -0.01 (a tie counts); CP -0.02, 0, -0.01.
    assert paired.mean == pytest.approx((0.04 / 3, 0.04 / 3, -0.01))
    assert paired.at_least == (2, 2, 1)


def test_one_seed_has_no_deviation_and_no_ours_no_pairs() -> None:
    """One simulation gives its figures as the mean and NaN deviations; without ours nothing is paired."""
    summary = seeds.summarise([replace(HAND[0], figures={"random_forest": (0.80, 0.60, 0.30)})])
    (auc, _, cp) = summary.spreads["random_forest"]
    assert (auc.mean, cp.mean) == (0.80, 0.30)
    assert math.isnan(auc.sd)
    assert summary.paired == ()


def test_simulations_must_measure_the_same_models() -> None:
    """A seed without ours (or nothing at all) cannot be summarised with the others."""
    with pytest.raises(ValueError, match="same models"):
        seeds.summarise([HAND[0], replace(HAND[1], figures={"random_forest": (0.9, 0.7, 0.2)})])
    with pytest.raises(ValueError, match="no simulation"):
        seeds.summarise([])


def test_two_seeds_each_simulated_and_measured(runs: tuple[seeds.Runs, StandIn]) -> None:
    """Seeds 0 and 1 are two simulations, ours fitted on each; the first keeps its full result, both their figures."""
    result, stand_in = runs
    assert [d.seed for d in result.draws] == [0, 1]
    assert [c.seed for c in stand_in.calls] == [0, 1]
    assert result.first.settings.seed == 0
    assert not np.array_equal(stand_in.calls[0].given["amount"], stand_in.calls[1].given["amount"])
    assert result.draws[0].figures == {m.key: seeds._figures(m.metrics) for m in result.first.models}
    assert list(result.draws[1].figures) == ["logistic_regression", "random_forest", "xgboost", "ours"]
    assert result.draws[1].figures["ours"] != result.draws[0].figures["ours"]
    assert [p.baseline for p in result.summary().paired] == ["logistic_regression", "random_forest", "xgboost"]


def test_seeds_run_from_the_first_seed_on(monkeypatch: pytest.MonkeyPatch, runs: tuple[seeds.Runs, StandIn]) -> None:
    """`--seed 3 --seeds 3` measures seeds 3, 4 and 5, one `measure.run` each, and keeps seed 3's in full."""
    asked: list[int] = []

    def fake(settings: measure.Settings, fit_predict: measure.FitPredict | None = None) -> measure.Result:
        asked.append(settings.seed)
        return replace(runs[0].first, settings=settings)

    monkeypatch.setattr(measure, "run", fake)
    result = seeds.run(replace(SMALL, seed=3, seeds=3), None)
    assert asked == [3, 4, 5]
    assert [d.seed for d in result.draws] == [3, 4, 5]
    assert result.first.settings.seed == 3
