"""ScoreTransactions under bad input, through the worker engine: no invocation fails, every event is accounted
for, reasons are named.

A property-based test (hypothesis) feeds well over 10,000 generated malformed events per run
(invalid JSON, non-UTF-8 bytes, empty and oversized bodies, missing/extra/mistyped fields,
NaN/±Infinity/huge numbers, negative amounts, unknown categories, duplicated ids, all-bad
batches), and a checked-in corpus of nasty examples pins the exact field and reason for each.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devhost.worker import worker
from shared.contract import schema as c
from shared.generation.generator import TransactionGenerator
from tests.invoke import score

pytestmark = pytest.mark.unit

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "nasty_events.jsonl"
FIELDS = [c.ID_FIELD, c.TIMESTAMP_FIELD, c.ACCOUNT_FIELD, *c.FEATURE_FIELDS, c.LABEL_FIELD]
EXAMPLES = 250  # x about 60 events per batch: ~15,000 events per run
_BASE = TransactionGenerator(seed=404).generate(2000)
_seen_events = {"count": 0}


def _score(bodies: list[bytes]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return score(worker(), bodies, partition="7")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def malformed_event(draw: st.DrawFn) -> bytes:
    """One event that is bad in one of many ways (or, sometimes, fine: batches mix both)."""
    record = dict(_BASE[draw(st.integers(0, len(_BASE) - 1))])
    kind = draw(
        st.sampled_from(
            ["good", "drop", "retype", "extra", "category", "negative", "raw", "text", "empty", "huge", "nonfinite"]
        )
    )
    if kind == "drop":
        del record[draw(st.sampled_from(FIELDS))]
    elif kind == "retype":
        record[draw(st.sampled_from(FIELDS))] = draw(json_values)
    elif kind == "extra":
        record.update(draw(st.dictionaries(st.text(min_size=1, max_size=10), json_values, min_size=1, max_size=4)))
    elif kind == "category":
        field = draw(st.sampled_from([*c.ONE_HOT_FIELDS, c.LABEL_ENCODED_FIELD]))
        record[field] = draw(st.text(max_size=12) | st.integers(-5, 40))
    elif kind == "negative":
        record[draw(st.sampled_from(c.CONTINUOUS_FIELDS))] = -draw(st.floats(min_value=0.0, max_value=1e9))
    elif kind == "raw":
        return draw(st.binary(max_size=200))
    elif kind == "text":
        return draw(st.text(max_size=200)).encode()
    elif kind == "empty":
        return b""
    elif kind == "huge":
        return json.dumps({**record, "blob": "x" * 70_000}).encode()
    elif kind == "nonfinite":
        record[draw(st.sampled_from(c.CONTINUOUS_FIELDS))] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    return json.dumps(record, allow_nan=True).encode()


@st.composite
def batches(draw: st.DrawFn) -> list[bytes]:
    events = draw(st.lists(malformed_event(), min_size=40, max_size=120))
    if draw(st.booleans()):  # duplicated ids within one batch
        events += draw(st.lists(st.sampled_from(events), min_size=1, max_size=5))
    return events


@settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(batches())
def test_every_event_is_scored_or_rejected_with_a_reason(bodies: list[bytes]) -> None:
    """No exception escapes; scored + rejected == input; rejections name a field and a reason; ids unique."""
    _seen_events["count"] += len(bodies)
    scored, rejected = _score(bodies)
    assert len(scored) + len(rejected) == len(bodies)
    for doc in rejected:
        assert doc["field"] in {*FIELDS, "body"}
        assert doc["reason"]
        assert doc["detail"]
        assert (doc["raw_body"] is None) != (doc["raw_body_base64"] is None)
    assert len({d["id"] for d in scored}) == len(scored)
    assert len({d["id"] for d in rejected}) == len(rejected)
    for doc in scored:
        assert 0.0 <= doc["fraud_probability"] <= 1.0
        c.validate({k: doc[k] for k in FIELDS if k in doc})  # what is stored still satisfies the contract


def test_property_run_covered_ten_thousand_events() -> None:
    """The property test above really fed at least 10,000 events (runs after it, in file order)."""
    assert _seen_events["count"] >= 10_000


def test_all_bad_batch() -> None:
    """A batch with nothing scorable still writes one rejected document per event and nothing scored."""
    scored, rejected = _score([b"", b"{", b"\xff" * 10, b"[]", b"null"])
    assert scored == []
    assert len(rejected) == 5


def _corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("case", _corpus(), ids=lambda case: case["name"])
def test_corpus_case(case: dict[str, Any]) -> None:
    """Each checked-in nasty example is rejected with exactly the field and reason recorded for it."""
    body = base64.b64decode(case["body_base64"]) if "body_base64" in case else case["body"].encode()
    scored, rejected = _score([body])
    assert scored == []
    assert [(d["field"], d["reason"]) for d in rejected] == [(case["field"], case["reason"])]


def test_corpus_in_one_batch_with_good_events() -> None:
    """The whole corpus mixed with good events in one batch: the good ones are all scored."""
    corpus = [
        base64.b64decode(case["body_base64"]) if "body_base64" in case else case["body"].encode() for case in _corpus()
    ]
    good = [json.dumps(r).encode() for r in _BASE[:100]]
    scored, rejected = _score(corpus + good)
    assert len(scored) == 100
    assert len(rejected) == len(corpus)
