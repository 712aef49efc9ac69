"""The benchmark over several simulation seeds: each seed's headline figures, their mean and spread, ours paired.

One simulated test week is one draw: between seeds its ROC-AUC moves by about 0.02 and its average
precision by about 0.05, more than the gaps to the handbook's published figures. So every seed
contributes ROC-AUC, average precision and Card Precision@100 per model, and the comparison rests on
their mean; the first seed also keeps its full `measure.Result` for the detail tables.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

import numpy as np

from model.benchmark import measure
from model.training import protocol, recipe

logger = logging.getLogger(__name__)

FIGURES: Final = ("roc_auc", "average_precision", "card_precision_at_k")
"""The figures the handbook publishes per baseline, in `Figures` order."""
OURS: Final = "ours"

Figures = tuple[float, float, float]
"""ROC-AUC, average precision, Card Precision@100 of one model (or a mean, or a difference)."""


@dataclass(frozen=True)
class Draw:
    """One simulation's figures per model key (baselines first, as measured)."""

    seed: int
    figures: dict[str, Figures]
    seconds: float


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation (n - 1) of one figure over seeds; the deviation is NaN for one seed."""

    mean: float
    sd: float


@dataclass(frozen=True)
class Paired:
    """Ours minus one baseline, seed by seed on the same simulations: their mean, and how often ours was not below."""

    baseline: str
    mean: Figures
    at_least: tuple[int, int, int]
    """Per figure, the seeds where ours was at least the baseline."""


@dataclass(frozen=True)
class Summary:
    """Every model's spread over seeds and ours paired with each baseline (none when ours was not run)."""

    seeds: tuple[int, ...]
    spreads: dict[str, tuple[Spread, Spread, Spread]]
    paired: tuple[Paired, ...]


@dataclass(frozen=True)
class Runs:
    """The first seed's full result, every seed's figures, and the time of them all."""

    first: measure.Result
    draws: tuple[Draw, ...]
    elapsed: float

    def summary(self) -> Summary:
        return summarise(self.draws)


def draw(result: measure.Result, seconds: float) -> Draw:
    """The headline figures of one simulation's models."""
    return Draw(
        seed=result.settings.seed,
        figures={m.key: _figures(m.metrics) for m in result.models},
        seconds=seconds,
    )


def _figures(metrics: protocol.Metrics) -> Figures:
    return float(metrics.roc_auc), float(metrics.average_precision), float(metrics.card_precision_at_k)


def _spread(values: Sequence[float]) -> Spread:
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    return Spread(mean=float(np.mean(values)), sd=sd)


def summarise(draws: Sequence[Draw]) -> Summary:
    """Per model, each figure's mean and deviation over `draws`; ours minus each baseline on the same draws."""
    if not draws:
        raise ValueError("no simulation to summarise")
    keys = list(draws[0].figures)
    if any(list(d.figures) != keys for d in draws):
        raise ValueError("every simulation must measure the same models")
    spreads = {
        key: (
            _spread([d.figures[key][0] for d in draws]),
            _spread([d.figures[key][1] for d in draws]),
            _spread([d.figures[key][2] for d in draws]),
        )
        for key in keys
    }
    paired = tuple(_paired(draws, key) for key in keys if key != OURS) if OURS in keys else ()
    return Summary(seeds=tuple(d.seed for d in draws), spreads=spreads, paired=paired)


def _paired(draws: Sequence[Draw], baseline: str) -> Paired:
    ours = np.array([d.figures[OURS] for d in draws])
    base = np.array([d.figures[baseline] for d in draws])
    mean = (ours - base).mean(axis=0)
    at_least = (ours >= base).sum(axis=0)
    return Paired(
        baseline=baseline,
        mean=(float(mean[0]), float(mean[1]), float(mean[2])),
        at_least=(int(at_least[0]), int(at_least[1]), int(at_least[2])),
    )


def run(settings: measure.Settings, fit_predict: measure.FitPredict | None = recipe.fit_predict) -> Runs:
    """`measure.run` on seeds `settings.seed` to `settings.seed + settings.seeds - 1`, one simulation at a time."""
    settings.check()
    began = time.perf_counter()
    first, figures = _one(settings, 0, fit_predict)
    draws = [figures]
    for index in range(1, settings.seeds):
        # A simulation is about 1.8 M rows; `measure.run` returns none of them, and of a later seed's
        # result only its figures are kept, so one simulation is in memory at a time.
        draws.append(_one(settings, index, fit_predict)[1])
    return Runs(first=first, draws=tuple(draws), elapsed=time.perf_counter() - began)


def _one(settings: measure.Settings, index: int, fit_predict: measure.FitPredict | None) -> tuple[measure.Result, Draw]:
    """The `index`-th simulation of the run, measured, and its figures; the seconds it took go to the log."""
    seed = settings.seed + index
    t0 = time.perf_counter()
    result = measure.run(replace(settings, seed=seed), fit_predict)
    seconds = time.perf_counter() - t0
    logger.info("seed %d (%d of %d) simulated and measured in %.0f s", seed, index + 1, settings.seeds, seconds)
    return result, draw(result, seconds)
