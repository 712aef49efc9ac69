"""Exact tree SHAP per contract field from per-tree lookup tables, equal to XGBoost's `pred_contribs`.

XGBoost's `pred_contribs` is path-dependent TreeSHAP. For one tree, a row's SHAP values depend on
the row only through that tree's split decisions (left or right at each split), so a tree with k
splits has at most 2**k distinct SHAP vectors. For the shallow trees the model uses (k <= 8) we
compute all of them once, when the model loads, already summed per contract field; explaining a row
then costs k comparisons and one table row per tree instead of XGBoost's per-row TreeSHAP walk
(measured in benchmarks/README.md). The tables are derived from the loaded booster's own dump, so
they cannot drift from the model; tests compare them with `pred_contribs` on unseen events.

How a table entry is computed: each leaf with value v contributes the product game
f(S) = v * prod over the distinct features j on its path of (o_j if j in S else z_j), where z_j is
the product of the cover fractions of the path's splits on j and o_j is 1 if the row takes the
path's direction at every split on j, else 0. That is exactly the cover-weighted expectation
TreeSHAP explains, and a product game's Shapley values have a closed form:

    phi_j = v * (o_j - z_j) * sum over S within D minus j of |S|! (|D|-|S|-1)! / |D|! * prod_S o * prod_rest z

Leaves with shorter paths are padded with null players (o = z = 1), which leaves every other
player's Shapley value unchanged, so all leaves share one vectorised formula.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

MAX_SPLITS_PER_TREE: Final = 8
"""Trees with more splits than this are not tabulated (2**8 patterns, one byte of decisions per tree)."""


@dataclass(frozen=True)
class ShapTables:
    """Per tree: its split columns and thresholds, its leaf value and per-field SHAP values for every decision pattern.

    The leaf values make the tables a predictor too: one row's margin is the base margin plus, per
    tree, the leaf its decision pattern reaches. For shallow trees that is a few NumPy passes over
    the batch, without XGBoost's per-call overhead (about 0.15 ms, most of a small batch).
    """

    split_columns: np.ndarray  # (splits * trees,) intp, slot-major; padding slots point at column 0
    split_thresholds: np.ndarray  # (splits * trees, 1) float32; NaN on padding, so that decision is always 0
    table: np.ndarray  # (trees * 2**splits, fields) float64
    row_offsets: np.ndarray  # (trees, 1) intp: first table row of each tree
    leaf_values: np.ndarray | None = None
    """(trees * 2**splits,) float32: the leaf each pattern reaches; None if the tables cannot predict."""
    base_margin: float = 0.0
    """The model's base score as a margin (log-odds), where XGBoost starts every row's sum."""

    def patterns(self, x: np.ndarray) -> np.ndarray:
        """Each tree's decision pattern per row as a table row index: (trees, rows) intp."""
        n_trees = self.row_offsets.shape[0]
        # Trees along the first axis throughout, so sums over trees run over contiguous rows.
        columns = np.ascontiguousarray(x.T)
        # XGBoost sends a row left when value < split condition, compared in float32 as here.
        left = (columns.take(self.split_columns, axis=0) < self.split_thresholds).view(np.uint8)
        bits = left.reshape(-1, n_trees, x.shape[0])
        pattern = bits[0].copy()
        for bit in range(1, bits.shape[0]):
            pattern |= bits[bit] << bit
        offsets: np.ndarray = pattern + self.row_offsets
        return offsets

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probability per row of an encoded float32 matrix, as XGBoost computes it (float32 throughout)."""
        if self.leaf_values is None:
            raise ValueError("these tables cannot predict (not a binary:logistic model)")
        leaves = self.leaf_values.take(self.patterns(x))
        # XGBoost adds the trees' leaves to the base margin one tree at a time, in float32. A sum
        # over the first axis of a C-ordered array adds row after row in that same order, except
        # for a single row, which NumPy sums pairwise as one contiguous vector; cumsum never does.
        leaves[0] += np.float32(self.base_margin)  # a float32 by construction: adding it rounds nothing
        margin: np.ndarray = leaves.sum(axis=0) if leaves.shape[1] > 1 else np.cumsum(leaves, axis=0)[-1]
        return sigmoid(margin)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per-field SHAP values (rows x fields) for the rows of an encoded float32 matrix."""
        n, n_trees, n_fields = x.shape[0], self.row_offsets.shape[0], self.table.shape[1]
        picked = np.take(self.table, self.patterns(x).ravel(), axis=0).reshape(n_trees, n * n_fields)
        summed: np.ndarray = picked.sum(axis=0).reshape(n, n_fields)
        return summed


# glibc's expf (x86-64 and arm64 since glibc 2.28): exp(x) = 2^(k/32) * 2^(r/32) with k = round(x * 32 / ln 2),
# 2^(k/32) from a 32-entry table and 2^(r/32) from a cubic in double precision, rounded once to float.
# NumPy's own float32 exp is a different (SIMD) approximation and differs from it by an ulp in about
# a third of our scores; with this one, a probability is bit for bit what XGBoost computes.
_EXP2_TABLE: Final = np.array(
    [np.float64(2.0 ** (i / 32)).view(np.uint64) - np.uint64(i << 47) for i in range(32)], dtype=np.uint64
)
_EXP_POLY: Final = (  # glibc's minimax coefficients of 2^(r/32) - 1 (e_exp2f_data.c), scaled for r in 1/32 steps
    float.fromhex("0x1.c6af84b912394p-5") / 32**3,
    float.fromhex("0x1.ebfce50fac4f3p-3") / 32**2,
    float.fromhex("0x1.62e42ff0c52d6p-1") / 32,
)
_INV_LN2_32: Final = float.fromhex("0x1.71547652b82fep+0") * 32


def expf(x: np.ndarray) -> np.ndarray:
    """e**x for float32 values at most 88.7, rounded exactly as glibc's `expf` rounds it (float32 out)."""
    z = x.astype(np.float64) * _INV_LN2_32
    k = np.rint(z)
    r = z - k
    ki = k.astype(np.int64)
    scale = (_EXP2_TABLE[ki & 31] + (ki << 47).view(np.uint64)).view(np.float64)
    c0, c1, c2 = _EXP_POLY
    y = (c0 * r + c1) * (r * r) + (c2 * r + 1.0)
    y *= scale
    rounded: np.ndarray = y.astype(np.float32)
    return rounded


def sigmoid(margin: np.ndarray) -> np.ndarray:
    """XGBoost's logistic transform of float32 margins, bit for bit: 1 / (1 + expf(min(-x, 88.7))) in float32."""
    exponent = np.minimum(-margin, np.float32(88.7))
    denominator = expf(exponent)
    denominator += np.float32(1.0)
    probability: np.ndarray = np.reciprocal(denominator, out=denominator)
    return probability


@dataclass(frozen=True)
class _Leaf:
    tree: int
    value: float
    steps: tuple[tuple[int, int, int, float], ...]  # (split slot, went left, feature, cover fraction)


def _leaves(tree: Mapping[str, Any], index: int) -> tuple[list[_Leaf], int] | None:
    left, right = tree["left_children"], tree["right_children"]
    features, conditions, cover = tree["split_indices"], tree["split_conditions"], tree["sum_hessian"]
    splits = [node for node, child in enumerate(left) if child != -1]
    if len(splits) > MAX_SPLITS_PER_TREE or any(tree.get("split_type", [])):
        return None
    slot = {node: i for i, node in enumerate(splits)}
    leaves: list[_Leaf] = []
    stack: list[tuple[int, tuple[tuple[int, int, int, float], ...]]] = [(0, ())]
    while stack:
        node, path = stack.pop()
        if left[node] == -1:
            leaves.append(_Leaf(index, float(conditions[node]), path))
            continue
        for child, went_left in ((left[node], 1), (right[node], 0)):
            step = (slot[node], went_left, int(features[node]), float(cover[child]) / float(cover[node]))
            stack.append((child, (*path, step)))
    return leaves, len(splits)


def _shapley_weights(players: int) -> np.ndarray:
    f = math.factorial
    return np.array([f(k) * f(players - k - 1) / f(players) for k in range(players)], dtype=np.float64)


def build_tables(model: Mapping[str, Any], column_field: Sequence[int], n_fields: int) -> ShapTables | None:
    """Tabulate exact SHAP per field for every tree of an XGBoost JSON model; None if it does not fit.

    `column_field[c]` is the field index of matrix column c (one-hot columns share their field).
    Returns None for models this does not cover (deep trees, categorical splits, several outputs),
    so the caller can fall back to XGBoost's own `pred_contribs`.
    """
    learner = model["learner"]
    booster = learner["gradient_booster"]
    if booster.get("name") != "gbtree" or int(learner["learner_model_param"].get("num_target", "1")) != 1:
        return None
    if int(learner["learner_model_param"].get("num_class", "0")) > 1:
        return None
    trees = booster["model"]["trees"]
    leaves: list[_Leaf] = []
    n_splits = 1
    for index, tree in enumerate(trees):
        parsed = _leaves(tree, index)
        if parsed is None:
            return None
        leaves.extend(parsed[0])
        n_splits = max(n_splits, parsed[1])

    n_trees, n_leaves = len(trees), len(leaves)
    depth = max([len(leaf.steps) for leaf in leaves] + [1])
    step_slot = np.zeros((n_leaves, depth), dtype=np.int64)
    step_left = np.zeros((n_leaves, depth), dtype=np.int64)
    step_real = np.zeros((n_leaves, depth), dtype=bool)
    step_player = np.zeros((n_leaves, depth), dtype=np.intp)
    player_z = np.ones((n_leaves, depth), dtype=np.float64)
    player_field = np.zeros((n_leaves, depth), dtype=np.intp)
    for i, leaf in enumerate(leaves):
        players: dict[int, int] = {}
        for s, (split, went_left, feature, fraction) in enumerate(leaf.steps):
            # A feature split on twice along the path is one player with the product of fractions.
            j = players.setdefault(feature, len(players))
            step_slot[i, s], step_left[i, s], step_real[i, s], step_player[i, s] = split, went_left, True, j
            player_z[i, j] *= fraction
            player_field[i, j] = column_field[feature]

    patterns = np.arange(1 << n_splits, dtype=np.int64)
    followed = ((patterns >> step_slot[..., None]) & 1) == step_left[..., None]  # (leaves, depth, patterns)
    followed |= ~step_real[..., None]
    one = np.ones((n_leaves, depth, patterns.size), dtype=bool)
    rows = np.arange(n_leaves)
    for s in range(depth):
        one[rows, step_player[:, s]] &= followed[:, s]
    o = one.astype(np.float64)
    z = player_z[..., None]
    weights = _shapley_weights(depth)
    values = np.array([leaf.value for leaf in leaves], dtype=np.float64)[:, None]
    phi = np.empty_like(o)
    for j in range(depth):
        # Coefficients of prod over the other players of (z_i + o_i t); term k weighs coalitions of size k.
        poly = [np.ones_like(o[:, 0])]
        for i in range(depth):
            if i == j:
                continue
            nxt = [poly[0] * z[:, i]]
            nxt += [poly[k] * z[:, i] + poly[k - 1] * o[:, i] for k in range(1, len(poly))]
            nxt.append(poly[-1] * o[:, i])
            poly = nxt
        phi[:, j] = values * (o[:, j] - z[:, j]) * sum(w * p for w, p in zip(weights, poly, strict=True))

    tree_of = np.array([leaf.tree for leaf in leaves], dtype=np.intp)
    acc = np.zeros((n_trees * n_fields, patterns.size), dtype=np.float64)
    np.add.at(acc, (tree_of[:, None] * n_fields + player_field).ravel(), phi.reshape(-1, patterns.size))
    table = np.ascontiguousarray(acc.reshape(n_trees, n_fields, patterns.size).transpose(0, 2, 1))

    split_columns = np.zeros((n_splits, n_trees), dtype=np.intp)
    split_thresholds = np.full((n_splits, n_trees), np.nan, dtype=np.float32)
    for index, tree in enumerate(trees):
        nodes = [node for node, child in enumerate(tree["left_children"]) if child != -1]
        for bit, node in enumerate(nodes):
            split_columns[bit, index] = tree["split_indices"][node]
            split_thresholds[bit, index] = tree["split_conditions"][node]

    base_margin = _logistic_base_margin(learner)
    leaf_values = None
    if base_margin is not None:
        # Every pattern reaches exactly one leaf of its tree: the one whose every step it follows.
        reached_leaf, reached_pattern = np.nonzero(followed.all(axis=1))
        by_pattern = np.zeros((n_trees, patterns.size), dtype=np.float32)
        by_pattern[tree_of[reached_leaf], reached_pattern] = values[reached_leaf, 0]  # leaf values are float32
        leaf_values = by_pattern.ravel()
    return ShapTables(
        split_columns=split_columns.ravel(),
        split_thresholds=split_thresholds.reshape(-1, 1),
        table=table.reshape(n_trees * patterns.size, n_fields),
        row_offsets=np.arange(n_trees, dtype=np.intp)[:, None] * patterns.size,
        leaf_values=leaf_values,
        base_margin=0.0 if base_margin is None else float(base_margin),
    )


def _logistic_base_margin(learner: Mapping[str, Any]) -> np.float32 | None:
    """The base score as a float32 margin for binary:logistic models (None for any other objective)."""
    if learner.get("objective", {}).get("name") != "binary:logistic":
        return None
    raw = str(learner["learner_model_param"].get("base_score", "")).strip("[]").split(",")
    if len(raw) != 1:
        return None
    p = np.float32(float(raw[0]))
    # XGBoost's ProbToMargin for the logistic loss, in float32: -log(1 / p - 1).
    one = np.float32(1.0)
    return np.float32(-np.log(one / p - one))
