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
    """Per tree: its split columns and thresholds, and per-field SHAP values for every decision pattern."""

    split_columns: np.ndarray  # (splits, trees) intp; padding slots point at column 0
    split_thresholds: np.ndarray  # (splits, trees, 1) float32; NaN on padding, so that decision is always 0
    table: np.ndarray  # (trees * 2**splits, fields) float64
    row_offsets: np.ndarray  # (trees, 1) intp: first table row of each tree

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per-field SHAP values (rows x fields) for the rows of an encoded float32 matrix."""
        n, n_trees = x.shape[0], self.row_offsets.shape[0]
        # Trees along the first axis throughout, so the final sum over trees runs over contiguous rows.
        columns = np.ascontiguousarray(x.T)
        # XGBoost sends a row left when value < split condition, compared in float32 as here.
        pattern = (columns[self.split_columns[0]] < self.split_thresholds[0]).astype(np.intp)
        for bit in range(1, self.split_columns.shape[0]):
            pattern |= (columns[self.split_columns[bit]] < self.split_thresholds[bit]).astype(np.intp) << bit
        pattern += self.row_offsets
        picked = np.take(self.table, pattern.ravel(), axis=0).reshape(n_trees, n * self.table.shape[1])
        summed: np.ndarray = picked.sum(axis=0).reshape(n, self.table.shape[1])
        return summed


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
    return ShapTables(
        split_columns=split_columns,
        split_thresholds=split_thresholds[..., None],
        table=table.reshape(n_trees * patterns.size, n_fields),
        row_offsets=np.arange(n_trees, dtype=np.intp)[:, None] * patterns.size,
    )
