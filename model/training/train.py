"""Train the fraud model, compare it with the baselines, and write the verified runtime artifact and its report.

`train()` is pure: given labelled columns (generated, or read from the labelled Cosmos DB history
container), it replays each account's history into behavioural features and splits the rows in
event time (`frames.py`: train on the earliest 60%, choose the threshold on the next 20%, test on
the latest 20%), fits the scikit-learn reference pipeline (`pipeline.py`: the seed's feature recipe
plus the behavioural features, and XGBoost), picks the decision threshold by cost and evaluates
(`evaluate.py`), checks that the NumPy-only runtime encoding and booster reproduce the pipeline
(`runtime.py`), fits the baselines on the very same split (`baselines.py`), and measures our model
with history withheld and, when asked, fitted on more history (`references.py`). `main()` only
parses arguments, loads the data, shows progress and writes the files (`artifact.py`: artifact,
reference pipeline, metadata; then `report.py`: the model card and plots), so tests can call
`train()` without touching the disk and the bundled artifact records exactly how it was made.

Run from the repository root: `python -m model.training.train [--samples N] [--seed S] [--out-dir DIR]`,
or `python -m model.training.train --history-endpoint URL [--history-key KEY]` to retrain from history.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
from sklearn.metrics import average_precision_score
from sklearn.pipeline import Pipeline
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from model.training import baselines, references, report
from model.training.artifact import write_artifacts
from model.training.baselines import BaselineResult
from model.training.data import (
    FILE_FORMATS,
    MIN_ROWS,
    TrainingData,
    TrainingDataError,
    file_data,
    generated_data,
    read_history_data,
)
from model.training.evaluate import FloatArray, IntArray, choose_threshold, evaluate
from model.training.field_protocol import evaluate_test_period
from model.training.frames import NO_HISTORY_SHARE, Splits, period_days, split_rows, with_behaviour
from model.training.pipeline import CANDIDATES, Hyperparameters, build_pipeline
from model.training.report import OURS
from model.training.runtime import (
    check_reasons_exact,
    check_runtime_matches,
    count_leaves,
    global_importance,
    runtime_booster,
)
from shared.behaviour import merchants
from shared.loopback import is_loopback_url
from shared.scoring import encoding as features
from shared.scoring.model import ARTIFACT_FORMAT
from shared.settings import DEFAULT_MODEL_DIR

logger = logging.getLogger(__name__)

DEFAULT_OUT_DIR: Final = DEFAULT_MODEL_DIR
"""Where serving loads the bundled model from (`shared.settings`): `model/`."""
DEFAULT_SAMPLES: Final = 200_000
DEFAULT_SEED: Final = 42
DEFAULT_REVIEW_COST: Final = 5.0
DEFAULT_HISTORY_DATABASE: Final = "fraud"
DEFAULT_HISTORY_CONTAINER: Final = "history"
HISTORY_KEY_VARIABLE: Final = "COSMOS_HISTORY_KEY"
"""Environment variable read for the history account key, so it need not sit in shell history."""
DEFAULT_REFERENCE_MULTIPLE: Final = 5
STAGES: Final = (
    "behaviour",
    "split",
    "fit",
    "threshold",
    "evaluate",
    "check",
    "importance",
    *(b.key for b in baselines.BASELINES),
    "protocol",
    "reference",
)
"""Names `train()` reports to its `progress` callback, in order, each when that stage is done."""


@dataclass(frozen=True)
class TrainResult:
    """Everything `main()` needs to write the artifact, the reference pipeline, the metadata and the report."""

    pipeline: Pipeline
    payload: dict[str, Any]
    spec: features.FeatureSpec
    threshold: float
    threshold_policy: dict[str, Any]
    metrics: dict[str, dict[str, Any]]
    hyperparameters: dict[str, Any]
    training_data: dict[str, Any]
    model_size: dict[str, int]
    baselines: dict[str, BaselineResult]
    importance: dict[str, float]
    """Mean |SHAP| (log-odds) per contract field on the test split, one-hot columns folded."""
    references: dict[str, dict[str, Any]]
    """Our model under other conditions on the same test rows: history withheld, and more history."""
    test_label: IntArray
    test_scores: dict[str, FloatArray]
    """Test-split probabilities per model: `OURS` first, then the baselines."""
    stage_seconds: dict[str, float]
    benchmark: dict[str, Any] = field(default_factory=dict)
    """The independent benchmark (`model/benchmark/`), when `main()` ran it: its Markdown and figures."""
    protocol: dict[str, Any] = field(default_factory=dict)
    """The field's protocol on the test period (`field_protocol.evaluate_test_period`)."""
    merchant_delay_days: int = merchants.DEFAULT_DELAY_DAYS
    """Whole days a label had been known before it counted for merchant risk; serving uses the same."""


def train(
    data: TrainingData,
    seed: int,
    *,
    review_cost: float = DEFAULT_REVIEW_COST,
    params: Hyperparameters | None = None,
    progress: Callable[[str], None] | None = None,
    on_iteration: baselines.Iteration | None = None,
    reference_multiple: int = 0,
    delay_days: int = merchants.DEFAULT_DELAY_DAYS,
) -> TrainResult:
    """Replay behaviour, split in time, fit, choose the threshold, evaluate, verify, explain, compare; no file I/O.

    `progress` is called with each name in `STAGES` as that stage finishes; `on_iteration` with
    (done, total) after each boosting iteration of the gradient-boosting baseline, the slow stage.
    `reference_multiple` > 1 also fits the same model on that many times more generated history
    (generated data only). Raises `TrainingDataError` when the data is too small or one-sided to split.
    """
    stage_seconds: dict[str, float] = {}
    clock = [time.perf_counter()]

    def done(stage: str) -> None:
        now = time.perf_counter()
        stage_seconds[stage] = round(now - clock[0], 2)
        clock[0] = now
        if progress is not None:
            progress(stage)

    data.check_splittable()
    columns = with_behaviour(data.columns, delay_days)
    label = np.asarray(columns["is_fraud"]).astype(np.int64)
    done("behaviour")

    # One generator for every random draw, in a fixed order, so a seed gives the same run.
    rng = np.random.default_rng(seed)
    splits = split_rows(columns, rng, delay_days)
    labels, amounts = splits.labels, splits.amounts
    done("split")

    search = choose_hyperparameters(splits, seed) if params is None else [(params, None)]
    params = search[0][0]
    pipeline = build_pipeline(params, seed)
    pipeline.fit(splits.frames["train"], labels["train"])
    scaler = pipeline.named_steps["features"].named_transformers_["scale"]
    # from_dict checks the length and feature order, and keeps the scaler's float64 values exactly.
    spec = features.FeatureSpec.from_dict(
        {"mean": list(scaler.mean_), "scale": list(scaler.scale_), "feature_names": features.feature_names()}
    )
    raw_booster = bytes(pipeline.named_steps["model"].get_booster().save_raw("ubj"))
    booster = runtime_booster(raw_booster)
    done("fit")

    # Score with the artifact's booster and encoding, so the threshold fits what serving computes.
    encoded = {name: features.encode(splits.columns[name], spec) for name in ("validation", "test")}
    proba = {
        name: np.asarray(booster.inplace_predict(x, validate_features=False)).astype(np.float64)
        for name, x in encoded.items()
    }
    threshold = choose_threshold(proba["validation"], labels["validation"], amounts["validation"], review_cost)
    done("threshold")

    metrics = {name: evaluate(proba[name], labels[name], amounts[name], threshold, review_cost) for name in proba}
    measured = {references.HISTORY_UNKNOWN: references.history_unknown(booster, spec, splits, threshold, review_cost)}
    done("evaluate")

    check_runtime_matches(pipeline, raw_booster, spec, splits.columns["test"], splits.frames["test"])
    check_reasons_exact(raw_booster, encoded["test"])
    done("check")

    importance = global_importance(booster, spec, encoded["test"])
    done("importance")

    fitted: dict[str, BaselineResult] = {}
    test_scores: dict[str, FloatArray] = {OURS: proba["test"]}
    for baseline in baselines.BASELINES:
        fitted[baseline.key], test_scores[baseline.key] = baselines.fit_and_measure(
            baseline, splits, seed, review_cost, on_iteration
        )
        done(baseline.key)

    on_protocol = evaluate_test_period(
        splits.columns["test"],
        labels["test"],
        test_scores,
        threshold,
        seed,
        episodes_from=columns if "episode" in columns else None,
    )
    done("protocol")

    if reference_multiple > 1 and data.source.get("source") == "generator":
        key = references.more_history_key(reference_multiple)
        measured[key], test_scores[key] = references.with_more_history(
            data, splits, params, seed, reference_multiple, review_cost, rng, delay_days
        )
    done("reference")

    logger.info(
        "trained on %d events: test ROC-AUC %.4f, PR-AUC %.4f, threshold %.4f",
        splits.index["train"].size,
        metrics["test"]["roc_auc"],
        metrics["test"]["pr_auc"],
        threshold,
    )
    t_ms = np.asarray(columns["t_ms"])
    stretches = {
        name: [_iso(int(t_ms[idx].min())), _iso(int(t_ms[idx].max()))] for name, idx in splits.index.items() if idx.size
    }
    return TrainResult(
        pipeline=pipeline,
        payload={"format": ARTIFACT_FORMAT, "booster": raw_booster, "feature_spec": spec.to_dict()},
        spec=spec,
        threshold=threshold,
        threshold_policy={
            "rule": "flag when probability >= threshold",
            "objective": "minimise total cost on the validation split",
            "missed_fraud_cost": "the transaction amount",
            "false_alarm_cost": "review_cost per flagged legitimate transaction",
            "review_cost": review_cost,
            "chosen_on": "validation",
        },
        metrics=metrics,
        hyperparameters={
            **asdict(params),
            "tree_method": "hist",
            "objective": "binary:logistic",
            "seed": seed,
            "chosen_on": "validation (average precision); the test period is never looked at to choose",
            "candidates": [
                {**asdict(p), "validation_average_precision": None if ap is None else round(ap, 4)} for p, ap in search
            ],
        },
        training_data={
            **data.source,
            "n_samples": int(label.size),
            "observed_fraud_rate": float(label.mean()),
            "split": f"by whole UTC days in event time: a training period, a {delay_days}-day delay whose labels are "
            "not known yet at training (neither trained nor measured on), then a validation and a test period; of "
            "the days left once the delay is out, 60% train, 20% validate, 20% test",
            "split_sizes": {name: int(idx.size) for name, idx in splits.index.items()},
            "split_days": period_days(splits.index, np.asarray(columns["t_ms"])),
            "delay_days": delay_days,
            "delay_rows": int(label.size - sum(idx.size for idx in splits.index.values())),
            "split_stretches": stretches,
            "history_withheld_share": NO_HISTORY_SHARE,
            "accounts_seen": int(np.unique(np.asarray(columns.get("account_id", columns["account"]))).size),
        },
        model_size={"trees": params.n_estimators, "leaves": count_leaves(booster)},
        baselines=fitted,
        importance=importance,
        references=measured,
        test_label=labels["test"],
        test_scores=test_scores,
        stage_seconds=stage_seconds,
        protocol=on_protocol,
        merchant_delay_days=delay_days,
    )


def choose_hyperparameters(splits: Splits, seed: int) -> list[tuple[Hyperparameters, float | None]]:
    """Every candidate in `CANDIDATES` with its validation average precision, best first (ties: the earlier).

    Fitted on the training period, compared on the validation period only: the test period stays
    unseen until the chosen model is measured, as the field's protocol asks.
    """
    scored: list[tuple[Hyperparameters, float | None]] = []
    for candidate in CANDIDATES:
        pipeline = build_pipeline(candidate, seed)
        pipeline.fit(splits.frames["train"], splits.labels["train"])
        proba = pipeline.predict_proba(splits.frames["validation"])[:, 1]
        scored.append((candidate, float(average_precision_score(splits.labels["validation"], proba))))
    return sorted(scored, key=lambda item: -(item[1] or 0.0))


def independent_benchmark(seed: int, delay_days: int) -> dict[str, Any]:
    """Our recipe and the handbook's baselines on the handbook's simulation and protocol (`model/benchmark/`).

    Over `measure.Settings().seeds` simulations: "models" holds the first one's figures, "across_seeds"
    each model's mean and deviation over all of them, which is what the card compares.
    """
    from model.benchmark import measure, seeds
    from model.benchmark import report as benchmark_report
    from model.training import recipe

    settings = measure.Settings(delay_days=delay_days)

    def ours(columns: Mapping[str, np.ndarray], train_rows: np.ndarray, test_rows: np.ndarray, s: int) -> np.ndarray:
        return recipe.fit_predict(columns, train_rows, test_rows, s, delay_days=delay_days)

    runs = seeds.run(settings, ours)
    text = benchmark_report.markdown(runs)
    summary = runs.summary()
    # The card nests it under its own heading: its title goes, every other heading one level down.
    lines = [("#" + line if line.startswith("#") else line) for line in text.splitlines()[1:]]
    return {
        "markdown": lines,
        "models": {m.key: m.metrics.as_dict() for m in runs.first.models},
        "seed": settings.seed,
        "seeds": list(summary.seeds),
        # A deviation is NaN for one seed; JSON has no NaN, so it is written as null.
        "across_seeds": {
            key: {
                name: {"mean": x.mean, "sd": None if np.isnan(x.sd) else x.sd}
                for name, x in zip(seeds.FIGURES, spreads, strict=True)
            }
            for key, spreads in summary.spreads.items()
        },
        "training_seed": seed,
    }


def _iso(t_ms: int) -> str:
    return datetime.fromtimestamp(t_ms / 1000, UTC).isoformat(timespec="seconds")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m model.training.train", description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, help=f"events to generate (default {DEFAULT_SAMPLES:,})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="generator, split and model seed")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="where to write the artifacts")
    parser.add_argument(
        "--reference-multiple",
        type=int,
        default=DEFAULT_REFERENCE_MULTIPLE,
        help="also fit the same model on this many times more generated history, as an upper reference (0: skip)",
    )
    parser.add_argument(
        "--review-cost",
        type=float,
        default=DEFAULT_REVIEW_COST,
        help="cost of reviewing one false alarm, in the amount's currency units",
    )
    parser.add_argument(
        "--benchmark",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also run the independent benchmark (the ULB handbook's simulator and protocol over five simulation "
        "seeds, about 6 minutes) and put its tables in the model card (`make train` turns it on)",
    )
    parser.add_argument(
        "--merchant-delay-days",
        type=int,
        default=merchants.DEFAULT_DELAY_DAYS,
        metavar="DAYS",
        help="whole days between a label becoming known and its use in merchant risk, and the gap between the "
        "training and validation periods (default %(default)s, the ULB handbook's delay); serving uses the "
        "model's own",
    )
    parser.add_argument(
        "--data",
        type=Path,
        metavar="FILE",
        help="train on labelled transactions in the contract from a file instead of generating: JSON Lines "
        "(.jsonl, .ndjson, .json: one record per line) or Parquet (.parquet); see README: Train on your own data",
    )
    history = parser.add_argument_group(
        "retraining from history", "read labelled transactions from a Cosmos DB container instead of generating"
    )
    history.add_argument("--history-endpoint", metavar="URL", help="Cosmos DB account endpoint")
    history.add_argument("--history-database", default=DEFAULT_HISTORY_DATABASE, metavar="DB")
    history.add_argument("--history-container", default=DEFAULT_HISTORY_CONTAINER, metavar="C")
    history.add_argument(
        "--history-key",
        default=os.environ.get(HISTORY_KEY_VARIABLE) or None,
        metavar="KEY",
        help=f"account key (or set {HISTORY_KEY_VARIABLE}); without one, DefaultAzureCredential is used",
    )
    history.add_argument(
        "--history-insecure-local-tls",
        action="store_true",
        help="skip TLS verification, for a local emulator with a self-signed certificate (loopback only)",
    )
    history.add_argument("--history-limit", type=int, metavar="N", help="read at most N documents")
    args = parser.parse_args(argv)
    if args.data is not None:
        if args.history_endpoint is not None or args.samples is not None:
            parser.error("--data reads a file: it cannot be combined with --history-endpoint or --samples")
        if not args.data.is_file():
            parser.error(f"--data {args.data}: no such file")
        if args.data.suffix.lower() not in FILE_FORMATS:
            parser.error(f"--data {args.data}: the name must end in one of {', '.join(sorted(FILE_FORMATS))}")
    elif args.history_endpoint is None:
        if args.samples is None:
            args.samples = DEFAULT_SAMPLES
        if args.samples < MIN_ROWS:
            parser.error(f"--samples must be at least {MIN_ROWS} for a 60/20/20 split in event time to be meaningful")
    else:
        if args.samples is not None:
            parser.error("--samples generates data; with --history-endpoint use --history-limit")
        if args.history_insecure_local_tls and not is_loopback_url(args.history_endpoint):
            parser.error("--history-insecure-local-tls is only for an emulator on localhost")
        if args.history_limit is not None and args.history_limit < MIN_ROWS:
            parser.error(f"--history-limit must be at least {MIN_ROWS}")
    if args.review_cost <= 0:
        parser.error("--review-cost must be positive")
    if not 0 <= args.merchant_delay_days <= merchants.MAX_DELAY_DAYS:
        parser.error(f"--merchant-delay-days must be within 0..{merchants.MAX_DELAY_DAYS}")
    return args


def load_data(args: argparse.Namespace) -> TrainingData:
    """Generate the training data, or read it from the file or the Cosmos DB history container the arguments name."""
    if args.data is not None:
        return file_data(args.data)
    if args.history_endpoint is None:
        return generated_data(args.samples, args.seed)
    return read_history_data(
        args.history_endpoint,
        args.history_database,
        args.history_container,
        key=args.history_key,
        verify_tls=not args.history_insecure_local_tls,
        limit=args.history_limit,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Train with the command-line settings; write the artifacts, metadata, model card and plots into `--out-dir`."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stages = ("data", *STAGES, "benchmark", "report")
    started = time.perf_counter()
    # Log lines go through tqdm, so they print above the bars instead of through them.
    with logging_redirect_tqdm(), tqdm(total=len(stages), desc="training", unit="stage", postfix=stages[0]) as bar:

        def advance(_finished: str) -> None:
            # Name the stage now running, so a slow stage is visible while it runs.
            bar.update(1)
            bar.set_postfix_str(stages[bar.n] if bar.n < len(stages) else "done")

        iterations: list[tqdm] = []

        def iteration(done: int, total: int) -> None:
            # A nested bar for the gradient-boosting baseline, by far the slowest stage.
            if not iterations:
                iterations.append(tqdm(total=total, desc="  gradient boosting", unit="tree", leave=False))
            iterations[0].update(done - iterations[0].n)
            if done >= total:
                iterations.pop().close()

        try:
            data = load_data(args)
        except TrainingDataError as exc:
            raise SystemExit(f"cannot train: {exc}") from None
        advance("data")
        try:
            result = train(
                data,
                args.seed,
                review_cost=args.review_cost,
                progress=advance,
                on_iteration=iteration,
                reference_multiple=args.reference_multiple,
                delay_days=args.merchant_delay_days,
            )
        except TrainingDataError as exc:
            raise SystemExit(f"cannot train: {exc}") from None
        if args.benchmark:
            result = replace(result, benchmark=independent_benchmark(args.seed, args.merchant_delay_days))
        advance("benchmark")
        metadata = write_artifacts(result, args.out_dir, time.perf_counter() - started)
        written = report.write_report(metadata, result.test_label, result.test_scores, args.out_dir)
        advance("report")
    test = metadata["metrics"]["test"]
    logger.info(
        "wrote %s to %s in %.1f s: test ROC-AUC %.4f, PR-AUC %.4f, recall@1%%FPR %.4f, threshold %.4f",
        metadata["version"],
        args.out_dir,
        metadata["training_seconds"],
        test["roc_auc"],
        test["pr_auc"],
        test["recall_at_1pct_fpr"],
        metadata["threshold"],
    )
    for name, model in metadata["baselines"].items():
        logger.info(
            "baseline %s: test ROC-AUC %.4f, PR-AUC %.4f, recall@1%%FPR %.4f (fit %.1f s)",
            name,
            model["metrics"]["test"]["roc_auc"],
            model["metrics"]["test"]["pr_auc"],
            model["metrics"]["test"]["recall_at_1pct_fpr"],
            model["fit_seconds"],
        )
    logger.info("model card and plots: %s", ", ".join(str(p) for p in written))


if __name__ == "__main__":
    main()
