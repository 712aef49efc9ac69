"""Tests for model/training/train.py: the pure `train()` result, baselines, data sources and what `main()` writes."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

import model.training.labelled
from model.training.artifact import REFERENCE_PIPELINE_NAME
from model.training.baselines import BASELINES, LOGISTIC_MAX_ITER
from model.training.data import generated_data
from model.training.labelled import LabelledHistory
from model.training.pipeline import CANDIDATES, Hyperparameters
from model.training.report import MODEL_CARD_NAME, PLOT_NAMES, PLOTS_DIR
from model.training.train import DEFAULT_OUT_DIR, HISTORY_KEY_VARIABLE, STAGES, TrainResult, main, train
from shared.behaviour import features as behaviour
from shared.generation.generator import TransactionGenerator
from shared.generation.records import records as to_records
from shared.scoring import encoding as features
from shared.scoring.model import ARTIFACT_NAME, FIELDS, METADATA_NAME, load_model, sha256_of
from shared.settings import DEFAULT_MODEL_DIR

pytestmark = pytest.mark.unit

METRIC_KEYS = {
    "roc_auc",
    "pr_auc",
    "brier",
    "recall_at_1pct_fpr",
    "recall_at_0_1pct_fpr",
    "precision",
    "recall",
    "f1",
    "confusion_matrix",
    "cost",
}
BASELINE_KEYS = {b.key for b in BASELINES}
NO_REFERENCE = ["--reference-multiple", "0"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_threshold_and_metrics(small: TrainResult) -> None:
    """The threshold is a probability strictly inside (0, 1) and both splits report every metric."""
    assert 0.0 < small.threshold < 1.0
    assert small.threshold_policy["review_cost"] == pytest.approx(5.0)
    for split in ("validation", "test"):
        assert small.metrics[split].keys() >= METRIC_KEYS
        assert set(small.metrics[split]["confusion_matrix"]) == {"tn", "fp", "fn", "tp"}
    assert small.metrics["test"]["roc_auc"] > 0.9


def test_split_is_temporal(small: TrainResult) -> None:
    """Train, validation and test are periods of event time in that order, a delay of at least 7 days after train."""
    stretches = small.training_data["split_stretches"]
    assert stretches["train"][1] <= stretches["validation"][0] <= stretches["validation"][1] <= stretches["test"][0]
    gap = datetime.fromisoformat(stretches["validation"][0]) - datetime.fromisoformat(stretches["train"][1])
    assert gap.days >= 7


def test_hyperparameters_are_chosen_on_validation(small: TrainResult) -> None:
    """Every candidate is compared on the validation period; the chosen one has the best figure there."""
    params = small.hyperparameters
    candidates = params["candidates"]
    assert len(candidates) == len(CANDIDATES)
    best = max(candidates, key=lambda c: c["validation_average_precision"])
    assert (params["n_estimators"], params["max_depth"]) == (best["n_estimators"], best["max_depth"])
    assert params["chosen_on"].startswith("validation")


def test_behaviour_beats_the_static_model_and_history_unknown_still_scores(small: TrainResult) -> None:
    """Behaviour adds to the seed's fields on later payments; with history withheld the model still ranks well."""
    ours = small.metrics["test"]
    assert ours["pr_auc"] > small.baselines["static_xgboost"].metrics["test"]["pr_auc"]
    unknown = small.references["history_unknown"]["metrics"]
    assert unknown["n"] == ours["n"]
    assert 0.85 < unknown["roc_auc"] < ours["roc_auc"]


def test_upper_reference_trains_on_more_history() -> None:
    """With reference_multiple=3, the same model is fitted on about 3x the training rows and tested on the same rows."""
    result = train(generated_data(5_000, seed=4), seed=4, reference_multiple=3)
    ref = result.references["xgboost_3x"]
    train_rows = result.training_data["split_sizes"]["train"]
    assert 2.5 * train_rows < ref["train_rows"] < 3.5 * train_rows
    assert ref["metrics"]["n"] == result.metrics["test"]["n"]


def test_baselines_share_the_split(small: TrainResult) -> None:
    """Both baselines are fitted, thresholded and measured on exactly the rows our model was."""
    assert set(small.baselines) == BASELINE_KEYS
    test_n = small.metrics["test"]["n"]
    for result in small.baselines.values():
        assert 0.0 < result.threshold < 1.0
        for split in ("validation", "test"):
            assert result.metrics[split].keys() >= METRIC_KEYS
            assert result.metrics[split]["n"] == small.metrics[split]["n"]
            assert result.metrics[split]["fraud_rate"] == small.metrics[split]["fraud_rate"]
        assert result.metrics["test"]["roc_auc"] > 0.85
    assert list(small.test_scores) == ["xgboost", *(b.key for b in BASELINES)]
    assert all(scores.shape == (test_n,) for scores in small.test_scores.values())
    assert small.test_label.shape == (test_n,)


def test_baselines_are_the_issue_recipes(small: TrainResult) -> None:
    """The seed's GradientBoostingClassifier runs 100 iterations; static XGBoost has our defaults; LR converged."""
    boosting = small.baselines["gradient_boosting"].summary
    assert boosting["estimator"] == "sklearn.ensemble.GradientBoostingClassifier"
    assert boosting["params"]["n_estimators"] == 100
    assert boosting["iterations"] == 100
    static = small.baselines["static_xgboost"].summary["params"]
    for name in ("n_estimators", "max_depth", "learning_rate", "scale_pos_weight"):
        assert static[name] == getattr(Hyperparameters(), name), name
    logistic = small.baselines["logistic_regression"].summary
    assert logistic["estimator"] == "sklearn.linear_model.LogisticRegression"
    assert logistic["iterations"] < LOGISTIC_MAX_ITER


def test_importance_covers_every_field(small: TrainResult) -> None:
    """Global importance: one non-negative mean |SHAP| per field and behavioural feature; behaviour counts."""
    assert list(small.importance) == list(FIELDS)
    assert all(value >= 0.0 for value in small.importance.values())
    top = sorted(small.importance, key=lambda name: -small.importance[name])[:8]
    assert set(top) & set(behaviour.FEATURES)


def test_split_sizes_add_up(small: TrainResult) -> None:
    """Every generated event is in exactly one period: train, the delay left out, validation or test."""
    data = small.training_data
    sizes = data["split_sizes"]
    assert sum(sizes.values()) + data["delay_rows"] == data["n_samples"] == 10_000
    assert data["delay_rows"] > 0
    days = data["split_days"]
    assert days["train"] == pytest.approx(3 * days["test"], abs=2)
    assert data["delay_days"] == 7
    assert small.training_data["source"] == "generator"
    assert small.training_data["seed"] == 7


def test_progress_reports_every_stage() -> None:
    """The progress callback hears each stage once, in order, and the slow baseline reports its iterations."""
    seen: list[str] = []
    iterations: list[tuple[int, int]] = []
    result = train(
        generated_data(5_000, seed=3),
        seed=3,
        progress=seen.append,
        on_iteration=lambda done, total: iterations.append((done, total)),
    )
    assert seen == list(STAGES)
    assert iterations == [(i, 100) for i in range(1, 101)]
    assert list(result.stage_seconds) == list(STAGES)


def test_outputs_land_where_serving_loads_the_model() -> None:
    """With no --out-dir, training writes into `model/`, the directory the app loads, not `model/training/`."""
    assert DEFAULT_OUT_DIR == DEFAULT_MODEL_DIR
    assert (DEFAULT_OUT_DIR / ARTIFACT_NAME).is_file()


def _read_metadata(out_dir: Path) -> dict[str, Any]:
    metadata: dict[str, Any] = json.loads((out_dir / METADATA_NAME).read_text(encoding="utf-8"))
    return metadata


def test_main_writes_verified_files(tmp_path: Path) -> None:
    """`main()` writes the artifact, the reference pipeline and metadata whose hashes match the files."""
    main(["--samples", "10000", "--seed", "5", "--out-dir", str(tmp_path), "--review-cost", "7.5", *NO_REFERENCE])
    for name in (ARTIFACT_NAME, METADATA_NAME, REFERENCE_PIPELINE_NAME):
        assert (tmp_path / name).is_file()
    metadata = _read_metadata(tmp_path)
    assert metadata["artifact"]["sha256"] == sha256_of(tmp_path / ARTIFACT_NAME)
    assert metadata["artifact"]["bytes"] == (tmp_path / ARTIFACT_NAME).stat().st_size
    assert metadata["reference_pipeline"]["sha256"] == sha256_of(tmp_path / REFERENCE_PIPELINE_NAME)
    assert metadata["version"] == "xgb-" + metadata["artifact"]["sha256"][:12]
    assert metadata["feature_names"] == features.feature_names()
    assert metadata["threshold_policy"]["review_cost"] == pytest.approx(7.5)
    assert metadata["training_data"]["n_samples"] == 10_000
    assert metadata["training_data"]["source"] == "generator"
    assert set(metadata["baselines"]) == BASELINE_KEYS
    for baseline in metadata["baselines"].values():
        assert baseline["metrics"]["test"].keys() >= METRIC_KEYS
        assert baseline["metrics"]["test"]["n"] == metadata["metrics"]["test"]["n"]
    assert set(metadata["feature_importance"]["values"]) == set(FIELDS)
    assert load_model(tmp_path).threshold == pytest.approx(metadata["threshold"])


def test_main_writes_model_card_and_plots(tmp_path: Path) -> None:
    """`main()` writes a model card naming all three models and the version, and three PNG plots."""
    main(["--samples", "5000", "--seed", "6", "--out-dir", str(tmp_path), "--reference-multiple", "2"])
    metadata = _read_metadata(tmp_path)
    card = (tmp_path / MODEL_CARD_NAME).read_text(encoding="utf-8")
    assert metadata["version"] in card
    for name in ("XGBoost, behavioural (ours)", *(b.name for b in BASELINES)):
        # One row in each metrics table, and one in each of the protocol's tables (two fraud rates).
        assert card.count(f"| {name} |") == 4
    assert "| *XGBoost (ours), 2x history* |" in card
    assert "| *XGBoost (ours), history unknown* |" in card
    assert "Card testing" in card
    assert "Compromised merchant" in card
    assert "CP@100" in card
    assert "At 0.5% prevalence" in card
    assert "first payment flagged" in card
    assert f"{metadata['threshold']:.4f}" in card
    assert "FRAUD_THRESHOLD" in card
    for name in PLOT_NAMES:
        path = tmp_path / PLOTS_DIR / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        assert f"({PLOTS_DIR}/{name})" in card


def test_main_reads_history_with_default_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With --history-endpoint and no key, main() reads history through Entra ID and records that source."""
    monkeypatch.delenv(HISTORY_KEY_VARIABLE, raising=False)
    calls: list[dict[str, Any]] = []
    columns = TransactionGenerator(fraud_rate=0.10, seed=8, accounts=30).columns(3_000)

    def fake_read_history(endpoint: str, database: str, container: str, **kwargs: Any) -> LabelledHistory:
        calls.append({"endpoint": endpoint, "database": database, "container": container, **kwargs})
        return LabelledHistory(columns=columns, skipped=Counter({"is_fraud:missing": 4}))

    monkeypatch.setattr(model.training.labelled, "read_history", fake_read_history)
    endpoint = "https://acct.documents.azure.com:443/"
    main(["--history-endpoint", endpoint, "--history-limit", "5000", "--out-dir", str(tmp_path), *NO_REFERENCE])
    assert calls == [
        {
            "endpoint": endpoint,
            "database": "fraud",
            "container": "history",
            "key": None,
            "verify_tls": True,
            "limit": 5_000,
        }
    ]
    data = _read_metadata(tmp_path)["training_data"]
    assert data["source"] == "cosmos_history"
    assert data["auth"] == "DefaultAzureCredential"
    assert (data["documents_read"], data["documents_used"], data["documents_skipped"]) == (3_004, 3_000, 4)
    assert data["n_samples"] == 3_000
    assert data["reader"] == "model.training.labelled.read_history"
    assert "Cosmos DB" in (tmp_path / MODEL_CARD_NAME).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--samples", "500"], "--samples must be at least"),
        (["--history-endpoint", "https://acct.documents.azure.com:443/", "--samples", "5000"], "--history-limit"),
        (["--history-endpoint", "https://acct.documents.azure.com:443/", "--history-insecure-local-tls"], "localhost"),
        (["--review-cost", "0"], "--review-cost must be positive"),
    ],
)
def test_bad_arguments_are_refused(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Contradictory or unsafe options stop before any data is read, with a message naming the option."""
    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err


def _labelled_records(n: int, seed: int) -> list[dict[str, Any]]:
    generator = TransactionGenerator(fraud_rate=0.10, seed=seed, accounts=40)
    columns = generator.columns(n)
    records = to_records(columns, columns["id"].tolist(), columns["account_id"].tolist())
    for record, fraud in zip(records, columns["is_fraud"].tolist(), strict=True):
        record["is_fraud"] = int(fraud)
    return records


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_main_trains_on_a_file_of_labelled_contract_records(tmp_path: Path, suffix: str) -> None:
    """--data FILE: JSON Lines or Parquet of labelled records; bad rows are counted and left out; the same report."""
    records = _labelled_records(4_000, seed=12)
    del records[3]["amount"]
    records[0]["label_known_at"] = "yesterday"  # the first row: pyarrow takes its columns from it
    path = tmp_path / f"history{suffix}"
    if suffix == ".jsonl":
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records) + b"not json\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(records), path)
    out = tmp_path / "model"
    main(["--data", str(path), "--out-dir", str(out), *NO_REFERENCE])
    data = _read_metadata(out)["training_data"]
    assert data["source"] == "file"
    assert data["format"] == ("json_lines" if suffix == ".jsonl" else "parquet")
    assert data["records_used"] == 3_998
    assert data["skipped_by_reason"]["label_known_at:invalid_timestamp"] == 1
    assert (out / MODEL_CARD_NAME).read_text(encoding="utf-8").count("| XGBoost, behavioural (ours) |") == 4


def test_main_refuses_a_data_file_it_cannot_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing file or an unknown suffix is one line naming --data, exit status 2."""
    for argv in (["--data", str(tmp_path / "missing.jsonl")], ["--data", str(tmp_path)]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert "--data" in capsys.readouterr().err
