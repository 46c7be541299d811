"""Who bids against whom: co-bid pair counts and the co-bid graph of firms.

Pair counts are a polars self-join of the (tender, firm) incidence, never a networkx
projection of the whole bipartite graph. networkx is for what users hold in their hands:
the graph of a scan, a suspected group, a firm's neighbourhood.
"""

from __future__ import annotations

import threading
from typing import Any

import networkx as nx
import polars as pl

_LEIDEN = threading.Lock()


def incidence(bids: pl.DataFrame) -> pl.DataFrame:
    """Distinct (tender_id, firm_id) pairs of resolved bids."""
    return bids.select("tender_id", "firm_id").drop_nulls().unique()


def cobid_pairs(bids: pl.DataFrame) -> pl.DataFrame:
    """firm_a < firm_b, tenders (how many tenders both bid in), sorted."""
    inc = incidence(bids)
    # The self-join makes a row per co-bid (millions): it runs on integer codes whose order is
    # the ids' order, and the pair (a, b) is one 64-bit key, so that no string is hashed,
    # compared or sorted per co-bid.
    firms = inc.select(pl.col("firm_id").unique().sort()).with_row_index("_f")
    codes = inc.join(firms, on="firm_id").select(
        pl.col("tender_id").rank("dense").cast(pl.UInt32).alias("_t"), "_f"
    )
    width = firms.height
    pairs = (
        codes.join(codes, on="_t", suffix="_b")
        .filter(pl.col("_f") < pl.col("_f_b"))
        .group_by((pl.col("_f").cast(pl.UInt64) * width + pl.col("_f_b")).alias("_key"))
        .agg(pl.len().cast(pl.UInt32).alias("tenders"))
        .sort("_key")
    )
    names = firms.get_column("firm_id")
    key = pairs.get_column("_key")
    return pl.DataFrame(
        {
            "firm_a": names.gather(key // width),
            "firm_b": names.gather(key % width),
            "tenders": pairs.get_column("tenders"),
        }
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


def communities(
    pairs: pl.DataFrame,
    *,
    weight: str = "tenders",
    resolution: float = 1.0,
    seed: int = 0,
) -> pl.DataFrame:
    """Communities of the graph whose edges are ``pairs`` (firm_a, firm_b, weight).

    Leiden, optimising modularity at ``resolution``, through python-igraph: seconds for a
    national co-bid graph (hundreds of thousands of firms, millions of edges), where
    networkx's Louvain takes minutes. Nodes are taken in sorted order and igraph's random
    generator is seeded, so the same graph gives the same communities. Returns firm_id and
    community (0, 1, ... by decreasing size, then by smallest member).
    """
    import random

    import igraph

    if pairs.height == 0:
        return pl.DataFrame(schema={"firm_id": pl.String, "community": pl.Int64})
    nodes = (
        pl.concat([pairs.get_column("firm_a"), pairs.get_column("firm_b")])
        .unique()
        .sort()
        .alias("firm_id")
    )
    index = nodes.to_frame().with_row_index("_i")
    edges = (
        pairs.join(index, left_on="firm_a", right_on="firm_id")
        .join(index, left_on="firm_b", right_on="firm_id", suffix="_b")
        .select("_i", "_i_b", weight)
    )
    graph = igraph.Graph(n=nodes.len(), edges=list(zip(edges["_i"], edges["_i_b"], strict=True)))
    weights = edges.get_column(weight).cast(pl.Float64).to_list()
    # igraph's random generator is one per process: detectors running on other threads
    # must not reseed it while Leiden runs.
    with _LEIDEN:
        previous = random.getstate()
        igraph.set_random_number_generator(random.Random(seed))
        try:
            found = graph.community_leiden(
                objective_function="modularity",
                weights=weights,
                resolution=resolution,
                n_iterations=-1,
            )
        finally:
            igraph.set_random_number_generator(random)
            random.setstate(previous)
    raw = pl.DataFrame({"firm_id": nodes, "_c": found.membership})
    order = (
        raw.group_by("_c")
        .agg(pl.len().alias("_n"), pl.col("firm_id").min().alias("_first"))
        .sort(["_n", "_first"], descending=[True, False])
        .with_row_index("community")
        .select("_c", pl.col("community").cast(pl.Int64))
    )
    return raw.join(order, on="_c").select("firm_id", "community").sort("firm_id")
