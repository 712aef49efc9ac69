"""Feature encoding shared by training and serving: contract columns and behaviour in, float32 matrix out.

The layout follows the seed's recipe, in this column order:
one-hot `month, day_of_week, category_recipient, transaction_method` (categories from the contract),
ordinal `transaction_type`, standardised `amount, old_balance, income`, passthrough
`credit, marital_status, children, foreign_transaction`; then the behavioural features of
`shared/behaviour/features.py` as they are (`behaviour.FEATURES` order), then the merchant's risk
(`shared/behaviour/merchants.py`; zeros, "nothing known", when absent). When the columns carry no
behavioural features (a caller without account history), they are filled with the values of an
account's first payment, which the model saw in training: "history unknown" is scored, not refused.

Training fits a scikit-learn ColumnTransformer with the same layout and copies its fitted scaler
parameters into a `FeatureSpec`; serving encodes with NumPy only, so the Azure deployment needs
neither scikit-learn nor pandas. `model/training/` checks that both encodings agree bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.behaviour import features as behaviour
from shared.behaviour import merchants
from shared.contract import schema as c

ONE_HOT_WIDTHS: tuple[int, ...] = tuple(len(c.CATEGORIES[f]) for f in c.ONE_HOT_FIELDS)
N_ONE_HOT = sum(ONE_HOT_WIDTHS)
TYPE_COLUMN = N_ONE_HOT
CONTINUOUS_COLUMNS = slice(N_ONE_HOT + 1, N_ONE_HOT + 1 + len(c.CONTINUOUS_FIELDS))
PASSTHROUGH_START = CONTINUOUS_COLUMNS.stop
BEHAVIOUR_START = PASSTHROUGH_START + len(c.PASSTHROUGH_FIELDS)
N_STATIC_FEATURES = BEHAVIOUR_START
"""The seed's columns: the static model, and the first part of every matrix."""
CONTEXT_FEATURES = (*behaviour.FEATURES, *merchants.FEATURES)
"""What the seed's fields cannot say: the account's behaviour, then its merchant's risk, in matrix order."""
MERCHANT_START = BEHAVIOUR_START + len(behaviour.FEATURES)
N_FEATURES = BEHAVIOUR_START + len(CONTEXT_FEATURES)


def feature_names() -> list[str]:
    """Column names in matrix order; one-hot columns are named `field=value`."""
    names = [f"{f}={v}" for f in c.ONE_HOT_FIELDS for v in c.CATEGORIES[f]]
    names.append(c.LABEL_ENCODED_FIELD)
    names.extend(c.CONTINUOUS_FIELDS)
    names.extend(c.PASSTHROUGH_FIELDS)
    names.extend(CONTEXT_FEATURES)
    return names


def source_fields() -> list[str]:
    """For each matrix column, the contract field it came from (folds one-hot columns back)."""
    fields = [f for f in c.ONE_HOT_FIELDS for _ in c.CATEGORIES[f]]
    fields.append(c.LABEL_ENCODED_FIELD)
    fields.extend(c.CONTINUOUS_FIELDS)
    fields.extend(c.PASSTHROUGH_FIELDS)
    fields.extend(CONTEXT_FEATURES)
    return fields


@dataclass(frozen=True)
class FeatureSpec:
    """The fitted part of the encoding: standard-scaler mean and scale for the continuous fields."""

    mean: tuple[float, float, float]
    scale: tuple[float, float, float]

    def to_dict(self) -> dict[str, Any]:
        return {"mean": list(self.mean), "scale": list(self.scale), "feature_names": feature_names()}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FeatureSpec:
        if list(raw["feature_names"]) != feature_names():
            raise ValueError("feature order in the artifact does not match this code's contract")
        mean, scale = tuple(float(x) for x in raw["mean"]), tuple(float(x) for x in raw["scale"])
        if len(mean) != 3 or len(scale) != 3:
            raise ValueError("scaler parameters must have one value per continuous field")
        return cls(mean=(mean[0], mean[1], mean[2]), scale=(scale[0], scale[1], scale[2]))


def encode(columns: Mapping[str, Sequence[Any] | np.ndarray], spec: FeatureSpec) -> np.ndarray:
    """Encode contract columns into the model's float32 matrix.

    `columns` maps every feature field to a sequence: floats for continuous fields, ints for
    passthrough fields, and category *codes* (indexes into `contract.CATEGORIES[field]`) for the
    categorical ones; `month` is given as its code too (month - 1). It may also map every name in
    `behaviour.FEATURES` to that feature's values (`behaviour_columns`); without them, history is
    taken as unknown.
    """
    n = len(columns["amount"])
    x = np.zeros((n, N_FEATURES), dtype=np.float32)
    rows = np.arange(n)
    offset = 0
    for field, width in zip(c.ONE_HOT_FIELDS, ONE_HOT_WIDTHS, strict=True):
        x[rows, offset + np.asarray(columns[field], dtype=np.intp)] = 1.0
        offset += width
    x[:, TYPE_COLUMN] = np.asarray(columns[c.LABEL_ENCODED_FIELD], dtype=np.float32)
    continuous = np.column_stack([np.asarray(columns[f], dtype=np.float64) for f in c.CONTINUOUS_FIELDS])
    # Same float64 arithmetic as StandardScaler.transform, then one rounding to float32 as XGBoost does.
    continuous -= np.asarray(spec.mean)
    continuous /= np.asarray(spec.scale)
    x[:, CONTINUOUS_COLUMNS] = continuous
    for j, field in enumerate(c.PASSTHROUGH_FIELDS):
        x[:, PASSTHROUGH_START + j] = np.asarray(columns[field], dtype=np.float32)
    if all(name in columns for name in behaviour.FEATURES):
        for j, name in enumerate(behaviour.FEATURES):
            x[:, BEHAVIOUR_START + j] = np.asarray(columns[name], dtype=np.float64)
    else:
        x[:, BEHAVIOUR_START:MERCHANT_START] = behaviour.no_history(columns)
    # Without merchant features the columns stay 0: no labels known for the merchant, as for a new one.
    if all(name in columns for name in merchants.FEATURES):
        for j, name in enumerate(merchants.FEATURES):
            x[:, MERCHANT_START + j] = np.asarray(columns[name], dtype=np.float64)
    return x


def behaviour_columns(values: np.ndarray) -> dict[str, np.ndarray]:
    """Behavioural features (rows x `behaviour.FEATURES`, as `behaviour` computes them) as `encode`'s columns."""
    return {name: values[:, j] for j, name in enumerate(behaviour.FEATURES)}


def merchant_columns(values: np.ndarray) -> dict[str, np.ndarray]:
    """Merchant features (rows x `merchants.FEATURES`) as `encode`'s columns."""
    return {name: values[:, j] for j, name in enumerate(merchants.FEATURES)}


def transactions_to_columns(transactions: Sequence[c.Transaction]) -> dict[str, list[Any]]:
    """Turn validated transactions into the column form `encode` takes."""
    return {field: [getattr(t, field) for t in transactions] for field in c.FEATURE_FIELDS}
