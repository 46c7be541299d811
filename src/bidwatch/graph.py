"""Who bids against whom: co-bid pair counts and the co-bid graph of firms.

Pair counts are a polars self-join of the (tender, firm) incidence, never a networkx
projection of the whole bipartite graph. networkx is for what users hold in their hands:
the graph of a scan, a suspected group, a firm's neighbourhood.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import polars as pl


def incidence(bids: pl.DataFrame) -> pl.DataFrame:
    """Distinct (tender_id, firm_id) pairs of resolved bids."""
    return bids.select("tender_id", "firm_id").drop_nulls().unique()


def cobid_pairs(bids: pl.DataFrame) -> pl.DataFrame:
    """firm_a < firm_b, tenders (how many tenders both bid in), sorted."""
    inc = incidence(bids)
    return (
        inc.join(inc, on="tender_id", suffix="_b")
        .filter(pl.col("firm_id") < pl.col("firm_id_b"))
        .group_by(pl.col("firm_id").alias("firm_a"), pl.col("firm_id_b").alias("firm_b"))
        .agg(pl.len().cast(pl.UInt32).alias("tenders"))
        .sort("firm_a", "firm_b")
    )


def cobid_graph(
    bids: pl.DataFrame, nodes: pl.DataFrame | None = None, min_tenders: int = 1
) -> nx.Graph[Any]:
    """Undirected graph: firms as nodes, an edge weighted by shared tenders.

    ``nodes`` (with a firm_id column) supplies node attributes, e.g. name and risk.
    """
    graph: nx.Graph[Any] = nx.Graph()
    if nodes is not None:
        for row in nodes.iter_rows(named=True):
            graph.add_node(row["firm_id"], **{k: v for k, v in row.items() if k != "firm_id"})
    else:
        graph.add_nodes_from(incidence(bids).get_column("firm_id").unique().sort().to_list())
    pairs = cobid_pairs(bids).filter(pl.col("tenders") >= min_tenders)
    graph.add_weighted_edges_from(pairs.iter_rows(), weight="tenders")
    return graph
