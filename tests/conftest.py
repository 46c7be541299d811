"""Shared test helpers: a small random market, paths to fixtures and shared data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import bidwatch
from bidwatch import entities
from bidwatch.dataset import Dataset
from bidwatch.findings import Findings

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
SHARED_DATA = ROOT.parent / "shared" / "data"


def resolved(**tables: Any) -> Dataset:
    """A dataset of canonical tables given as rows (a table given as None is left out),
    loaded and resolved into firms."""
    frames = {name: pl.DataFrame(rows) for name, rows in tables.items() if rows is not None}
    return entities.resolve(bidwatch.load(**frames))


def evidence(found: Findings, subject: str) -> dict[str, Any]:
    """The evidence of the one finding about ``subject``."""
    row = found.frame.filter(pl.col("subject_id") == subject)
    assert row.height == 1, f"{subject} not flagged"
    parsed: dict[str, Any] = json.loads(row.item(0, "evidence"))
    return parsed


def flagged(found: Findings) -> set[str]:
    return set(found.frame.get_column("subject_id").to_list())


def random_market(seed: int = 0, tenders: int = 240) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Tenders and bids of mixed award rules, with ids, winners and estimates.

    Mostly honest bidding; every tenth tender carries one planted pattern so that every
    detector has something to find.
    """
    rng = np.random.default_rng(seed)
    firms = [f"F{i:03d}" for i in range(60)]
    tender_rows, bid_rows = [], []
    for t in range(tenders):
        tid = f"T{t:04d}"
        method = rng.choice(["lowest_price", "lowest_price", "scoring", "average_bid"])
        cost = float(np.exp(rng.normal(14, 0.8)))
        estimate = round(cost * rng.uniform(1.1, 1.3), -2)
        tender_rows.append((tid, method, rng.choice(["road", "bridge", "water"]), estimate))
        n = int(rng.integers(2, 11))
        bidders = rng.choice(firms, size=n, replace=False)
        amounts = np.round(cost * rng.lognormal(0.0, 0.06, size=n), -1)
        if t % 30 == 0:  # everyone within 0.3%
            amounts = np.round(cost * (1 + rng.uniform(0, 0.003, size=n)), 2)
        elif t % 30 == 10 and n >= 5:  # a designated winner under a tight cover band
            amounts = np.round(cost * (1.02 + rng.uniform(0, 0.004, size=n)), 2)
            amounts[0] = round(cost * 0.9, 2)
        elif t % 30 == 20 and n >= 3:  # two identical odd bids, the winner near the ceiling
            amounts[1] = amounts[0] = round(estimate * 0.9987, 2)
        elif t % 30 == 25 and n >= 3:  # covers stepping up from the winner by a fixed amount
            step = round(cost * 0.0123, 2)
            amounts[:3] = [round(cost * 0.97, 2) + k * step for k in range(3)]
        machines = [f"MC-{firm}" for firm in bidders]
        if t % 30 == 5 and n >= 3:  # two bids made on one computer
            machines[1] = machines[0]
        win = int(np.argmin(amounts)) if method != "scoring" else int(rng.integers(n))
        for i, (firm, amount) in enumerate(zip(bidders, amounts, strict=True)):
            bid_rows.append(
                (tid, str(firm), f"Firm {firm} Co., Ltd.", float(amount), i == win, machines[i])
            )
    tenders_df = pl.DataFrame(
        tender_rows, schema=["tender_id", "award_method", "category", "estimate"], orient="row"
    )
    bids_df = pl.DataFrame(
        bid_rows,
        schema=["tender_id", "bidder_id", "bidder_name", "amount", "is_winner", "machine_code"],
        orient="row",
    )
    return tenders_df, bids_df


@pytest.fixture(scope="session")
def market() -> Dataset:
    """A synthetic market with every planted scheme (bidwatch.synth): the dataset on which
    every detector must have something to say."""
    from bidwatch import synth

    data = synth.generate(1500, seed=5)
    return bidwatch.load(**data.tables())


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"shared labelled data not found at {SHARED_DATA} (only on the developers' machine)"
        )
    return SHARED_DATA
