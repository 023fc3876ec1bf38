"""The cluster hierarchy view of :class:`~workbench.widgets.ClusterExplorer` (HTML)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from ._common import esc

if TYPE_CHECKING:
    from ..analysis.cluster import ClusterResult
    from ..analysis.topics import TopicTree

__all__ = ["TREE_KEYWORDS", "topic_tree_html"]

_TREE_CSS = (".wb-tree{font-size:12px;line-height:1.5}"
             ".wb-tree details>:not(summary),.wb-tree .wb-topic-leaf{margin-left:14px}"
             ".wb-tree summary{cursor:pointer}.wb-tree .wb-topic-current>summary,"
             ".wb-tree div.wb-topic-current{font-weight:600}"
             ".wb-tree .wb-kw{color:#5b6675;font-weight:400}"
             ".wb-tree .wb-swatch{display:inline-block;width:9px;height:9px;margin-right:4px;"
             "border-radius:2px}")
#: Keywords shown per node of the hierarchy view.
TREE_KEYWORDS = 4


def topic_tree_html(tree: TopicTree, result: ClusterResult, n_topics: int) -> str:
    """The hierarchy view: `tree` as nested ``<details>``, the root first, every text escaped.

    The nodes that are topics at level `n_topics` are marked (class ``wb-topic-current``,
    the topic's map colour, its legend label :func:`cluster_label`); the merges above them are
    open and everything below them collapsed, so the view starts as a list of the current
    topics however many fine clusters there are. Children are listed in the order of their
    smallest fine cluster, which is the order of the topic numbers (topics are numbered by
    their smallest fine cluster).

    Parameters
    ----------
    tree : TopicTree
        :attr:`ClusterResult.hierarchy` (its ``nodes`` frame is read, nothing is computed).
    result : ClusterResult
        The clustering at level `n_topics` of `tree`: the topic numbers and names are its
        (``points["fine_cluster"]`` gives each fine cluster's topic).
    n_topics : int
        The current level.

    Returns
    -------
    str
        HTML.
    """
    from .cluster import cluster_color, cluster_label  # the map's labels and colours

    nodes = tree.nodes.sort("node")
    k = tree.n_clusters
    parent = nodes.get_column("parent").to_list()
    left = nodes.get_column("left").to_list()
    right = nodes.get_column("right").to_list()
    fine = nodes.get_column("cluster").to_list()
    appears = nodes.get_column("n_topics").to_list()
    sizes = nodes.get_column("size").to_list()
    n_fine = nodes.get_column("n_clusters").to_list()
    keywords = nodes.get_column("keywords").to_list()
    pts = result.points
    if "fine_cluster" in pts.columns:
        pairs = pts.filter(pl.col("fine_cluster") >= 0).select("fine_cluster", "cluster")
        topic_of = dict(pairs.unique().iter_rows())
    else:  # a result cut from the tree always has fine_cluster; this is the tree's own map
        topic_of = dict(zip(tree.clusters.tolist(), tree.assignment(n_topics).tolist(),
                            strict=True))
    names = dict(result.clusters.select("cluster", "name").iter_rows())
    first: list[int] = [0] * len(parent)  # smallest fine cluster under each node
    html: list[str] = [""] * len(parent)
    # scipy numbers a merge after both its children: one pass in node order, no recursion
    for node in range(len(parent)):
        kids = [] if node < k else sorted((left[node], right[node]), key=first.__getitem__)
        first[node] = int(fine[node]) if node < k else first[kids[0]]
        exists = appears[node] >= n_topics
        current = exists and (parent[node] is None or appears[parent[node]] < n_topics)
        kw = ", ".join(keywords[node][:TREE_KEYWORDS])
        what = f"fine cluster {fine[node]}" if node < k else f"{n_fine[node]} fine clusters"
        head = f"{esc(what)} · {sizes[node]} points"
        if current:
            topic = int(topic_of.get(first[node], -1))
            label = cluster_label(topic, names.get(topic))
            head = (f"<span class='wb-swatch' style='background:{cluster_color(topic)}'>"
                    f"</span>{esc(label)} · {head}")
            # automatic names are the topic's keywords already
            if kw and ", ".join(keywords[node][:3]) in label:
                kw = ""
        body = f"{head} <span class='wb-kw'>{esc(kw)}</span>" if kw else head
        cls = "wb-topic wb-topic-current" if current else "wb-topic"
        if node < k:
            html[node] = f"<div class='{cls} wb-topic-leaf'>{body}</div>"
        else:
            is_open = " open" if appears[node] < n_topics else ""  # a merge not made yet
            html[node] = (f"<details class='{cls}'{is_open}><summary>{body}</summary>"
                          + "".join(html[c] for c in kids) + "</details>")
    rows = tree.criterion.filter(pl.col("n_topics") == n_topics).get_column("silhouette")
    score = f"; silhouette {rows[0]:.3f}" if rows.len() else ""
    caption = (f"{k} fine clusters merged by {tree.similarity} similarity; {n_topics} "
               f"clusters shown (the clusters slider){score} (the silhouette picks "
               f"{tree.best_n_topics})")
    return (f"<style>{_TREE_CSS}</style><div class='wb-tree'><b>Cluster hierarchy</b> "
            f"<span class='wb-kw'>{esc(caption)}</span>{html[-1]}</div>")
