"""`make benchmark-model`: our recipe and the handbook's baselines on the handbook's simulation and protocol, as tables.

Simulates the handbook's run (`simulator.py`), splits it as its baseline chapter does (train on
2018-07-25 to 07-31, seven days of delay, test on 2018-08-08 to 08-14, cards already known to be
compromised left out of the test days), fits its three baselines on its own features
(`handbook_features.py`) and the project's recipe (`model.training.recipe.fit_predict`, features
from the whole history, labels only once known a delay before), and measures all of them with
`model.training.protocol`. Prints the tables and writes them as Markdown (`--out`, default
`model/BENCHMARK.md`) for the model card. The published baselines are the handbook's figures on its
own simulated data: if the baselines measured here land near them, the simulation is faithful.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final

import numpy as np
import sklearn
import xgboost

from model.benchmark import handbook_features, simulator
from model.training import protocol, recipe
from model.training.evaluate import FloatArray, IntArray

logger = logging.getLogger(__name__)

FitPredict = Callable[[Mapping[str, np.ndarray], IntArray, IntArray, int], np.ndarray]
"""(columns, train rows, test rows, seed) -> fraud probability of each test row: `recipe.fit_predict`'s form."""

BASELINES_SOURCE: Final = (
    "https://fraud-detection-handbook.github.io/fraud-detection-handbook/Chapter_3_GettingStarted/BaselineModeling.html"
)
TRAIN_START: Final = date(2018, 7, 25)
OUT: Final = Path("model/BENCHMARK.md")
THRESHOLD: Final = 0.5
"""The benchmark has no validation period to choose a cut on, so "flagged" means a probability of at least 0.5."""
GROUND_TRUTH: Final = ("typology", "episode")
"""Simulation-only columns our recipe is not given: the labels it may use are `is_fraud` and `known_ms`."""


@dataclass(frozen=True)
class Published:
    """A baseline's figures on the handbook's own simulated data (section 3.4.4, test set)."""

    key: str
    name: str
    roc_auc: float
    average_precision: float
    card_precision_at_100: float


PUBLISHED: Final = (
    Published("logistic_regression", "Logistic regression", 0.871, 0.606, 0.291),
    Published("random_forest", "Random forest", 0.867, 0.658, 0.287),
    Published("xgboost", "XGBoost", 0.862, 0.639, 0.273),
)
PUBLISHED_TRAIN: Final = (67_240, 598)
PUBLISHED_TEST: Final = (58_264, 385)
"""Rows and frauds of the handbook's training and test sets (same section)."""


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

    def check(self) -> None:
        """Raise `ValueError` unless the three periods fit inside the simulated days."""
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


def _f(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows), ""]


def _scale(result: Result) -> str:
    s = result.settings
    end = date.fromordinal(s.train_start.toordinal() + s.train_days - 1)
    test_start = date.fromordinal(s.train_start.toordinal() + s.train_days + s.delay_days)
    test_end = date.fromordinal(test_start.toordinal() + s.test_days - 1)
    return (
        f"seed {s.seed}, {s.customers:,} customers, {s.terminals:,} terminals, {s.days} days from "
        f"{simulator.START.date()}; trained on {s.train_start} to {end}, {s.delay_days} days of delay, "
        f"tested on {test_start} to {test_end}"
    )


def markdown(result: Result) -> str:
    """The benchmark's tables and how they were measured, as Markdown."""
    k = protocol.TOP_K
    lines = [
        "# Benchmark: the ULB handbook's simulation and protocol",
        "",
        f"Generated by `make benchmark-model` (`python -m model.benchmark.run`): {_scale(result)}. "
        f"scikit-learn {sklearn.__version__}, xgboost {xgboost.__version__}, NumPy {np.__version__}; "
        f"{result.elapsed:.0f} s in all.",
        "",
        "## The models on the test week",
        "",
    ]
    rows: list[list[object]] = [
        [f"Published (handbook's data): {p.name}", p.roc_auc, p.average_precision, p.card_precision_at_100, "", ""]
        for p in PUBLISHED
    ]
    for m in result.models:
        name = "**Ours** (project recipe)" if m.key == "ours" else f"Measured here: {m.name}"
        x = m.metrics
        rows.append(
            [
                name,
                _f(x.roc_auc),
                _f(x.average_precision),
                _f(x.card_precision_at_k),
                _f(x.recall_at_1pct_fpr),
                _f(x.brier, 4),
            ]
        )
    lines += _table(["Model", "ROC-AUC", "Average precision", f"Card Precision@{k}", "Recall at 1% FPR", "Brier"], rows)
    lines += [
        f"## At {100 * protocol.TARGET_PREVALENCE:.1f}% fraud prevalence",
        "",
        f"Every legitimate test row and a random share of the frauds, so that frauds are "
        f"{100 * protocol.TARGET_PREVALENCE:.1f}% of rows; mean of {protocol.PREVALENCE_DRAWS} seeded draws.",
        "",
    ]
    rows = [
        [
            m.name,
            _f(p.roc_auc),
            _f(p.average_precision),
            _f(p.card_precision_at_k),
            _f(p.recall_at_1pct_fpr),
            _f(p.recall_at_0_1pct_fpr),
            _f(p.brier, 4),
        ]
        for m in result.models
        if (p := m.at_prevalence) is not None
    ]
    lines += _table(
        ["Model", "ROC-AUC", "Average precision", f"CP@{k}", "Recall at 1% FPR", "Recall at 0.1% FPR", "Brier"], rows
    )
    lines += [
        "## Which frauds are caught",
        "",
        f"Recall per scenario at p >= {THRESHOLD} and at the 1% FPR cut; a scenario's average precision ranks its "
        "frauds against every legitimate row.",
        "",
    ]
    rows = [
        [
            m.name,
            simulator.TYPOLOGY_NAMES[t.typology],
            t.frauds,
            _f(t.recall_at_threshold),
            _f(t.recall_at_1pct_fpr),
            _f(t.average_precision),
        ]
        for m in result.models
        for t in m.typologies
    ]
    lines += _table(["Model", "Scenario", "Frauds", f"Recall at p >= {THRESHOLD}", "Recall at 1% FPR", "AP"], rows)
    lines += [
        "## Is an attack's first payment caught",
        "",
        "Episodes (a compromised terminal, a compromised customer, or one large payment) whose first payment is a "
        "test row. The rank is the position of the first flagged payment in the episode (1 = its first payment).",
        "",
    ]
    rows = [
        [
            m.name,
            simulator.TYPOLOGY_NAMES[kind],
            e.episodes,
            _f(e.at_threshold.first_flagged),
            _f(e.at_1pct_fpr.first_flagged),
            _f(e.at_1pct_fpr.caught),
            _f(e.at_1pct_fpr.median_first_caught_rank, 1),
        ]
        for m in result.models
        for kind, e in sorted(m.episodes.items())
    ]
    lines += _table(
        [
            "Model",
            "Scenario",
            "Episodes",
            f"First flagged at p >= {THRESHOLD}",
            "First flagged at 1% FPR",
            "Caught at 1% FPR",
            "Median rank of first catch at 1% FPR",
        ],
        rows,
    )
    share = result.frauds / result.payments
    published_share = simulator.PUBLISHED_FRAUDS / simulator.PUBLISHED_PAYMENTS
    lines += ["## This simulation against the handbook's run", ""]
    lines += _table(
        ["", "Handbook (published)", "This simulation"],
        [
            ["Payments", f"{simulator.PUBLISHED_PAYMENTS:,}", f"{result.payments:,}"],
            ["Frauds", f"{simulator.PUBLISHED_FRAUDS:,} ({published_share:.3%})", f"{result.frauds:,} ({share:.3%})"],
            [
                "Frauds by scenario 1 / 2 / 3",
                " / ".join(f"{v:,}" for v in simulator.PUBLISHED_BY_TYPOLOGY),
                " / ".join(f"{v:,}" for v in result.by_typology),
            ],
            ["Terminals per customer", "around 100", f"{result.terminals_per_customer:.1f}"],
            [
                "Training set: payments / frauds",
                "{:,} / {:,}".format(*PUBLISHED_TRAIN),
                "{:,} / {:,}".format(*result.train),
            ],
            [
                "Test set, known compromised cards left out: payments / frauds",
                "{:,} / {:,}".format(*PUBLISHED_TEST),
                "{:,} / {:,} (of {:,} payments)".format(*result.test, result.test_before_drop),
            ],
        ],
    )
    ours_note = (
        "- Ours: `model.training.recipe.fit_predict` on the simulated rows in the contract's form (customer as "
        "`account_id`, terminal as `merchant_id`, the seed's other fields constant), given `is_fraud` and "
        "`known_ms` but not the scenario or episode; merchant labels are read only once known "
        f"{result.settings.delay_days} days before, as the handbook's terminal features are."
        if any(m.key == "ours" for m in result.models)
        else "- Ours: not run (`--baselines-only`)."
    )
    lines += [
        "## How these are measured",
        "",
        "- Simulator, features and protocol follow the published descriptions of Le Borgne, Siblini, Lebichot, "
        "Bontempi, *Reproducible Machine Learning for Credit Card Fraud Detection - Practical Handbook* (ULB, 2022), "
        "chapters 3.2-3.4 and 4.3; the published baselines are its section 3.4.4 table "
        f"({BASELINES_SOURCE}). They were measured on its own simulated data, so rows 1-3 and 4-6 compare "
        "two simulations of one design; the simulator is not seeded as the handbook's was.",
        "- Test set: as the handbook's, the payments of cards with a fraud (from the training start) known before "
        f"the test day minus the delay are left out. Card Precision@{k}: each test day, the {k} cards with the "
        "highest score that day, the share of them with a fraud that day, averaged over days; a card found "
        "compromised is left out on later days, as the handbook defines it.",
        "- Baselines: the handbook's 15 features, standardised on the training rows, and its classifiers at their "
        "library defaults with random_state fixed (LogisticRegression, RandomForestClassifier, XGBClassifier); "
        "library versions differ from the handbook's.",
        ours_note,
        "- There is no validation period in this protocol, so no cost-chosen threshold: "
        f'"flagged" is p >= {THRESHOLD}, next to the 1% FPR cut on the test scores.',
        "",
    ]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    d = Settings()
    p = argparse.ArgumentParser(prog="python -m model.benchmark.run", description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--customers", type=int, default=d.customers)
    p.add_argument("--terminals", type=int, default=d.terminals)
    p.add_argument("--days", type=int, default=d.days, help="days simulated from 2018-04-01")
    p.add_argument("--train-start", type=date.fromisoformat, default=d.train_start, help="YYYY-MM-DD")
    p.add_argument("--train-days", type=int, default=d.train_days)
    p.add_argument("--delay-days", type=int, default=d.delay_days)
    p.add_argument("--test-days", type=int, default=d.test_days)
    p.add_argument("--jobs", type=int, default=d.jobs, help="threads for the random forest and XGBoost")
    p.add_argument("--out", type=Path, default=OUT, help="Markdown file for the model card (default %(default)s)")
    p.add_argument("--baselines-only", action="store_true", help="leave our recipe out")
    return p


def main(argv: Sequence[str] | None = None, fit_predict: FitPredict | None = None) -> int:
    """Parse options, run the benchmark, print the tables and write them to `--out`."""
    parser = _parser()
    args = parser.parse_args(argv)
    settings = Settings(
        seed=args.seed,
        customers=args.customers,
        terminals=args.terminals,
        days=args.days,
        train_start=args.train_start,
        train_days=args.train_days,
        delay_days=args.delay_days,
        test_days=args.test_days,
        jobs=args.jobs,
    )
    try:
        settings.check()
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    def ours(columns: Mapping[str, np.ndarray], train: IntArray, test: IntArray, seed: int) -> np.ndarray:
        return recipe.fit_predict(columns, train, test, seed, delay_days=settings.delay_days)

    chosen = None if args.baselines_only else (fit_predict or ours)
    text = markdown(run(settings, chosen))
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
