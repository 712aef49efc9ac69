"""The memory merchant store and the store the settings choose: usable states only, conditional writes, progress."""

from __future__ import annotations

from typing import Any

import pytest

from shared import caches
from shared.behaviour import merchant_store, merchants
from shared.behaviour.merchant_store import (
    CheckedStates,
    MemoryMerchantStore,
    MerchantStateUnavailableError,
    MerchantStateWriteError,
    Progress,
    UnavailableMerchantStore,
    Versioned,
    get_merchant_store,
)

pytestmark = pytest.mark.unit

NOW = "2026-12-01T00:05:00.000Z"


def state(day: int, n: int = 3, fraud: int = 1) -> dict[str, Any]:
    return merchants.merged_state(None, day, n, fraud)


def test_read_returns_only_usable_states() -> None:
    """Scoring's read: merchants with a usable state; none, another version or a broken one are absent (counted)."""
    store = MemoryMerchantStore()
    assert store.write("m-1", state(100), None, NOW)
    store.put("m-2", {"v": 99, "day": [1], "n": [1], "fraud": [0]})
    store.put("m-3", {**state(100), "n": [1], "fraud": [2]})  # more frauds than labels
    before = merchant_store.unusable_states.total
    assert store.read(["m-1", "m-2", "m-3", "m-4"]) == {"m-1": state(100)}
    assert merchant_store.unusable_states.total == before + 2
    assert store.read([]) == {}


def test_scoring_checks_a_state_once_per_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a merchant again checks nothing again until its state is written; the newer one is then read."""
    store = MemoryMerchantStore()
    assert store.write("m-1", state(100), None, NOW)
    checks: list[object] = []
    real = merchants.usable_state

    def counted(raw: object) -> dict[str, Any] | None:
        checks.append(raw)
        return real(raw)

    monkeypatch.setattr(merchants, "usable_state", counted)
    first = store.read(["m-1"])
    assert store.read(["m-1"])["m-1"] is first["m-1"]
    assert len(checks) == 1
    assert store.write("m-1", state(101), store.read_versioned(["m-1"])["m-1"].version, NOW)
    assert store.read(["m-1"]) == {"m-1": state(101)}
    assert isinstance(store.read(["m-1"])["m-1"], merchants.CheckedState)


def test_checked_states_keep_the_most_recently_read() -> None:
    """Past its size the least recently read merchant goes; an unknown version is never kept."""
    checked = CheckedStates(size=2)
    for merchant in ("m-1", "m-2", "m-1", "m-3"):
        assert checked.get(merchant, 7, lambda: state(100)) == state(100)
    assert len(checked) == 2
    loads: list[str] = []

    def load(merchant: str) -> dict[str, Any]:
        loads.append(merchant)
        return state(100)

    checked.get("m-1", 7, lambda: load("m-1"))  # kept: read last but one
    checked.get("m-2", 7, lambda: load("m-2"))  # dropped
    checked.get("m-4", None, lambda: load("m-4"))
    checked.get("m-4", None, lambda: load("m-4"))
    assert loads == ["m-2", "m-4", "m-4"]
    assert checked.get("m-5", 1, lambda: {"v": 99}) is None


def test_writes_are_conditional_on_the_version_read() -> None:
    """Create only if absent; replace only at the version read; a stale writer loses and writes nothing."""
    store = MemoryMerchantStore()
    assert store.write("m-1", state(100), None, NOW)
    assert not store.write("m-1", state(101), None, NOW)  # exists now: create loses
    first = store.read_versioned(["m-1", "m-9"])
    assert first["m-9"] == Versioned(None)
    assert first["m-1"].state == state(100)
    assert store.write("m-1", state(102), first["m-1"].version, NOW)
    assert not store.write("m-1", state(103), first["m-1"].version, NOW)  # stale
    assert store.read(["m-1"]) == {"m-1": state(102)}


def test_progress_is_versioned_too() -> None:
    """The aggregation's progress starts unknown and moves only from the version read."""
    store = MemoryMerchantStore()
    assert store.read_progress() == Progress(None)
    assert store.write_progress(5, None, NOW)
    current = store.read_progress()
    assert current.through == 5
    assert not store.write_progress(4, None, NOW)
    assert store.write_progress(6, current.version, NOW)
    assert not store.write_progress(7, current.version, NOW)
    assert store.read_progress().through == 6


def test_a_merchant_named_like_the_progress_stays_apart() -> None:
    """Any contract id is a merchant id, `_aggregation` included: its state never touches the progress."""
    store = MemoryMerchantStore()
    assert store.write_progress(5, None, NOW)
    assert store.write(merchant_store.PROGRESS_ID, state(100), None, NOW)
    assert store.read_progress().through == 5
    assert store.read([merchant_store.PROGRESS_ID]) == {merchant_store.PROGRESS_ID: state(100)}


def test_the_memory_store_is_bounded() -> None:
    """Past its maximum a new merchant is a write error (the run stops), never a silently dropped state."""
    store = MemoryMerchantStore(max_merchants=1)
    assert store.write("m-1", state(100), None, NOW)
    with pytest.raises(MerchantStateWriteError):
        store.write("m-2", state(100), None, NOW)


def test_an_unavailable_store_fails_every_call() -> None:
    """Reads raise MerchantStateUnavailableError (scoring: merchants unlabelled), writes MerchantStateWriteError."""
    store = UnavailableMerchantStore("no connection")
    with pytest.raises(MerchantStateUnavailableError):
        store.read(["m-1"])
    with pytest.raises(MerchantStateUnavailableError):
        store.read_progress()
    with pytest.raises(MerchantStateWriteError):
        store.write("m-1", state(1), None, NOW)


@pytest.mark.parametrize(
    ("env", "kind"),
    [
        ({"BEHAVIOUR_STATE": "memory"}, MemoryMerchantStore),
        ({"BEHAVIOUR_STATE": "off"}, type(None)),
        ({"BEHAVIOUR_STATE": "off", "MERCHANT_STATE": "memory"}, MemoryMerchantStore),
        ({"BEHAVIOUR_STATE": "memory", "MERCHANT_STATE": "cosmos"}, UnavailableMerchantStore),
        ({"BEHAVIOUR_STATE": "memory", "MERCHANT_STATE": "off"}, type(None)),
    ],
)
def test_the_setting_chooses_the_store(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], kind: type) -> None:
    """MERCHANT_STATE picks the store (unset: as BEHAVIOUR_STATE); cosmos without a connection is unavailable."""
    monkeypatch.delenv("MERCHANT_STATE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    caches.reset_all()
    store = get_merchant_store()
    assert type(store) is kind
    if isinstance(store, UnavailableMerchantStore):
        assert "MERCHANT_STATE=cosmos needs CosmosDBConnection" in store.reason
        with pytest.raises(MerchantStateUnavailableError):
            store.read(["m-1"])
    elif store is not None:
        assert get_merchant_store() is store
