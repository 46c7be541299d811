"""Accuracy on labelled cartel data: tender-level ROC-AUC and precision in the top 10%.

Converts the García Rodríguez et al. (2022) datasets (../shared/data/garcia2022) into
canonical bids and tenders files, runs `bidwatch scan` as a user would, and scores the
`collusion_risk` column of tenders.csv (and, for contrast, `risk`, which adds materials
risk) against the tender-level label. Labels, the published screen
columns, dates and the investigation period are never given to bidwatch. Each detector is
also scored alone, by its finding score per tender (0 where it did not flag).

Where bidders have ids (Japan), firms are scored too: the `collusion_risk` column of firms.csv, and
each detector's strongest contribution to a firm, against the per-bid flag
`Collusive_competitor_original` (a firm is collusive if any of its bids is flagged); on
synthetic data, against DIR/truth/firms.csv (any role but honest).

    python benchmarks/accuracy.py [--data ../shared/data] [--synth-seeds 1 2 3]

Synthetic data (`bidwatch synth`) with planted schemes is measured the same way against
DIR/truth/tenders.csv. Its planted materials schemes (low bid then recover, substitution,
shell contractors) are measured apart: the `materials_risk` column of tenders.csv against
the `materials` label, with each materials detector alone and each materials scheme against
the tenders clean of materials risk; and firms' `materials_risk` against the planted
contractors (truth/firms.csv `materials_role`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy.stats import rankdata

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"

# Re-run of the authors' supervised protocol, from ../shared/data/README.md.
SUPERVISED_BASELINE = {"japan": 0.84, "switzerland_gr": 0.71, "ticino": 0.97}


@dataclass(frozen=True)
class Case:
    name: str
    file: str
    convert: Callable[[pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]]
    context: str
    firm_labels: Callable[[pl.DataFrame], pl.DataFrame] | None = None


def _labels(raw: pl.DataFrame) -> pl.DataFrame:
    return (
        raw.group_by(pl.col("Tender").cast(pl.String).alias("tender_id"))
        .agg(pl.col("Collusive_competitor").first().cast(pl.Int64).alias("label"))
        .sort("tender_id")
    )


def _firm_labels(raw: pl.DataFrame) -> pl.DataFrame:
    return (
        raw.group_by(pl.col("Competitors").cast(pl.String).alias("bidder_id"))
        .agg(pl.col("Collusive_competitor_original").max().cast(pl.Int64).alias("label"))
        .sort("bidder_id")
    )


def japan(raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    bids = raw.select(
        pl.col("Tender").cast(pl.String).alias("tender_id"),
        pl.col("Competitors").cast(pl.String).alias("bidder_id"),
        pl.col("Name competitors").alias("bidder_name"),
        pl.col("Bid_value").alias("amount"),
        pl.col("Winner").alias("is_winner"),
    )
    tenders = raw.group_by(pl.col("Tender").cast(pl.String).alias("tender_id")).agg(
        pl.col("Pre-Tender Estimate (PTE)").first().alias("estimate"),
        pl.lit("lowest_price").alias("award_method"),
    )
    return bids, tenders.sort("tender_id")


def swiss(raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    bids = raw.select(
        pl.col("Tender").cast(pl.String).alias("tender_id"),
        pl.col("Bid_value").alias("amount"),
        pl.col("Winner").cast(pl.Int64).alias("is_winner"),
    )
    tenders = (
        bids.select("tender_id")
        .unique()
        .sort("tender_id")
        .with_columns(pl.lit("lowest_price").alias("award_method"))
    )
    return bids, tenders


def swiss_with_contract_type(raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    bids, tenders = swiss(raw)
    kinds = raw.group_by(pl.col("Tender").cast(pl.String).alias("tender_id")).agg(
        pl.col("Contract_type").first().cast(pl.String).alias("category")
    )
    return bids, tenders.join(kinds, on="tender_id", how="left")


CASES = (
    Case(
        "japan",
        "DB_Collusion_Japan_processed.csv",
        japan,
        "bids, bidder ids, winner, estimate",
        _firm_labels,
    ),
    Case(
        "switzerland_gr",
        "DB_Collusion_Switzerland_GR_and_See-Gaster_processed.csv",
        swiss,
        "bids, winner",
    ),
    Case(
        "switzerland_gr+contract_type",
        "DB_Collusion_Switzerland_GR_and_See-Gaster_processed.csv",
        swiss_with_contract_type,
        "bids, winner, Contract_type as category (a label proxy)",
    ),
    Case("ticino", "DB_Collusion_Switzerland_Ticino_processed.csv", swiss, "bids, winner"),
)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney ROC-AUC; ties count one half."""
    positives = labels == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def precision_at(scores: np.ndarray, labels: np.ndarray, share: float = 0.10) -> float:
    """Share of collusive tenders among the top `share`, ties broken by a fixed shuffle."""
    k = max(1, round(share * len(scores)))
    order = np.lexsort((np.random.default_rng(0).random(len(scores)), -scores))
    return float(labels[order[:k]].mean())


def scan(folder: Path, out: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "bidwatch.cli",
        "scan",
        str(folder),
        "--out",
        str(out),
        "--no-html",
        "--quiet",
    ]
    subprocess.run(command, check=True)


def measure(folder: Path, out: Path, labels: pl.DataFrame) -> dict[str, dict[str, float]]:
    scan(folder, out)
    tenders = pl.read_csv(out / "tenders.csv", schema_overrides={"tender_id": pl.String})
    findings = pl.read_parquet(out / "findings.parquet").filter(pl.col("subject_kind") == "tender")
    summary = json.loads((out / "scan.json").read_text(encoding="utf-8"))
    table = labels.join(
        tenders.select("tender_id", "collusion_risk", "risk"), on="tender_id", how="left"
    )
    y = table.get_column("label").to_numpy()
    rows = {
        "collusion risk": _scores(table.get_column("collusion_risk").fill_null(0).to_numpy(), y),
        "risk (with materials)": _scores(table.get_column("risk").fill_null(0).to_numpy(), y),
    }
    rows.update(detector_rows(summary, findings, labels, y))
    return rows


def detector_rows(
    summary: dict[str, Any],
    findings: pl.DataFrame,
    labels: pl.DataFrame,
    y: np.ndarray,
    names: set[str] | None = None,
) -> dict[str, dict[str, float]]:
    """Each detector (of ``names``, else every one) alone: its finding score per tender of
    ``labels`` (0 where it made no finding), or "skipped"."""
    rows: dict[str, dict[str, float]] = {}
    for run in summary["detectors"]:
        name = run["name"]
        if names is not None and name not in names:
            continue
        if run["status"] != "ran":
            rows[name] = {"skipped": 1.0}
            continue
        per = (
            findings.filter(pl.col("detector") == name)
            .group_by(pl.col("subject_id").alias("tender_id"))
            .agg(pl.col("score").max())
        )
        s = labels.join(per, on="tender_id", how="left").get_column("score").fill_null(0)
        rows[name] = _scores(s.to_numpy(), y) | {"flag_rate": run["flag_rate"] or 0.0}
    return rows


def measure_firms(out: Path, labels: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Firm risk and each detector's strongest contribution to a firm, per labelled bidder."""
    firms = pl.read_csv(
        out / "firms.csv", schema_overrides={"firm_id": pl.String, "bidder_ids": pl.String}
    )
    of_bidder = firms.select(
        "firm_id", "collusion_risk", pl.col("bidder_ids").str.split(";").alias("bidder_id")
    ).explode("bidder_id")
    table = labels.join(of_bidder, on="bidder_id", how="left")
    y = table.get_column("label").to_numpy()
    scores = table.get_column("collusion_risk").fill_null(0).to_numpy()
    rows = {"firm collusion risk": _scores(scores, y)}
    contributions = pl.read_csv(
        out / "contributions.csv", schema_overrides={"subject_id": pl.String}
    ).filter(pl.col("subject_kind") == "firm")
    for name in sorted(contributions.get_column("detector").unique()):
        per = (
            contributions.filter(pl.col("detector") == name)
            .group_by(pl.col("subject_id").alias("firm_id"))
            .agg(pl.col("score").max())
        )
        s = table.join(per, on="firm_id", how="left").get_column("score").fill_null(0)
        rows[f"firm: {name}"] = _scores(s.to_numpy(), y) | {"flag_rate": per.height / firms.height}
    return rows


def _scores(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {
        "auc": roc_auc(scores, labels),
        "p@10%": precision_at(scores, labels),
        "base": float(labels.mean()),
    }


def real_data(data: Path, work: Path) -> dict[str, dict[str, dict[str, float]]]:
    results = {}
    for case in CASES:
        path = data / "garcia2022" / case.file
        if not path.is_file():
            print(f"skip {case.name}: {path} not found", file=sys.stderr)
            continue
        raw = pl.read_csv(path)
        bids, tenders = case.convert(raw)
        folder = work / case.name
        folder.mkdir(parents=True, exist_ok=True)
        bids.write_csv(folder / "bids.csv")
        tenders.write_csv(folder / "tenders.csv")
        out = work / f"{case.name}-out"
        results[case.name] = measure(folder, out, _labels(raw))
        if case.firm_labels is not None:
            results[f"{case.name} firms"] = measure_firms(out, case.firm_labels(raw))
    return results


def synthetic(seeds: list[int], tenders: int, work: Path) -> dict[str, dict[str, dict[str, float]]]:
    results = {}
    for seed in seeds:
        folder = work / f"synth-{seed}"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bidwatch.cli",
                "synth",
                "--tenders",
                str(tenders),
                "--seed",
                str(seed),
                "--out",
                str(folder),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        truth = pl.read_csv(
            folder / "truth" / "tenders.csv", schema_overrides={"tender_id": pl.String}
        ).sort("tender_id")
        labels = truth.select("tender_id", pl.col("collusive").cast(pl.Int64).alias("label"))
        out = work / f"synth-{seed}-out"
        rows = measure(folder, out, labels)
        rows.update(per_scheme(truth, out))
        results[f"synth seed {seed}"] = rows
        firms = pl.read_csv(
            folder / "truth" / "firms.csv", schema_overrides={"bidder_id": pl.String}
        )
        firm_labels = firms.select(
            "bidder_id", (pl.col("role") != "honest").cast(pl.Int64).alias("label")
        ).sort("bidder_id")
        results[f"synth seed {seed} firms"] = measure_firms(out, firm_labels)
        if "materials" in truth.columns:
            results[f"synth seed {seed} materials"] = measure_materials(truth, out)
            results[f"synth seed {seed} materials firms"] = measure_materials_firms(firms, out)
    return results


def _materials_detectors() -> set[str]:
    """The materials detectors that judge tenders (firm-level ones count through firms)."""
    from bidwatch.detectors import REGISTRY
    from bidwatch.detectors._base import family

    return {d.name for d in REGISTRY if family(d) == "materials" and d.subject == "tender"}


def measure_materials(truth: pl.DataFrame, out: Path) -> dict[str, dict[str, float]]:
    """materials_risk (and, for contrast, collusion_risk and risk) against the materials
    label; each materials detector alone; each materials scheme against clean tenders."""
    tenders = pl.read_csv(out / "tenders.csv", schema_overrides={"tender_id": pl.String})
    table = truth.join(
        tenders.select("tender_id", "risk", "collusion_risk", "materials_risk"), on="tender_id"
    )
    y = table.get_column("materials").cast(pl.Int64).to_numpy()
    rows = {
        column.replace("_", " "): _scores(table.get_column(column).fill_null(0).to_numpy(), y)
        for column in ("materials_risk", "collusion_risk", "risk")
    }
    findings = pl.read_parquet(out / "findings.parquet").filter(pl.col("subject_kind") == "tender")
    summary = json.loads((out / "scan.json").read_text(encoding="utf-8"))
    rows.update(detector_rows(summary, findings, table, y, _materials_detectors()))
    schemes = table.get_column("materials_scheme").fill_null("").unique().sort()
    for scheme in (s for s in schemes if s):
        subset = table.filter(
            (pl.col("materials") == 0) | (pl.col("materials_scheme").fill_null("") == scheme)
        )
        labels = subset.get_column("materials").cast(pl.Int64).to_numpy()
        rows[f"scheme {scheme} (materials risk)"] = _scores(
            subset.get_column("materials_risk").to_numpy(), labels
        )
    return rows


def measure_materials_firms(truth: pl.DataFrame, out: Path) -> dict[str, dict[str, float]]:
    """Firms' materials_risk against the planted contractors."""
    firms = pl.read_csv(
        out / "firms.csv", schema_overrides={"firm_id": pl.String, "bidder_ids": pl.String}
    )
    of_bidder = firms.select(
        "materials_risk", pl.col("bidder_ids").str.split(";").alias("bidder_id")
    ).explode("bidder_id")
    table = truth.select(
        "bidder_id", (pl.col("materials_role").fill_null("") != "").cast(pl.Int64).alias("label")
    ).join(of_bidder, on="bidder_id", how="left")
    y = table.get_column("label").to_numpy()
    return {
        "firm materials risk": _scores(
            table.get_column("materials_risk").fill_null(0).to_numpy(), y
        )
    }


def per_scheme(truth: pl.DataFrame, out: Path) -> dict[str, dict[str, float]]:
    """Each planted scheme's tenders against the clean ones, by collusion risk."""
    tenders = pl.read_csv(out / "tenders.csv", schema_overrides={"tender_id": pl.String})
    table = truth.join(tenders.select("tender_id", "collusion_risk"), on="tender_id")
    rows = {}
    for scheme in sorted(s for s in table.get_column("scheme").fill_null("").unique() if s):
        subset = table.filter((pl.col("collusive") == 0) | (pl.col("scheme") == scheme))
        y = subset.get_column("collusive").cast(pl.Int64).to_numpy()
        scores = subset.get_column("collusion_risk").to_numpy()
        rows[f"scheme {scheme} (collusion risk)"] = _scores(scores, y)
    return rows


def render(results: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = []
    for dataset, rows in results.items():
        base = next(iter(rows.values()))["base"]
        reference = SUPERVISED_BASELINE.get(dataset.split("+")[0])
        ref = (
            f"; supervised screens baseline {reference:.2f}"
            if reference and "firms" not in dataset
            else ""
        )
        lines += [
            f"### {dataset} ({'materials' if 'materials' in dataset else 'collusive'} "
            f"share {base:.2f}{ref})",
            "",
            "| signal | ROC-AUC | precision @10% | flag rate |",
            "|---|---|---|---|",
        ]
        for name, row in rows.items():
            if "skipped" in row:
                lines.append(f"| {name} | skipped | | |")
                continue
            rate = f"{row['flag_rate']:.1%}" if "flag_rate" in row else ""
            lines.append(f"| {name} | {row['auc']:.3f} | {row['p@10%']:.2f} | {rate} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder holding garcia2022/"
    )
    parser.add_argument(
        "--synth-seeds", type=int, nargs="*", default=[1, 2, 3], help="synth seeds to measure"
    )
    parser.add_argument("--synth-tenders", type=int, default=5000, help="tenders per synth dataset")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = real_data(args.data, work) if args.data.is_dir() else {}
        if not results:
            print(
                f"no labelled data under {args.data}; measuring synthetic data only",
                file=sys.stderr,
            )
        results |= synthetic(args.synth_seeds, args.synth_tenders, work)
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
