"""Contract records from simulated columns: seeded transaction ids, timestamps, category values and merchants."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from shared.contract import schema as c
from shared.contract import timestamps
from shared.generation.payments import Columns


def uuids(rng: np.random.Generator, n: int) -> list[str]:
    """`n` version-4 UUIDs from a seeded stream, so a seeded run (and its replay) yields the same ids."""
    raw = rng.bytes(16 * n)
    return [str(uuid.UUID(bytes=raw[i : i + 16], version=4)) for i in range(0, 16 * n, 16)]


def records(columns: Columns, ids: Sequence[str], account_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Contract records (categories as their values) from simulated columns, with `merchant_id` if they have it."""
    stamps = timestamps.format_many(columns["t_ms"])
    months, days, recips = c.MONTHS, c.DAYS_OF_WEEK, c.CATEGORY_RECIPIENTS
    types, methods = c.TRANSACTION_TYPES, c.TRANSACTION_METHODS
    out = [
        {
            "id": id_,
            "timestamp": stamp,
            "account_id": account,
            "amount": amount,
            "old_balance": balance,
            "income": income,
            "credit": credit,
            "marital_status": marital,
            "children": children,
            "month": months[month],
            "day_of_week": days[day],
            "category_recipient": recips[recip],
            "transaction_type": types[ttype],
            "transaction_method": methods[method],
            "foreign_transaction": foreign,
            "is_fraud": label,
        }
        for (
            id_,
            stamp,
            account,
            amount,
            balance,
            income,
            credit,
            marital,
            children,
            month,
            day,
            recip,
            ttype,
            method,
            foreign,
            label,
        ) in zip(
            ids,
            stamps,
            account_ids,
            columns["amount"].tolist(),
            columns["old_balance"].tolist(),
            columns["income"].tolist(),
            columns["credit"].tolist(),
            columns["marital_status"].tolist(),
            columns["children"].tolist(),
            columns["month"].tolist(),
            columns["day_of_week"].tolist(),
            columns["category_recipient"].tolist(),
            columns["transaction_type"].tolist(),
            columns["transaction_method"].tolist(),
            columns["foreign_transaction"].tolist(),
            columns["is_fraud"].tolist(),
            strict=True,
        )
    ]
    if c.MERCHANT_FIELD in columns:
        for record, merchant in zip(out, columns[c.MERCHANT_FIELD].tolist(), strict=True):
            record[c.MERCHANT_FIELD] = merchant
    return out
