"""What follows a dedup run: threshold calibration from labels, and writing the decision back.

:func:`calibrate_threshold` turns labelled pairs (a labelled sample, or a
:class:`~workbench.widgets.DedupReviewer`'s decisions) into precision and recall per threshold;
:func:`apply_dedup` writes ``dup_group``, ``dup_representative`` and ``is_duplicate`` into the
store in one commit, and deletes the duplicates only when asked, in a second commit, so the
generation before the deletion stays openable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .._validation import check_choice
from ..errors import InvalidInputError, MissingColumnError, UnknownIdError
from .dedup import DedupResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..store import Store


@dataclass(frozen=True)
class Calibration:
    """Precision and recall of a pair score against labels, per threshold.

    Attributes
    ----------
    curve : polars.DataFrame
        ``threshold: f64, precision: f64, recall: f64, f1: f64``, thresholds increasing.
    average_precision : float
        Area under the precision-recall curve (scikit-learn's step-wise estimate).
    best_threshold : float
        The threshold of the best F1 (``score >= best_threshold`` is a duplicate).
    best_f1, precision, recall : float
        F1, precision and recall at `best_threshold`.
    n_pairs, n_duplicates : int
        Labelled pairs used, and how many are duplicates.
    """

    curve: pl.DataFrame
    average_precision: float
    best_threshold: float
    best_f1: float
    precision: float
    recall: float
    n_pairs: int
    n_duplicates: int

    def at(self, threshold: float) -> dict[str, float]:
        """Precision, recall and F1 when pairs scoring >= `threshold` are called duplicates."""
        c = self.curve.filter(pl.col("threshold") >= threshold).head(1)
        if c.height == 0:
            return {"threshold": threshold, "precision": 1.0, "recall": 0.0, "f1": 0.0}
        return {"threshold": threshold, **{k: float(c[k][0]) for k in ("precision", "recall",
                                                                         "f1")}}

    def plot(self) -> Figure:
        """Precision-recall curve with the best-F1 point marked."""
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.5, 3.6))
        ax.plot(self.curve["recall"], self.curve["precision"], color="#4c78a8")
        ax.scatter([self.recall], [self.precision], color="#e45756", zorder=3,
                   label=f"best F1 {self.best_f1:.3f} at {self.best_threshold:.3f}")
        ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02),
               title=f"AP {self.average_precision:.3f} ({self.n_pairs} labelled pairs)")
        ax.legend(loc="lower left", frameon=False)
        fig.tight_layout()
        plt.close(fig)
        return fig


def _labelled(pairs_or_result: Any, labels: Any) -> tuple[NDArray[np.float64],
                                                         NDArray[np.bool_]]:
    """Scores and labels, row for row."""
    if isinstance(pairs_or_result, DedupResult):
        pairs = pairs_or_result.pairs
    elif isinstance(pairs_or_result, pl.DataFrame):
        pairs = pairs_or_result
    else:
        raise InvalidInputError(
            "pairs_or_result: expected a DedupResult or a pairs DataFrame, got "
            f"{type(pairs_or_result).__name__}"
        )
    if "score" not in pairs.columns:
        raise MissingColumnError(f"pairs_or_result: expected a 'score' column, got "
                                 f"{pairs.columns}")
    if isinstance(labels, pl.DataFrame):
        need = {"key_a", "key_b", "is_duplicate"}
        if not need <= set(labels.columns):
            raise MissingColumnError(
                f"labels: expected columns {sorted(need)} (a reviewer's decisions), got "
                f"{labels.columns}"
            )
        lab = labels.select(
            pl.min_horizontal("key_a", "key_b").cast(pl.UInt64).alias("key_a"),
            pl.max_horizontal("key_a", "key_b").cast(pl.UInt64).alias("key_b"),
            pl.col("is_duplicate").cast(pl.Boolean),
        ).unique(subset=["key_a", "key_b"], keep="last")
        joined = lab.join(pairs.select("key_a", "key_b", "score"), on=["key_a", "key_b"],
                          how="left")
        missing = joined.filter(pl.col("score").is_null())
        if missing.height:
            raise UnknownIdError(
                f"labels: expected pairs that are among the result's candidate pairs, "
                f"{missing.height} are not (first: {missing.row(0)[:2]})"
            )
        return (joined.get_column("score").to_numpy().astype(np.float64),
                joined.get_column("is_duplicate").to_numpy().astype(bool))
    y = np.asarray(labels)
    if y.ndim != 1 or y.size != pairs.height:
        raise InvalidInputError(
            f"labels: expected {pairs.height} labels (one per pair), got shape {y.shape}"
        )
    return pairs.get_column("score").to_numpy().astype(np.float64), y.astype(bool)


def calibrate_threshold(pairs_or_result: Any, labels: Any) -> Calibration:
    """Precision and recall per threshold of a pair score against duplicate labels.

    Parameters
    ----------
    pairs_or_result : DedupResult or polars.DataFrame
        A result (its ``pairs``) or any frame with a ``score`` column (and ``key_a``,
        ``key_b`` when `labels` is a frame).
    labels : array-like of bool or polars.DataFrame
        One label per pair, row for row; or a frame ``key_a, key_b, is_duplicate`` such as
        ``DedupReviewer.decisions`` (the pairs are matched by key, in either order).

    Returns
    -------
    Calibration

    Raises
    ------
    InvalidInputError
        Labels of the wrong length, fewer than 2 labelled pairs, or only one class.
    UnknownIdError
        A labelled pair is not among the result's candidate pairs.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    score, y = _labelled(pairs_or_result, labels)
    if y.size < 2:
        raise InvalidInputError(f"labels: expected at least 2 labelled pairs, got {y.size}")
    if y.all() or not y.any():
        raise InvalidInputError("labels: expected both duplicate and non-duplicate pairs")
    precision, recall, thresholds = precision_recall_curve(y, score)
    p, r = precision[:-1], recall[:-1]
    f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
    best = int(np.argmax(f1))
    curve = pl.DataFrame({"threshold": thresholds.astype(np.float64), "precision": p,
                          "recall": r, "f1": f1})
    return Calibration(curve=curve, average_precision=float(average_precision_score(y, score)),
                       best_threshold=float(thresholds[best]), best_f1=float(f1[best]),
                       precision=float(p[best]), recall=float(r[best]), n_pairs=int(y.size),
                       n_duplicates=int(y.sum()))


def apply_dedup(
    store: Store,
    result: DedupResult,
    *,
    keep: str = "representative",
    delete: bool = False,
) -> dict[str, int]:
    """Write a dedup result into the store; delete the duplicates only when asked.

    Every row the result scanned gets ``dup_group: i64`` (null when unique),
    ``dup_representative: str`` (the id of the row its group keeps; null when unique) and
    ``is_duplicate: bool``, through :meth:`Store.update` in one commit. With `delete`, the
    duplicates are then deleted in a second commit, so ``Store.open(path,
    generation=<the first>)`` still reaches every row with its labels.

    Parameters
    ----------
    store : Store
        The store the result was computed on, open for writing.
    result : DedupResult
    keep : {"representative", "first", "last"}
        The row each group keeps: its representative (every member was compared against it),
        or the group's lowest / highest key.
    delete : bool, default False
        Also delete every row with ``is_duplicate``.

    Returns
    -------
    dict
        ``updated`` (rows labelled), ``duplicates`` and ``deleted`` counts, and the
        ``generation`` after each commit (``labelled_generation``, ``generation``).

    Raises
    ------
    UnknownIdError
        Rows of the result are no longer in the store (it changed since: run the dedup again).
    InvalidInputError
        Not a DedupResult, or an unknown `keep`.
    """
    if not isinstance(result, DedupResult):
        raise InvalidInputError(f"result: expected a DedupResult, got {type(result).__name__}")
    keep = check_choice(keep, ("representative", "first", "last"), name="keep")
    frame = result.to_frame()
    live = store.scan().select("key", "id").collect()
    stale = frame.join(live, on=["key", "id"], how="anti")
    if stale.height:
        raise UnknownIdError(
            f"result: expected rows that are still in the store; {stale.height} are not "
            f"(first {stale['id'][0]!r}): the store changed since generation "
            f"{result.info.get('generation')}, run find_duplicates again"
        )
    g = result.groups
    if keep == "representative":
        kept = g.filter(pl.col("is_representative")).select("group", kept_id=pl.col("id"))
    else:
        pick = pl.col("key").arg_min() if keep == "first" else pl.col("key").arg_max()
        kept = g.group_by("group").agg(kept_id=pl.col("id").get(pick))
    labels = frame.select("id", "group").join(kept, on="group", how="left").select(
        "id",
        dup_group=pl.col("group").cast(pl.Int64),
        dup_representative=pl.col("kept_id"),
        is_duplicate=pl.col("group").is_not_null() & (pl.col("id") != pl.col("kept_id")),
    ).with_columns(pl.col("is_duplicate").fill_null(False))
    store.update(labels)
    labelled = store.generation
    dups = labels.filter(pl.col("is_duplicate")).get_column("id").to_list()
    deleted = store.delete(dups) if delete and dups else 0
    return {"updated": labels.height, "duplicates": len(dups), "deleted": int(deleted),
            "labelled_generation": labelled, "generation": store.generation}
