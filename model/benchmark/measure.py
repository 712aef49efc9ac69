"""The benchmark run: simulate the handbook's data, split it as its baseline chapter does, fit and measure each model.

The split: train on 2018-07-25 to 07-31, seven days of delay, test on 2018-08-08 to 08-14, cards
already known to be compromised left out of the test days (`protocol.drop_known_compromised`). The
models: the handbook's three baselines on its own features (`handbook_features.py`) and, when given,
the project's recipe (`model.training.recipe.fit_predict`: features from the whole history, labels
only once known a delay before), all scored on the same test rows by `model.training.protocol`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Final

import numpy as np

from model.benchmark import handbook_features, simulator
from model.training import protocol, recipe
from model.training.evaluate import FloatArray, IntArray

logger = logging.getLogger(__name__)

FitPredict = Callable[[Mapping[str, np.ndarray], IntArray, IntArray, int], np.ndarray]
"""(columns, train rows, test rows, seed) -> fraud probability of each test row: `recipe.fit_predict`'s form."""

TRAIN_START: Final = date(2018, 7, 25)
THRESHOLD: Final = 0.5
"""The benchmark has no validation period to choose a cut on, so "flagged" means a probability of at least 0.5."""
GROUND_TRUTH: Final = ("typology", "episode")
"""Simulation-only columns our recipe is not given: the labels it may use are `is_fraud` and `known_ms`."""


@dataclass(frozen=True)
class Settings:
    """What to simulate and how to split it; the defaults are the handbook's."""

    seed: int = 0
    customers: int = simulator.CUSTOMERS
    terminals: int = simulator.TERMINALS
    days: int = simulator.DAYS
    train_start: date = TRAIN_START
    train_days: int = 7
    delay_days: int = 7
    test_days: int = 7
    jobs: int = 2
    seeds: int = 5
    """Simulations `seeds.run` measures, seeds `seed` to `seed + seeds - 1`; `run` measures `seed` alone."""

    def check(self) -> None:
        """Raise `ValueError` unless there is a simulation to run and the three periods fit inside its days."""
        if self.seeds < 1:
            raise ValueError(f"seeds must be at least 1, got {self.seeds}")
        first = (self.train_start - simulator.START.date()).days
        last = first + self.train_days + self.delay_days + self.test_days
        if first < 0 or last > self.days:
            raise ValueError(
                f"train start {self.train_start} plus {last - first} days does not fit in {self.days} days "
                f"simulated from {simulator.START.date()}"
            )


@dataclass(frozen=True)
class ModelResult:
    """One model's figures on the test rows."""

    key: str
    name: str
    metrics: protocol.Metrics
    at_prevalence: protocol.Metrics | None
    typologies: list[protocol.TypologyOutcome]
    episodes: dict[int, protocol.Episodes]
    """Per typology code: episodes whose first payment is a test row."""
    seconds: float


@dataclass(frozen=True)
class Result:
    """The simulation, the split, and every model's figures."""

    settings: Settings
    payments: int
    frauds: int
    by_typology: list[int]
    terminals_per_customer: float
    train: tuple[int, int]
    test: tuple[int, int]
    test_before_drop: int
    models: list[ModelResult] = field(default_factory=list)
    elapsed: float = 0.0


def _ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _first_in(columns: Mapping[str, np.ndarray], rows: IntArray) -> dict[int, IntArray]:
    """Per typology, the episodes whose first payment in event time is one of `rows`."""
    episode, t_ms, kind = columns["episode"], columns["t_ms"], columns["typology"]
    fraud = np.flatnonzero(episode >= 0)
    ordered = fraud[np.lexsort((fraud, t_ms[fraud], episode[fraud]))]
    _, first = np.unique(episode[ordered], return_index=True)
    starts = ordered[first][np.isin(ordered[first], rows)]
    return {int(t): episode[starts[kind[starts] == t]] for t in np.unique(kind[fraud])}


def _measure(
    key: str,
    name: str,
    scores: np.ndarray,
    columns: Mapping[str, np.ndarray],
    test: IntArray,
    days: IntArray,
    *,
    starts: dict[int, IntArray],
    seed: int,
    seconds: float,
) -> ModelResult:
    """The protocol's figures for one model's test scores."""
    label, account = columns["is_fraud"][test], columns["account"][test]
    try:
        prevalence: protocol.Metrics | None = protocol.at_prevalence(scores, label, account, days, seed=seed)
    except ValueError as exc:
        logger.warning("%s: no figures at %.1f%% prevalence (%s)", name, 100 * protocol.TARGET_PREVALENCE, exc)
        prevalence = None
    episode, t_ms = columns["episode"][test], columns["t_ms"][test]
    return ModelResult(
        key=key,
        name=name,
        metrics=protocol.metrics(scores, label, account, days),
        at_prevalence=prevalence,
        typologies=protocol.by_typology(scores, label, columns["typology"][test], THRESHOLD),
        episodes={
            kind: protocol.by_episode(scores, label, episode, t_ms, THRESHOLD, include=ids)
            for kind, ids in starts.items()
            if ids.size
        },
        seconds=seconds,
    )


def _checked(scores: np.ndarray, size: int) -> FloatArray:
    out = np.asarray(scores, dtype=np.float64)
    if out.shape != (size,) or not np.all(np.isfinite(out)) or out.min(initial=0.0) < 0 or out.max(initial=0.0) > 1:
        raise ValueError(f"fit_predict must return {size} probabilities in [0, 1], got shape {out.shape}")
    return out


def run(settings: Settings, fit_predict: FitPredict | None = recipe.fit_predict) -> Result:
    """Simulate, split, fit and measure the handbook's baselines and (unless `fit_predict` is None) our recipe."""
    settings.check()
    began = time.perf_counter()
    sim = simulator.simulate(
        seed=settings.seed, customers=settings.customers, terminals=settings.terminals, days=settings.days
    )
    cols = sim.columns
    logger.info(
        "simulated %d payments, %d frauds, in %.1f s", sim.size, cols["is_fraud"].sum(), time.perf_counter() - began
    )
    split = protocol.period_split(
        cols["t_ms"],
        train_days=settings.train_days,
        delay_days=settings.delay_days,
        test_days=settings.test_days,
        start_ms=_ms(settings.train_start),
    )
    test = protocol.drop_known_compromised(
        split, t_ms=cols["t_ms"], accounts=cols["account"], labels=cols["is_fraud"], known_ms=cols["known_ms"]
    )
    label = cols["is_fraud"]
    days = split.day(cols["t_ms"][test])
    starts = _first_in(cols, test)
    result = Result(
        settings=settings,
        payments=sim.size,
        frauds=int(label.sum()),
        by_typology=np.bincount(cols["typology"][label == 1], minlength=3).tolist(),
        terminals_per_customer=float(sim.profiles.terminal_counts.mean()),
        train=(int(split.train.size), int(label[split.train].sum())),
        test=(int(test.size), int(label[test].sum())),
        test_before_drop=int(split.test.size),
    )
    features = handbook_features.transform(cols)
    for baseline in handbook_features.BASELINES:
        t0 = time.perf_counter()
        scores = handbook_features.fit_predict(
            baseline, features, label, split.train, test, settings.seed, settings.jobs
        )
        seconds = time.perf_counter() - t0
        logger.info("fitted the handbook's %s in %.1f s", baseline.name, seconds)
        result.models.append(
            _measure(
                baseline.key,
                baseline.name,
                scores,
                cols,
                test,
                days,
                starts=starts,
                seed=settings.seed,
                seconds=seconds,
            )
        )
    if fit_predict is not None:
        given = {name: values for name, values in cols.items() if name not in GROUND_TRUTH}
        t0 = time.perf_counter()
        scores = _checked(fit_predict(given, split.train, test, settings.seed), test.size)
        seconds = time.perf_counter() - t0
        logger.info("fitted our recipe in %.1f s", seconds)
        result.models.append(
            _measure("ours", "Ours", scores, cols, test, days, starts=starts, seed=settings.seed, seconds=seconds)
        )
    return replace(result, elapsed=time.perf_counter() - began)
