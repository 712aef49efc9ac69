"""Typed application settings, read once from the environment.

Binding settings (`EVENT_HUB_NAME`, `COSMOS_DATABASE`, the `...Connection` prefixes) are resolved by
the Functions host through the `%SETTING%` syntax and never read here; this object only holds what
the Python code itself decides with.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from shared import caches
from shared.behaviour import merchants

KEY_VAULT_REFERENCE_PREFIX = "@Microsoft.KeyVault("
EVENT_HUBS_MAX_EVENT_BYTES = 1_048_576
"""The largest event a Standard or Premium Event Hubs namespace accepts (1 MB): the ceiling for envelopes."""
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "model"
STORES = ("cosmos", "memory", "off")
"""Where a state store keeps its documents (BEHAVIOUR_STATE, LABEL_STORE, MERCHANT_STATE)."""


class SettingsError(ValueError):
    """A setting is present but unusable; the message names it."""


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be within [{low}, {high}], got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float | None, low: float, high: float) -> float | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be within [{low:g}, {high:g}], got {value:g}")
    return value


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = env.get(name, "").strip().lower() or default
    if raw not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _optional_str(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    return raw or None


@dataclass(frozen=True)
class Settings:
    """Everything the app's Python code reads from app settings, parsed and range-checked."""

    # Generator
    max_generate_count: int = 1000
    """Upper bound for `count` on POST /api/transactions (GENERATE_MAX_COUNT)."""
    fraud_rate: float = 0.10
    """Share of generated transactions that are fraudulent (GENERATOR_FRAUD_RATE)."""
    generator_seed: int | None = None
    """Seed for reproducible generation; unset means fresh randomness per call (GENERATOR_SEED)."""
    timer_count: int = 0
    """Transactions per timer tick; 0 keeps the timer generator off (GENERATOR_TIMER_COUNT)."""
    records_per_event: int = 1
    """Transactions packed into one Event Hubs event by the generators (GENERATOR_RECORDS_PER_EVENT).
    1 sends bare transactions, as every producer did before envelopes; above 1, `{"records": [...]}`
    envelopes, each kept under the 1 MB event limit (README: envelopes)."""
    generator_sender: str = "sdk"
    """How the generators send (GENERATOR_SENDER): `sdk`, with the azure-eventhub producer, each account's
    transactions to the partition partition key = account_id gives (shared/generation/sender.py), so the
    scorer sees an account in order; or `binding`, the Event Hubs output binding, which cannot choose a
    partition (the host spreads events over all of them)."""
    event_hub_partition_count: int = 4
    """Partitions of the event hub (EVENT_HUB_PARTITION_COUNT, infra's default 4): the generators put
    only accounts of one partition in an envelope, as partition key = account_id would place them."""

    # Scoring
    model_dir: Path = DEFAULT_MODEL_DIR
    """Folder holding the artifact and its metadata (MODEL_DIR)."""
    threshold_override: float | None = None
    """Decision threshold overriding the one stored in the model metadata (FRAUD_THRESHOLD)."""
    max_event_bytes: int = EVENT_HUBS_MAX_EVENT_BYTES
    """Largest event body scored (MAX_EVENT_BYTES); a larger one is one `too_large` rejection. The default
    is what Event Hubs itself accepts, so only a producer bypassing Event Hubs can exceed it."""
    max_records_per_envelope: int = 5000
    """Most records one envelope may hold (MAX_RECORDS_PER_ENVELOPE); more is one `too_many_records`
    rejection for the envelope. It bounds one event's share of an invocation: a 1 MB envelope of
    minimal JSON values could otherwise hold ~500,000 records."""
    max_transactions_per_invocation: int = 50_000
    """Most transactions one invocation scores (MAX_TRANSACTIONS_PER_INVOCATION). Events past it (counted
    in transactions, envelopes whole) are rejected as `invocation_limit` with their raw bodies, to be
    re-driven: it bounds an invocation's memory (README: Reliability), which a batch of 100 envelopes of
    5,000 records would otherwise take past a 2,048 MB instance."""
    event_time_max_late_hours: int = 720
    """How long before its enqueued time an event may be dated (EVENT_TIME_MAX_LATE_HOURS, default 30
    days, the behaviour horizon); earlier is rejected as `timestamp:too_late`. With the early bound it
    keeps account states bounded in time: a payment dated 0001-01-01 would otherwise pin a state open."""
    event_time_max_early_hours: int = 8784
    """How far after its enqueued time an event may be dated (EVENT_TIME_MAX_EARLY_HOURS, default 366
    days); later is `timestamp:too_early`. Generous because the generator's event time runs at its
    population's pace, days ahead of the wall clock in a fast demo (shared/generation/generator.py)."""
    score_api_reason_figures: bool = False
    """SCORE_API_REASON_FIGURES=on lets POST /api/score reasons quote the account's stored figures
    (amounts, balance shares); off (the default), they say what was unusual without them (README)."""
    fast_enqueued_time: bool = True
    """Parse Event Hubs enqueued times with `functions.eventhub_time` instead of azure-functions' dozen
    `strptime` attempts (ENQUEUED_TIME_PARSER=fast|library); `library` switches the override off."""

    # Per-account behaviour state (shared/behaviour/store.py)
    behaviour_state: str = "cosmos"
    """Where each account's recent payments live between batches (BEHAVIOUR_STATE): `cosmos` (the
    `profiles` container, read with the SDK and written by the output binding; exact under replays,
    restarts and partition moves), `memory` (this process only: local runs) or `off` (history unknown)."""
    cosmos_database: str = "fraud"
    """The Cosmos DB database (COSMOS_DATABASE), as the bindings name it."""
    profiles_container: str = "profiles"
    """The container of per-account states, partition key /account_id (COSMOS_PROFILES_CONTAINER)."""

    # Confirmed outcomes and merchant risk (shared/labels/, shared/behaviour/merchant_store.py)
    merchant_risk_delay_days: int = merchants.DEFAULT_DELAY_DAYS
    """Whole days between a label becoming known and its use in merchant features (MERCHANT_RISK_DELAY_DAYS,
    0..`merchants.MAX_DELAY_DAYS`, default 7 as the ULB handbook's delay period)."""
    label_store: str = "cosmos"
    """Where POST /api/labels keeps labels (LABEL_STORE): `cosmos` (the `labels` container), `memory` (this
    process: local runs) or `off` (the endpoint answers 503 `label_store_off`). Unset: as BEHAVIOUR_STATE."""
    merchant_state: str = "cosmos"
    """Where merchant risk states live (MERCHANT_STATE): `cosmos` (the `merchants` container), `memory` or
    `off` (every merchant scored as unlabelled). Unset: as BEHAVIOUR_STATE, so a local run with memory
    behaviour keeps its merchants in memory too."""
    labels_container: str = "labels"
    """The container of labels, partition key /id = transaction id (COSMOS_LABELS_CONTAINER)."""
    merchants_container: str = "merchants"
    """The container of merchant states and the aggregation's progress, partition key /id
    (COSMOS_MERCHANTS_CONTAINER)."""

    # Publishing
    powerbi_push_url: str | None = None
    """Push URL of the Power BI streaming/push dataset; unset disables publishing (POWERBI_PUSH_URL)."""
    powerbi_timeout_s: float = 10.0
    """Per-request timeout for Power BI (POWERBI_TIMEOUT_SECONDS)."""
    powerbi_flagged_only: bool = False
    """POWERBI_PUBLISH=flagged pushes only flagged rows: a push dataset takes at most 1,000,000 rows an
    hour (~278/s), so above a few hundred transactions per second all rows cannot fit (docs/deploy.md)."""
    powerbi_url_unresolved: bool = False
    """POWERBI_PUSH_URL still holds a `@Microsoft.KeyVault(...)` reference: the platform could not resolve
    it (usually the app's identity lacks Key Vault Secrets User). Publishing stays off; scoring is unaffected."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Parse settings from a mapping (the process environment in production, a dict in tests)."""
        fraud_rate = _float(env, "GENERATOR_FRAUD_RATE", 0.10, 0.0, 1.0)
        timeout = _float(env, "POWERBI_TIMEOUT_SECONDS", 10.0, 0.1, 120.0)
        seed_raw = _optional_str(env, "GENERATOR_SEED")
        model_dir = _optional_str(env, "MODEL_DIR")
        push_url = _optional_str(env, "POWERBI_PUSH_URL")
        unresolved = push_url is not None and push_url.startswith(KEY_VAULT_REFERENCE_PREFIX)
        behaviour_state = _choice(env, "BEHAVIOUR_STATE", STORES, "cosmos")
        return cls(
            max_generate_count=_int(env, "GENERATE_MAX_COUNT", 1000, 1, 100_000),
            fraud_rate=0.10 if fraud_rate is None else fraud_rate,
            generator_seed=None if seed_raw is None else _int(env, "GENERATOR_SEED", 0, 0, 2**63 - 1),
            timer_count=_int(env, "GENERATOR_TIMER_COUNT", 0, 0, 100_000),
            records_per_event=_int(env, "GENERATOR_RECORDS_PER_EVENT", 1, 1, 2000),
            generator_sender=_choice(env, "GENERATOR_SENDER", ("sdk", "binding"), "sdk"),
            event_hub_partition_count=_int(env, "EVENT_HUB_PARTITION_COUNT", 4, 1, 1024),
            model_dir=Path(model_dir) if model_dir else DEFAULT_MODEL_DIR,
            threshold_override=_float(env, "FRAUD_THRESHOLD", None, 0.0, 1.0),
            max_event_bytes=_int(env, "MAX_EVENT_BYTES", EVENT_HUBS_MAX_EVENT_BYTES, 1024, EVENT_HUBS_MAX_EVENT_BYTES),
            max_records_per_envelope=_int(env, "MAX_RECORDS_PER_ENVELOPE", 5000, 1, 100_000),
            max_transactions_per_invocation=_int(env, "MAX_TRANSACTIONS_PER_INVOCATION", 50_000, 1, 500_000),
            event_time_max_late_hours=_int(env, "EVENT_TIME_MAX_LATE_HOURS", 720, 1, 876_000),
            event_time_max_early_hours=_int(env, "EVENT_TIME_MAX_EARLY_HOURS", 8784, 0, 876_000),
            score_api_reason_figures=_choice(env, "SCORE_API_REASON_FIGURES", ("off", "on"), "off") == "on",
            fast_enqueued_time=_choice(env, "ENQUEUED_TIME_PARSER", ("fast", "library"), "fast") == "fast",
            behaviour_state=behaviour_state,
            cosmos_database=_optional_str(env, "COSMOS_DATABASE") or "fraud",
            profiles_container=_optional_str(env, "COSMOS_PROFILES_CONTAINER") or "profiles",
            merchant_risk_delay_days=_int(
                env, "MERCHANT_RISK_DELAY_DAYS", merchants.DEFAULT_DELAY_DAYS, 0, merchants.MAX_DELAY_DAYS
            ),
            label_store=_choice(env, "LABEL_STORE", STORES, behaviour_state),
            merchant_state=_choice(env, "MERCHANT_STATE", STORES, behaviour_state),
            labels_container=_optional_str(env, "COSMOS_LABELS_CONTAINER") or "labels",
            merchants_container=_optional_str(env, "COSMOS_MERCHANTS_CONTAINER") or "merchants",
            powerbi_push_url=None if unresolved else push_url,
            powerbi_url_unresolved=unresolved,
            powerbi_timeout_s=10.0 if timeout is None else timeout,
            powerbi_flagged_only=_choice(env, "POWERBI_PUBLISH", ("all", "flagged"), "all") == "flagged",
        )


@cache
def get_settings() -> Settings:
    """The process-wide settings, parsed on first use (not at import, so indexing never fails on them)."""
    return Settings.from_env(os.environ)


caches.register("settings", get_settings.cache_clear)
