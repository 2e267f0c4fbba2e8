"""Exact batch scoring and learning for River's Half-Space Trees, vectorised with numpy.

River's ``anomaly.HalfSpaceTrees`` stays the model's state (checkpoints pickle it unchanged):
:class:`BatchHalfSpaceTrees` mirrors its trees in flat arrays, routes a whole batch through
every tree at once, and writes the learned masses back into River's nodes after each call,
so River's own ``score_one`` / ``learn_one`` carry on exactly where a batch left off (a
single event is cheaper through River itself; the arrays catch up on the next batch).

Why it is exact: a score depends only on the reference masses (``r_mass``), and those change
only at a window pivot, which happens after every ``window_size``-th *learned* event. So a
batch is cut into chunks that cannot contain a pivot before their last event: a chunk is
scored with the masses in force, the caller decides which of its events are learned (alerts
are not), those are learned, and the window pivots if it is full. Within a tree every path
ends at a distinct leaf, so a tree's contribution to the score is a per-leaf table,
recomputed only at pivots. All masses are integers and the sums stay far below 2**53, so the
float arithmetic is River's, bit for bit.

Relies on River's internals as of :data:`RIVER_CHECKED` (see ``tests/unit/core/test_batch_hst.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from river import anomaly

# The River release whose HalfSpaceTrees internals (attributes, walk and pivot) this mirrors.
RIVER_CHECKED = "0.26.1"

# Below this many events River's own loop beats numpy's fixed cost per call (measured at 25
# trees of height 5: a one-event vectorised call costs about 1.5 River events, B=2 already wins).
SMALL_BATCH = 2

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

LearnDecision = Callable[[int, FloatArray], BoolArray]
"""Given ``(start, scores)`` for events ``start .. start + len(scores) - 1``, which to learn.

Called on consecutive chunks that cover the batch in order, each event exactly once and with
its final score, so it may keep sequential state (an adaptive threshold, counters).
"""


class BatchResult(NamedTuple):
    """Scores of a batch, and which of its events were learned."""

    scores: FloatArray
    learned: BoolArray


class BatchHalfSpaceTrees:
    """Scores and learns batches of feature vectors exactly as River would, one at a time.

    ``X`` has one row per event and one column per name in ``feature_names`` (every feature
    the trees split on must be among them; rows are dense, River's missing-feature rule does
    not apply). Batches under ``small_batch`` events go through River's own methods. Changes
    made to ``model`` directly are picked up when they replace its trees or move its window
    counter; after any other outside change (say, exactly ``window_size`` events learned
    directly) call :meth:`refresh`.

    >>> from river import anomaly
    >>> hst = anomaly.HalfSpaceTrees(n_trees=3, height=2, window_size=2, seed=1)
    >>> batch = BatchHalfSpaceTrees(hst, ("a", "b"))
    >>> X = np.array([[0.1, 0.2], [0.2, 0.1], [0.9, 0.9], [0.15, 0.15]])
    >>> result = batch.score_and_learn(X, np.array([True, True, False, True]))
    >>> result.scores.round(3).tolist(), result.learned.tolist(), hst.counter
    ([0.0, 0.0, 0.81, 0.238], [True, True, False, True], 1)
    >>> round(hst.score_one({"a": 0.9, "b": 0.9}), 3)  # River carries on from the batch
    0.81
    """

    def __init__(
        self,
        model: anomaly.HalfSpaceTrees,
        feature_names: Sequence[str],
        small_batch: int = SMALL_BATCH,
    ) -> None:
        self.model = model
        self.feature_names = tuple(feature_names)
        self.small_batch = small_batch
        self._column = {name: i for i, name in enumerate(self.feature_names)}
        height = int(model.height)
        self._height = height
        self._window = int(model.window_size)
        self._n_leaves = 1 << height
        self._n_nodes = (1 << (height + 1)) - 1
        self._max_score = model._max_score
        # Heap order: node k has children 2k+1 and 2k+2; a leaf's path is fixed by the leaf.
        leaf_ids = np.arange(self._n_leaves - 1, self._n_nodes)
        levels = [leaf_ids]
        for _ in range(height):
            levels.append((levels[-1] - 1) // 2)
        self._leaf_paths = np.stack(levels[::-1], axis=1)  # (leaves, height + 1), root first
        self._depth_weights = np.left_shift(1, np.arange(height + 1, dtype=np.int64))
        self._trees: list[Any] | None = None
        self._counter = 0
        self._first_window = True
        # Rows River learned itself (small batches) that the arrays' l_mass still lacks.
        self._pending: list[FloatArray] = []
        self._stale = False
        self.refresh()

    def refresh(self) -> None:
        """Re-read the trees and masses from the River model (after changing it directly)."""
        model = self.model
        self._trees = model.trees
        self._counter = int(model.counter)
        self._first_window = bool(model._first_window)
        self._pending = []
        self._stale = False
        if not model.trees:
            self._nodes: list[Any] = []
            return
        nodes = [node for tree in model.trees for node in _heap_order(tree, self._n_nodes)]
        n_trees = len(model.trees)
        feature = np.zeros(len(nodes), dtype=np.intp)
        threshold = np.zeros(len(nodes), dtype=np.float64)
        for k, node in enumerate(nodes):
            if k % self._n_nodes < self._n_leaves - 1:
                if node.feature not in self._column:
                    raise ValueError(f"the trees split on {node.feature!r}, not a feature column")
                feature[k] = self._column[node.feature]
                threshold[k] = node.threshold
        self._nodes = nodes
        self._feature = feature
        self._threshold = threshold
        self._tree_nodes = (np.arange(n_trees, dtype=np.intp) * self._n_nodes)[None, :]
        self._tree_leaves = (np.arange(n_trees, dtype=np.intp) * self._n_leaves)[None, :]
        # Leaf id (tree * leaves + leaf) -> the flat indices of the nodes on its path.
        self._paths = (self._tree_nodes.T[:, :, None] + self._leaf_paths[None, :, :]).reshape(
            n_trees * self._n_leaves, self._height + 1
        )
        self._l_mass = np.array([node.l_mass for node in nodes], dtype=np.int64)
        self._r_mass = np.array([node.r_mass for node in nodes], dtype=np.int64)
        self._leaf_scores = self._score_table()

    def score(self, X: npt.ArrayLike) -> FloatArray:
        """Scores of a batch with the current masses, learning nothing (as ``score_one`` each)."""
        rows = self._rows(X)
        self._catch_up()
        if self._first_window or len(rows) == 0:
            return np.zeros(len(rows))
        return self._scores(self._route(rows))

    def score_and_learn(self, X: npt.ArrayLike, learn: BoolArray | LearnDecision) -> BatchResult:
        """Scores each event, then learns it if ``learn`` says so, as a sequential loop would.

        ``learn`` is a boolean mask over the batch, or a :data:`LearnDecision` that sees each
        chunk's final scores before deciding (alerted events are not learned). Batches
        smaller than ``small_batch`` go through River's own methods, event by event.
        """
        rows = self._rows(X)
        decide = _as_decision(learn, len(rows))
        if len(rows) < self.small_batch:
            return self._one_by_one(rows, decide)
        self._catch_up()
        n = len(rows)
        scores = np.zeros(n)
        learned = np.zeros(n, dtype=bool)
        leaves = self._route(rows) if self._nodes else None
        touched = np.zeros(len(self._nodes), dtype=bool)
        pivoted = False
        start = 0
        while start < n:
            # No pivot can happen before this chunk's last event, so its scores are final.
            stop = min(n, start + self._window - self._counter)
            if leaves is not None and not self._first_window:
                scores[start:stop] = self._scores(leaves[start:stop])
            mask = np.asarray(decide(start, scores[start:stop]), dtype=bool)
            if mask.shape != (stop - start,):
                raise ValueError(f"learn decision for {stop - start} events has shape {mask.shape}")
            learned[start:stop] = mask
            chosen = np.flatnonzero(mask) + start
            if leaves is None and len(chosen):
                # River builds its trees on the first event it learns: let it, then mirror them.
                first = int(chosen[0])
                self.model.learn_one(
                    dict(zip(self.feature_names, rows[first].tolist(), strict=True))
                )
                self.refresh()
                leaves = self._route(rows)
                touched = np.zeros(len(self._nodes), dtype=bool)
                pivoted = self._counter == 0  # window_size 1 pivots on that very event
                chosen = chosen[1:]
            if leaves is not None and len(chosen):
                on_paths = self._paths.take(leaves[chosen], axis=0).ravel()
                increments = np.bincount(on_paths, minlength=len(self._nodes))
                self._l_mass += increments
                touched |= increments > 0
                self._counter += len(chosen)
                if self._counter == self._window:
                    self._pivot()
                    pivoted = True
            start = stop
        if self._nodes:
            self._write_back(full=pivoted, touched=touched)
        return BatchResult(scores, learned)

    def _rows(self, X: npt.ArrayLike) -> FloatArray:
        rows = np.asarray(X, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != len(self.feature_names):
            raise ValueError(f"expected (events, {len(self.feature_names)}), got {rows.shape}")
        return rows

    def _one_by_one(self, rows: FloatArray, decide: LearnDecision) -> BatchResult:
        """River's score_one and learn_one per event; the arrays catch up on the next batch."""
        model = self.model
        scores = np.zeros(len(rows))
        learned = np.zeros(len(rows), dtype=bool)
        for i, row in enumerate(rows):
            x = dict(zip(self.feature_names, row.tolist(), strict=True))
            scores[i] = model.score_one(x)
            mask = np.asarray(decide(i, scores[i : i + 1]), dtype=bool)
            if mask.shape != (1,):
                raise ValueError(f"learn decision for 1 event has shape {mask.shape}")
            if mask[0]:
                learned[i] = True
                model.learn_one(x)
                if not self._nodes or model.counter == 0:
                    self._stale = True  # new trees or a pivot: re-read everything
                elif not self._stale:
                    self._pending.append(row)
        return BatchResult(scores, learned)

    def _catch_up(self) -> None:
        """Bring the arrays in line with the River model before a vectorised pass."""
        model = self.model
        if (
            self._stale
            or model.trees is not self._trees
            or model.counter != self._counter + len(self._pending)
            or model._first_window != self._first_window
        ):
            self.refresh()
        elif self._pending:
            leaves = self._route(np.array(self._pending))
            on_paths = self._paths.take(leaves, axis=0).ravel()
            self._l_mass += np.bincount(on_paths, minlength=len(self._nodes))
            self._counter += len(self._pending)
            self._pending = []

    def _route(self, rows: FloatArray) -> npt.NDArray[np.intp]:
        """The leaf each event reaches in each tree, as leaf ids, shape (events, trees)."""
        node = np.zeros((len(rows), self._tree_nodes.shape[1]), dtype=np.intp)
        row_start = (np.arange(len(rows), dtype=np.intp) * rows.shape[1])[:, None]
        values = rows.ravel()
        for _ in range(self._height):
            at = node + self._tree_nodes
            value = values.take(row_start + self._feature.take(at))
            # River goes left when value < threshold and right otherwise (NaN included).
            node = 2 * node + 2 - (value < self._threshold.take(at))
        return node - (self._n_leaves - 1) + self._tree_leaves

    def _score_table(self) -> npt.NDArray[np.int64]:
        """Each leaf's share of the raw score, by leaf id: River's walk with its early stop."""
        masses = self._r_mass.take(self._paths)
        # A node below size_limit still counts, but the walk stops there.
        small = masses[:, :-1] < 0.1 * self._window
        counted = np.ones(masses.shape, dtype=bool)
        counted[:, 1:] = ~np.logical_or.accumulate(small, axis=1)
        return (masses * self._depth_weights * counted).sum(axis=1)

    def _scores(self, leaves: npt.NDArray[np.intp]) -> FloatArray:
        raw = self._leaf_scores.take(leaves).sum(axis=1)
        return 1.0 - raw.astype(np.float64) / self._max_score

    def _pivot(self) -> None:
        self._r_mass = self._l_mass
        self._l_mass = np.zeros_like(self._r_mass)
        self._counter = 0
        self._first_window = False
        self._leaf_scores = self._score_table()

    def _write_back(self, full: bool, touched: BoolArray) -> None:
        """Put the masses and window counter back into River's own nodes and model."""
        model = self.model
        nodes = self._nodes
        if full:
            for node, r_mass, l_mass in zip(
                nodes, self._r_mass.tolist(), self._l_mass.tolist(), strict=True
            ):
                node.r_mass = r_mass
                node.l_mass = l_mass
        else:
            changed = np.flatnonzero(touched)
            for k, l_mass in zip(changed.tolist(), self._l_mass[changed].tolist(), strict=True):
                nodes[k].l_mass = l_mass
        model.counter = self._counter
        model._first_window = self._first_window


def _heap_order(root: Any, n_nodes: int) -> list[Any]:
    """A full padded tree's nodes, level by level (children of node k at 2k+1 and 2k+2)."""
    nodes = [root]
    for k in range(n_nodes // 2):
        nodes.extend(nodes[k].children)
    if len(nodes) != n_nodes:
        raise ValueError(f"expected a full tree of {n_nodes} nodes, found {len(nodes)}")
    return nodes


def _as_decision(learn: BoolArray | LearnDecision, n: int) -> LearnDecision:
    if callable(learn):
        return learn
    mask = np.asarray(learn, dtype=bool)
    if mask.shape != (n,):
        raise ValueError(f"learn mask for {n} events has shape {mask.shape}")
    return lambda start, scores: mask[start : start + len(scores)]
