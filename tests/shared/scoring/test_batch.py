"""The columnar scorer writes exactly the documents the plain per-event scorer writes.

The oracle below is the straightforward design this module replaced: decode and `contract.validate`
each event, encode the valid ones, predict, build each document field by field, and explain
flagged rows with XGBoost's own `pred_contribs`. Both run on the same batches, clean and malformed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.behaviour import features as behaviour
from shared.behaviour import merchants
from shared.contract import schema as c
from shared.generation.generator import TransactionGenerator
from shared.scoring.batch import score_batch
from shared.scoring.documents import rejected_document, utc_iso
from shared.scoring.encoding import CONTEXT_FEATURES, encode, transactions_to_columns
from shared.scoring.events import EventBatch
from shared.scoring.model import FIELDS, PERSONAL_FIELDS, FraudModel, load_model, xgboost_contributions

pytestmark = pytest.mark.unit

MODEL_DIR = Path(__file__).resolve().parents[3] / "model"
NOW = datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=UTC)
_BASE = TransactionGenerator(seed=2718).generate(400, now=NOW)


@pytest.fixture(scope="module")
def model() -> FraudModel:
    return load_model(MODEL_DIR)


def oracle(batch: EventBatch, model: FraudModel, now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Scored and rejected documents as the per-event design produced them."""
    stamp = utc_iso(now)
    rejected: list[dict[str, Any]] = []
    valid: list[tuple[int, c.Transaction]] = []
    seen: set[str] = set()
    for position, body in enumerate(batch.bodies):
        try:
            if len(body) > c.MAX_TRANSACTION_BYTES:
                raise c.InvalidTransactionError(c.Rejection("body", "too_large", "event body exceeds 65536 bytes"))
            try:
                record = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise c.InvalidTransactionError(
                    c.Rejection("body", "invalid_json", "not a UTF-8 JSON document")
                ) from None
            tx = c.validate(record)
        except c.InvalidTransactionError as exc:
            rejected.append(rejected_document(batch, position, exc.rejection, stamp, model.version))
            continue
        if tx.id in seen:
            dup = c.Rejection(c.ID_FIELD, "duplicate_id", "id already seen earlier in this batch")
            rejected.append(rejected_document(batch, position, dup, stamp, model.version))
            continue
        seen.add(tx.id)
        valid.append((position, tx))
    if not valid:
        return [], rejected
    columns = transactions_to_columns([tx for _, tx in valid])
    x = encode(columns, model.spec)
    unknown = behaviour.no_history(columns).tolist()  # no history given: every payment as an account's first
    probabilities = model.booster.inplace_predict(x, validate_features=False).tolist()
    contributions = xgboost_contributions(model.booster, x)
    scored = []
    for (position, tx), p, row, features in zip(valid, probabilities, contributions, unknown, strict=True):
        flagged = p >= model.threshold
        # Personal attributes are never reasons (shared.scoring.model.PERSONAL_FIELDS).
        row = np.where([f in PERSONAL_FIELDS for f in FIELDS], -np.inf, row)
        order = np.argsort(-row, kind="stable")[:3]
        enqueued = batch.enqueued_times[position]
        scored.append(
            {
                "id": tx.id,
                "timestamp": tx.timestamp,
                "account_id": tx.account_id,
                "amount": tx.amount,
                "old_balance": tx.old_balance,
                "income": tx.income,
                "credit": tx.credit,
                "marital_status": tx.marital_status,
                "children": tx.children,
                "month": c.category_value("month", tx.month),
                "day_of_week": c.category_value("day_of_week", tx.day_of_week),
                "category_recipient": c.category_value("category_recipient", tx.category_recipient),
                "transaction_type": c.category_value("transaction_type", tx.transaction_type),
                "transaction_method": c.category_value("transaction_method", tx.transaction_method),
                "foreign_transaction": tx.foreign_transaction,
                "is_fraud": None if tx.is_fraud is None else int(tx.is_fraud),
                "fraud_probability": p,
                "is_flagged": flagged,
                "threshold": model.threshold,
                "model_version": model.version,
                "scored_at": stamp,
                "enqueued_time": utc_iso(enqueued) if enqueued else None,
                "partition": batch.partition,
                "sequence_number": batch.sequence_numbers[position],
                "account_history": "off",
                "merchant_history": "off",
                "behaviour": dict(zip(CONTEXT_FEATURES, [*features, *[0.0] * len(merchants.FEATURES)], strict=True)),
                **({} if tx.merchant_id is None else {"merchant_id": tx.merchant_id}),
                "reasons": [
                    {"field": FIELDS[j], "contribution": round(float(row[j]), 4)} for j in order if row[j] > 0.0
                ]
                if flagged
                else [],
            }
        )
    return scored, rejected


def assert_same_reasons(ours: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Same fields and contributions; float32 (XGBoost) and float64 (tables) may round or order near-ties apart."""
    assert len(ours) == len(expected)
    for mine, theirs in zip(ours, expected, strict=True):
        assert mine["contribution"] == pytest.approx(theirs["contribution"], abs=2e-4)
        if mine["field"] != theirs["field"]:
            assert mine["contribution"] == pytest.approx(theirs["contribution"], abs=2e-5)


def assert_same_documents(batch: EventBatch, model: FraudModel) -> None:
    result = score_batch(batch, model, now=NOW)
    scored, rejected = oracle(batch, model, NOW)
    assert result.rejected == rejected
    assert len(result.scored) == len(scored)
    assert result.flagged == sum(d["is_flagged"] for d in scored)
    for mine, theirs in zip(result.scored, scored, strict=True):
        assert mine.keys() == theirs.keys()
        assert_same_reasons(mine["reasons"], theirs["reasons"])
        assert {k: v for k, v in mine.items() if k != "reasons"} == {k: v for k, v in theirs.items() if k != "reasons"}
        # The stored JSON is what Cosmos DB sees: same types, not just equal values (100.0, not 100).
        mine_json = json.dumps({k: v for k, v in mine.items() if k != "reasons"}, sort_keys=True)
        assert mine_json == json.dumps({k: v for k, v in theirs.items() if k != "reasons"}, sort_keys=True)


def hub_batch(bodies: list[bytes], partition: str = "3") -> EventBatch:
    start = datetime(2026, 11, 21, 9, 59, tzinfo=UTC)
    times = [start + timedelta(milliseconds=i // 7) for i in range(len(bodies))]
    return EventBatch(bodies, times, list(range(100, 100 + len(bodies))), partition)


def test_clean_batch(model: FraudModel) -> None:
    """400 generated events: every document equal, reasons included."""
    assert_same_documents(hub_batch([orjson.dumps(r) for r in _BASE]), model)


def test_unlabelled_and_unusual_events(model: FraudModel) -> None:
    """No label, integer amounts, integral floats, boolean labels and extra fields convert as validate does."""
    records = [dict(r) for r in _BASE[:60]]
    for r in records[:20]:
        del r[c.LABEL_FIELD]
    records[25]["amount"] = 120
    records[26]["children"] = 2.0
    records[27][c.LABEL_FIELD] = True
    records[28]["note"] = "from the branch system"
    assert_same_documents(hub_batch([orjson.dumps(r) for r in records]), model)


def test_unlabelled_batch(model: FraudModel) -> None:
    """Production traffic (no label at all) takes the fast path and stores is_fraud as null."""
    records = [{k: v for k, v in r.items() if k != c.LABEL_FIELD} for r in _BASE[:50]]
    assert_same_documents(hub_batch([orjson.dumps(r) for r in records]), model)


def test_bare_bodies_without_metadata(model: FraudModel) -> None:
    """Local callers without Event Hubs metadata: null enqueued time, partition and sequence number."""
    bodies = [orjson.dumps(r) for r in _BASE[:30]] + [b"{not json", b"\xff\xfe"]
    assert_same_documents(EventBatch.of_bodies(bodies), model)


def test_every_event_threshold_zero(model: FraudModel) -> None:
    """With every event flagged, every document carries reasons."""
    flag_all = FraudModel(model.booster, model.spec, 0.0, model.version, model.metadata, model.shap)
    assert_same_documents(hub_batch([orjson.dumps(r) for r in _BASE[:100]]), flag_all)


def test_empty_and_all_rejected_batches(model: FraudModel) -> None:
    """No events, or none valid: nothing scored, nothing lost."""
    assert_same_documents(hub_batch([]), model)
    assert_same_documents(hub_batch([b"[]", b"null", b"", b"x" * (c.MAX_TRANSACTION_BYTES + 1)]), model)


bad_bodies = st.sampled_from(
    [
        b"",
        b"{",
        b"null",
        b"[1, 2]",
        b'"text"',
        b"\xff\xfe",
        b"x" * (c.MAX_TRANSACTION_BYTES + 1),
    ]
)


@st.composite
def mixed_bodies(draw: st.DrawFn) -> list[bytes]:
    out: list[bytes] = []
    ids: list[Any] = []
    for _ in range(draw(st.integers(0, 20))):
        kind = draw(st.integers(0, 5))
        record = dict(_BASE[draw(st.integers(0, len(_BASE) - 1))])
        if kind == 0:
            out.append(draw(bad_bodies))
            continue
        if kind == 1:
            field = draw(st.sampled_from([c.ID_FIELD, c.TIMESTAMP_FIELD, *c.FEATURE_FIELDS, c.LABEL_FIELD]))
            record[field] = draw(st.sampled_from([None, True, 1.5, 2.0, -1, 13, "", "a/b", "Monday", 2**64 - 1, []]))
        if kind == 2 and ids:
            record[c.ID_FIELD] = ids[-1]  # a duplicate, if that one was valid
        ids.append(record.get(c.ID_FIELD))
        out.append(orjson.dumps(record))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mixed_bodies())
def test_mixed_batches_equal_the_oracle(model: FraudModel, bodies: list[bytes]) -> None:
    """Malformed bodies, bad fields and duplicate ids mixed with good events: identical documents."""
    assert_same_documents(hub_batch(bodies), model)
