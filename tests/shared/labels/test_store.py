"""The label stores in memory and as configured: create-if-absent outcomes, a day's rows, the settings' choice."""

from __future__ import annotations

import pytest

from shared import caches
from shared.labels import store as label_store
from shared.labels.store import (
    LabelStoreUnavailableError,
    MemoryLabelStore,
    Outcome,
    UnavailableLabelStore,
    Written,
    get_label_store,
)

pytestmark = pytest.mark.unit


def doc(tid: str, fraud: bool, day: int = 10, merchant: object = "m-1") -> dict[str, object]:
    return {"id": tid, "transaction_id": tid, "fraud": fraud, "known_day": day, "merchant_id": merchant}


def test_memory_create_if_absent() -> None:
    """New: stored; same outcome again: duplicate; another outcome: conflict naming the stored one; never replaced."""
    store = MemoryLabelStore()
    assert store.create([doc("a", True), doc("b", False)]) == [
        Written(Outcome.STORED, True),
        Written(Outcome.STORED, False),
    ]
    assert store.create([doc("a", True, day=11), doc("b", True)]) == [
        Written(Outcome.DUPLICATE, True),
        Written(Outcome.CONFLICT, False),
    ]
    assert store.get("a") == doc("a", True)
    assert store.get("b") == doc("b", False)
    assert store.get("c") is None


def test_known_on_reads_one_day_with_merchants_only() -> None:
    """A day's (merchant, fraud) rows; labels without a merchant, or of other days, are left out."""
    store = MemoryLabelStore()
    store.create([doc("a", True), doc("b", False, merchant=None), doc("c", False, day=11), doc("d", False)])
    assert sorted(store.known_on(10)) == [("m-1", False), ("m-1", True)]
    assert store.known_on(11) == [("m-1", False)]
    assert store.known_on(12) == []


def test_unusable_stored_rows_are_counted_and_left_out() -> None:
    """A hand-edited label (fraud 1, an empty merchant) is skipped and counted, not totalled."""
    store = MemoryLabelStore()
    store.create([doc("a", True), {**doc("b", True), "fraud": 1}, doc("c", True, merchant="")])
    before = label_store.unusable_labels.total
    assert store.known_on(10) == [("m-1", True)]
    assert label_store.unusable_labels.total == before + 2


def test_an_unavailable_store_confirms_nothing_and_reads_nothing() -> None:
    """Set-up failures never claim a label stored, and stop the aggregation."""
    store = UnavailableLabelStore("no connection")
    assert store.create([doc("a", True)]) == [Written(Outcome.UNCONFIRMED)]
    with pytest.raises(LabelStoreUnavailableError, match="no connection"):
        store.known_on(10)


@pytest.mark.parametrize(
    ("env", "kind"),
    [
        ({"BEHAVIOUR_STATE": "memory"}, MemoryLabelStore),
        ({"BEHAVIOUR_STATE": "cosmos", "LABEL_STORE": "memory"}, MemoryLabelStore),
        ({"BEHAVIOUR_STATE": "memory", "LABEL_STORE": "cosmos"}, UnavailableLabelStore),
        ({"BEHAVIOUR_STATE": "memory", "LABEL_STORE": "off"}, type(None)),
        ({"BEHAVIOUR_STATE": "off"}, type(None)),
    ],
)
def test_the_setting_chooses_the_store(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], kind: type) -> None:
    """LABEL_STORE picks the store (unset: as BEHAVIOUR_STATE); cosmos without a connection is unavailable."""
    monkeypatch.delenv("LABEL_STORE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    caches.reset_all()
    store = get_label_store()
    assert type(store) is kind
    if isinstance(store, UnavailableLabelStore):
        assert "LABEL_STORE=cosmos needs CosmosDBConnection" in store.reason
        assert get_label_store() is not store  # not cached: the next request tries again
    elif store is not None:
        assert get_label_store() is store  # one per process
