"""Entity resolution: pairwise precision and recall of merges, and speed at scale.

    python benchmarks/entities.py accuracy [--data ../shared/data]
    python benchmarks/entities.py speed [--sizes 20000 200000 1000000]

Accuracy. Synthetic bids (``bidwatch synth``) with bidder ids and credit codes removed, so
that only names (and the bids' phones, addresses, tender regions) are left; each distinct
name is a unit whose true firm is the bidder_id it came from. Measured with and without the
firm registry. Then the romanised names of the Japanese cartel data (García Rodríguez et al.
2022), where ids that carry the same name (after dropping punctuation) are counted as one
firm: the question there is whether look-alike names (DAIHOKENSETSU, DAIKOKENSETSU) stay
apart. Pairwise: precision = pairs of units merged that are one firm / pairs merged; recall
= pairs of one firm merged / pairs of one firm.

Speed. Every spelling of every synthetic firm (Chinese with regions dropped or bracketed,
legal forms swapped, 字号 typos, English transliterations), one bid each, resolved in a
fresh process that reports wall time and peak memory (max RSS). The growth exponent is the
slope of log time against log names.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

import bidwatch
from bidwatch import entities, synth

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"


def pairwise(units: pl.DataFrame) -> tuple[float, float]:
    """(precision, recall) of ``pred`` against ``truth``, one row per unit."""

    def pairs(counts: pl.Series) -> int:
        return int((counts * (counts - 1) // 2).sum())

    both = pairs(units.group_by("truth", "pred").len().get_column("len"))
    merged = pairs(units.group_by("pred").len().get_column("len"))
    same = pairs(units.group_by("truth").len().get_column("len"))
    return (both / merged if merged else 1.0), (both / same if same else 1.0)


def synthetic(tenders: int, seed: int, registry: bool) -> dict[str, float]:
    data = synth.generate(tenders, seed=seed)
    bids = data.bids.drop("credit_code", strict=False)
    started = time.perf_counter()
    resolved = entities.resolve(
        bidwatch.load(
            bids=bids.drop("bidder_id"),
            tenders=data.tenders,
            firms=data.firms if registry else None,
        )
    )
    seconds = time.perf_counter() - started
    found = resolved.entities
    assert found is not None
    units = (
        bids.select(pl.col("bidder_name").str.strip_chars(), pl.col("bidder_id").alias("truth"))
        .unique()
        .join(
            found.filter(pl.col("source") == "bids").select(
                "bidder_name", pl.col("firm_id").alias("pred")
            ),
            on="bidder_name",
            how="left",
        )
    )
    precision, recall = pairwise(units)
    return {"units": units.height, "precision": precision, "recall": recall, "seconds": seconds}


def japan(data: Path) -> dict[str, float] | None:
    path = data / "garcia2022" / "DB_Collusion_Japan_processed.csv"
    if not path.is_file():
        return None
    raw = pl.read_csv(path)
    bids = raw.select(
        pl.col("Tender").cast(pl.String).alias("tender_id"),
        pl.col("Competitors").cast(pl.String).alias("bidder_id"),
        pl.col("Name competitors").alias("bidder_name"),
        pl.col("Bid_value").alias("amount"),
    )
    resolved = entities.resolve(bidwatch.load(bids=bids))
    assert resolved.entities is not None
    units = resolved.entities.filter(pl.col("source") == "bids").select(
        pl.col("bidder_name").str.replace_all(r"[^A-Za-z0-9]", "").alias("truth"),
        pl.col("firm_id").alias("pred"),
    )
    precision, recall = pairwise(units)
    return {"units": units.height, "precision": precision, "recall": recall}


def accuracy(data: Path) -> None:
    print("| data | units | precision | recall |")
    print("|---|---|---|---|")
    for tenders in (3000, 20000):
        for registry in (False, True):
            row = synthetic(tenders, seed=7, registry=registry)
            label = f"synthetic, {tenders} tenders, seed 7, names only" + (
                " + registry" if registry else ""
            )
            print(f"| {label} | {row['units']} | {row['precision']:.4f} | {row['recall']:.4f} |")
    row_jp = japan(data)
    if row_jp is None:
        print(f"| Japan: skipped, {data} has no garcia2022 data | | | |")
    else:
        print(
            f"| Japan romanised names (ids + names) | {row_jp['units']} | "
            f"{row_jp['precision']:.4f} | {row_jp['recall']:.4f} |"
        )


def spellings(n_names: int, folder: Path) -> Path:
    """A Parquet file of bids: every spelling of enough synthetic firms, one bid each."""
    firms = max(1, n_names // synth.NAME_VARIANTS)
    data = synth.generate(firms * synth.TENDERS_PER_FIRM, seed=11)
    names = data.spellings.unique("name", keep="first", maintain_order=True).head(n_names)
    bids = names.select(
        pl.format("T{}", pl.int_range(pl.len())).alias("tender_id"),
        pl.col("name").alias("bidder_name"),
        pl.lit(100.0).alias("amount"),
    )
    path = folder / f"names-{n_names}.parquet"
    bids.write_parquet(path)
    return path


def resolve_file(path: Path) -> dict[str, float]:
    """Resolve one file's bidders; run in a fresh process to measure its own peak memory."""
    data = bidwatch.load(bids=path)
    started = time.perf_counter()
    resolved = entities.resolve(data)
    seconds = time.perf_counter() - started
    assert resolved.entities is not None
    return {
        "names": data.bids.height,
        "firms": resolved.entities.get_column("firm_id").n_unique(),
        "seconds": seconds,
        "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def speed(sizes: list[int]) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            path = spellings(size, Path(tmp))
            done = subprocess.run(
                [sys.executable, __file__, "_resolve", str(path)],
                check=True,
                capture_output=True,
                text=True,
            )
            rows.append(json.loads(done.stdout))
    print("| distinct names | firms found | resolve time | peak memory |")
    print("|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['names']:,} | {row['firms']:,} | {row['seconds']:.1f} s | "
            f"{row['peak_gib']:.2f} GiB |"
        )
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        slope = math.log(last["seconds"] / first["seconds"]) / math.log(
            last["names"] / first["names"]
        )
        print(f"\ngrowth exponent {first['names']:,} -> {last['names']:,} names: {slope:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    acc = sub.add_parser("accuracy", help="pairwise precision and recall of merges")
    acc.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding garcia2022/")
    fast = sub.add_parser("speed", help="time and memory to resolve many names")
    fast.add_argument(
        "--sizes", type=int, nargs="+", default=[20000, 200000, 1000000], help="names"
    )
    one = sub.add_parser("_resolve", help=argparse.SUPPRESS)
    one.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    if args.command == "accuracy":
        accuracy(args.data)
    elif args.command == "speed":
        speed(args.sizes)
    else:
        print(json.dumps(resolve_file(args.path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
