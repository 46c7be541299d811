"""The command line: each command parses its arguments, calls the core, writes the result.

Bad input ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from bidwatch import api, catalogue
from bidwatch.errors import InputError
from bidwatch.parallel import checked_jobs
from bidwatch.report.tables import FORMULA_START
from bidwatch.schema import AFTER_AWARD

TABLE_FILES = ("bids", "tenders", "firms", *AFTER_AWARD)
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".parquet", ".pq")
EXIT_BAD_INPUT = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        return int(args.run(args))
    except InputError as exc:
        print(f"bidwatch: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bidwatch",
        description="Find bid rigging and substandard-materials risk in procurement data.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    scan = sub.add_parser(
        "scan",
        help="scan tender data and write ranked, explained results",
        description=(
            "Scan bids (and tenders, firms, OCDS files) and write tenders.csv, firms.csv, "
            "findings.csv/.parquet, contributions.csv, entities.csv, rejected.csv, scan.json "
            "and report.html into OUT. A DIR argument is searched for bids.*, tenders.*, "
            "firms.*, contracts.*, change_orders.*, items.*, reference_prices.*, "
            "inspections.* (CSV, Excel or Parquet), OCDS *.json / *.jsonl, mapping.toml and "
            "bidwatch.toml."
        ),
    )
    scan.add_argument("dir", nargs="?", type=Path, help="folder holding the input files")
    scan.add_argument("--bids", type=Path, help="bids file (CSV, Excel or Parquet)")
    scan.add_argument("--tenders", type=Path, help="tenders file")
    scan.add_argument("--firms", type=Path, help="firm registry file")
    for table in AFTER_AWARD:
        scan.add_argument(
            f"--{table.replace('_', '-')}",
            dest=table,
            type=Path,
            help=f"{table.replace('_', ' ')} file (after the award)",
        )
    scan.add_argument(
        "--ocds",
        type=Path,
        action="append",
        default=[],
        help="OCDS JSON or JSON Lines file (repeatable)",
    )
    scan.add_argument("--config", type=Path, help="bidwatch.toml: detectors, parameters, weights")
    scan.add_argument("--mapping", type=Path, help="mapping.toml: source headers and values")
    scan.add_argument("--out", type=Path, required=True, help="output folder")
    scan.add_argument("--no-html", action="store_true", help="skip report.html (batch runs)")
    scan.add_argument("--quiet", action="store_true", help="no progress or summary")
    scan.add_argument(
        "--lang",
        choices=("en", "zh"),
        default="en",
        help="language of report.html: en (English, default) or zh (中文)",
    )
    scan.add_argument(
        "--xlsx", action="store_true", help="also write report.xlsx: one sheet per ranking"
    )
    scan.add_argument(
        "--graph",
        action="store_true",
        help="also write the co-bid and shared-trace graph as graph.graphml and graph.gexf",
    )
    scan.add_argument(
        "--jobs",
        type=_jobs,
        default=None,
        metavar="N",
        help="inputs checked and detectors run at a time (default: 2, or 1 on a single "
        "core); the results are the same, 1 holds the least memory",
    )
    scan.set_defaults(run=cmd_scan)

    det = sub.add_parser("detectors", help="list the detectors, or show one's documentation")
    det.add_argument("name", nargs="?", help="a detector name")
    det.set_defaults(run=cmd_detectors)

    cat = sub.add_parser("catalogue", help="write the detectors/ catalogue from the code")
    cat.add_argument("--check", action="store_true", help="fail if the catalogue is out of date")
    cat.add_argument(
        "--dir", type=Path, default=Path("detectors"), help="catalogue folder (default: detectors)"
    )
    cat.set_defaults(run=cmd_catalogue)

    synth = sub.add_parser("synth", help="generate synthetic tenders with planted schemes")
    synth.add_argument("--tenders", type=int, default=1000, help="number of tenders (default 1000)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--out", type=Path, required=True, help="output folder")
    synth.add_argument(
        "--format", choices=("csv", "parquet"), default="csv", help="file format (default csv)"
    )
    synth.set_defaults(run=cmd_synth)

    init = sub.add_parser("init", help="write a bidwatch.toml with every detector's defaults")
    init.add_argument(
        "path",
        nargs="?",
        type=Path,
        default=Path("bidwatch.toml"),
        help="where to write it (default: bidwatch.toml)",
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(run=cmd_init)

    explain = sub.add_parser("explain", help="print why a tender or firm got its risk")
    explain.add_argument("id", help="a tender_id or firm_id")
    explain.add_argument("--scan", type=Path, required=True, help="output folder of a scan")
    explain.set_defaults(run=cmd_explain)
    return parser


def _jobs(text: str) -> int:
    try:
        return checked_jobs(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of detectors to run at a time: give 1 or more, e.g. --jobs 2"
        ) from None


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("bidwatch")
    except metadata.PackageNotFoundError:
        return "unknown"


def find_inputs(folder: Path) -> dict[str, Any]:
    """Table files (bids.csv, contracts.parquet, ...), OCDS files, mapping.toml and
    bidwatch.toml in a folder."""
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder; give a folder of input files or use --bids.")
    found: dict[str, Any] = {"ocds": []}
    for table in TABLE_FILES:
        hits = sorted(
            p
            for p in folder.iterdir()
            if p.stem.lower() == table and p.suffix.lower() in TABLE_SUFFIXES
        )
        if len(hits) > 1:
            raise InputError(
                f"{folder}: several {table} files ({', '.join(p.name for p in hits)}); keep one, "
                f"or name it with --{table}."
            )
        if hits:
            found[table] = hits[0]
    found["ocds"] = sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in (".json", ".jsonl") and p.name != "scan.json"
    )
    for name, key in (("mapping.toml", "mapping"), ("bidwatch.toml", "config")):
        if (folder / name).is_file():
            found[key] = folder / name
    return found


def cmd_scan(args: argparse.Namespace) -> int:
    given: dict[str, Any] = find_inputs(args.dir) if args.dir else {"ocds": []}
    for key in (*TABLE_FILES, "config", "mapping"):
        if getattr(args, key) is not None:
            given[key] = getattr(args, key)
    given["ocds"] = list(given["ocds"]) + list(args.ocds)
    if "bids" not in given and not given["ocds"]:
        where = f" in {args.dir}" if args.dir else ""
        raise InputError(
            f"no bids found{where}: pass --bids FILE, a folder holding bids.csv "
            "(or .xlsx / .parquet), or --ocds FILE."
        )
    if args.dir and args.out.resolve() == args.dir.resolve():
        raise InputError(
            f"{args.out}: the output folder is the folder being scanned; its outputs would be "
            "read as inputs next time. Choose another --out folder."
        )
    show = not args.quiet and sys.stderr.isatty()
    with _progress(show) as report:
        report("reading", 0, 1)
        data = api.load(
            bids=given.get("bids"),
            tenders=given.get("tenders"),
            firms=given.get("firms"),
            **{table: given.get(table) for table in AFTER_AWARD},
            ocds=given["ocds"],
            mapping=given.get("mapping"),
            progress=report,
            jobs=args.jobs,
        )
        result = api.scan(data, config=given.get("config"), progress=report, jobs=args.jobs)
        written = result.write(
            args.out,
            html=not args.no_html,
            lang=args.lang,
            xlsx=args.xlsx,
            graph=args.graph,
            progress=report,
        )
    if not args.quiet:
        print(_summary(result, args.out, written))
    return 0


class _progress:
    """rich progress on stderr while a scan runs; silent when not a terminal or --quiet."""

    def __init__(self, show: bool) -> None:
        self.show = show
        self.bar: Any = None

    def __enter__(self) -> Any:
        if not self.show:
            return lambda step, done, total: None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("{task.description:<24}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.bar.start()
        task = self.bar.add_task("reading", total=1)

        def report(step: str, done: int, total: int) -> None:
            self.bar.update(task, description=step, completed=done, total=max(total, 1))

        return report

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _summary(result: api.ScanResult, out: Path, written: list[Path]) -> str:
    """One screen: what was read, what ran, the top of each ranking, where to look next."""
    tenders = result.ranking("tender")
    rejected = sum(s.rows_rejected for s in result.data.sources)
    read = sum(s.rows_read for s in result.data.sources)
    ran = sum(r.status == "ran" for r in result.runs)
    lines = [
        f"Scanned {tenders.height} tenders, {result.data.bids.height} bids, "
        f"{result.risk.firms.height} firms; {rejected} of {read} input rows rejected"
        + (" (see rejected.csv)." if rejected else "."),
        f"{ran} of {len(result.runs)} detectors ran; {len(result.findings)} findings.",
    ]
    skipped: dict[str, list[str]] = {}
    for run in result.runs:
        if run.status == "skipped":
            skipped.setdefault(run.reason or "", []).append(run.name)
    for reason, names in skipped.items():
        lines.append(f"  skipped {_some(names)}: {reason}")
    top = tenders.filter(pl.col("risk") > 0).head(5)
    if top.height:
        lines.append("Top tenders:")
        for row in top.iter_rows(named=True):
            lines.append(
                f"  {row['rank']:>3}. {row['tender_id']}  risk {row['risk']:.1f}  "
                f"(collusion {row['collusion_risk']:.1f}, materials {row['materials_risk']:.1f})"
            )
    materials = result.ranking("tender", by="materials_risk")
    materials = materials.filter(pl.col("materials_risk") > 0).head(5)
    if materials.height:
        lines.append("Top tenders by materials risk:")
        for row in materials.iter_rows(named=True):
            lines.append(
                f"  {row['rank']:>3}. {row['tender_id']}  materials risk "
                f"{row['materials_risk']:.1f}"
            )
    firms = result.ranking("firm").filter(pl.col("risk") > 0).head(3)
    if firms.height:
        lines.append("Top firms:")
        for row in firms.iter_rows(named=True):
            lines.append(
                f"  {row['rank']:>3}. {row['firm_id']}  risk {row['risk']:.1f}  {row['name'] or ''}"
            )
    groups = result.ranking("group").filter(pl.col("risk") > 0).head(3)
    if groups.height:
        lines.append("Top suspected groups:")
        for row in groups.iter_rows(named=True):
            lines.append(
                f"  {row['rank']:>3}. {row['group_id']}  risk {row['risk']:.1f}  "
                f"{row['tenders']} tenders together: {_some(row['members'].split(';'))}"
            )
    lines.append(f"Wrote {len(written)} files to {out}")
    if any(p.name == "report.html" for p in written):
        lines.append(f"Open {out / 'report.html'} to review the cases.")
    if top.height:
        lines.append(f"Why the top tender: bidwatch explain {top['tender_id'][0]} --scan {out}")
    return "\n".join(lines)


def _some(names: list[str], shown: int = 4) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def cmd_detectors(args: argparse.Namespace) -> int:
    from bidwatch.detectors import REGISTRY, get

    if args.name:
        try:
            detector = get(args.name)
        except KeyError:
            names = ", ".join(d.name for d in REGISTRY)
            raise InputError(f"no detector {args.name!r}; detectors are: {names}.") from None
        print(catalogue.markdown(detector), end="")
        return 0
    width = max(len(d.name) for d in REGISTRY)
    for detector in REGISTRY:
        summary, _ = catalogue.sections(detector)
        print(f"{detector.name:<{width}}  {detector.subject:<6}  {summary}")
    return 0


def cmd_catalogue(args: argparse.Namespace) -> int:
    if args.check:
        issues = catalogue.check(args.dir)
        for issue in issues:
            print(issue, file=sys.stderr)
        if issues:
            print("run `bidwatch catalogue` to regenerate it", file=sys.stderr)
            return 1
        print(f"{args.dir}: catalogue is up to date")
        return 0
    written = catalogue.write(args.dir)
    print(f"wrote {len(written)} files to {args.dir}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from bidwatch import synth

    if args.tenders < 1:
        raise InputError(f"--tenders must be at least 1, got {args.tenders}.")
    data = synth.generate(tenders=args.tenders, seed=args.seed)
    try:
        written = data.write(args.out, fmt=args.format)
    except OSError as exc:
        raise InputError(f"{args.out}: cannot write there ({exc}).") from None
    print(f"wrote {len(written)} files to {args.out}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from bidwatch.config import default_toml

    if args.path.exists() and not args.force:
        raise InputError(f"{args.path}: exists; use --force to overwrite it.")
    args.path.write_text(default_toml(), encoding="utf-8")
    print(f"wrote {args.path}")
    return 0


EXPLAINED = (
    ("tender", "tenders.csv", "tender_id"),
    ("firm", "firms.csv", "firm_id"),
    ("group", "groups.csv", "group_id"),
    ("pair", "pairs.csv", "pair_id"),
    ("buyer", "buyers.csv", "buyer"),
)
FACTS = {
    "tender": ("title", "buyer_name", "region", "award_method", "bids", "winner"),
    "firm": ("name", "tenders", "wins", "bidder_names"),
    "group": ("members", "tenders", "wins", "detectors"),
    "pair": ("firm_a", "firm_b", "tenders"),
    "buyer": ("buyer_name", "tenders", "findings"),
}


def _where(path: Path, **equal: str) -> pl.DataFrame:
    """Rows of a scan's output whose columns equal the values; read lazily, since a
    national scan's outputs run to gigabytes."""
    frame = (
        pl.scan_parquet(path)
        if path.suffix == ".parquet"
        else pl.scan_csv(path, infer_schema=False)
    )
    for column, value in equal.items():
        # The CSV files write text that a spreadsheet would run with a leading quote.
        spelled = [value, f"'{value}"] if value.startswith(FORMULA_START) else [value]
        frame = frame.filter(pl.col(column).is_in(spelled))
    return frame.collect()


def cmd_explain(args: argparse.Namespace) -> int:
    """The report's case view in the terminal: facts, the risk's waterfall, the findings."""
    if not (args.scan / "contributions.csv").is_file():
        raise InputError(f"{args.scan}: no contributions.csv; give the --out folder of a scan.")
    found = False
    for kind, name, key in EXPLAINED:
        ranked = args.scan / name
        if not ranked.is_file():
            continue
        rows = _where(ranked, **{key: args.id})
        if rows.height == 0:
            continue
        found = True
        print("\n".join(_explain(args.scan, kind, rows.row(0, named=True), args.id)))
    if not found:
        raise InputError(
            f"{args.id}: not a tender_id, firm_id, group_id, pair_id or buyer of the scan in "
            f"{args.scan}."
        )
    return 0


def _explain(scan: Path, kind: str, row: dict[str, Any], subject: str) -> list[str]:
    risk = float(row.get("risk") or 0)
    parts = [f"{kind} {subject}: risk {risk:.1f}"]
    if "collusion_risk" in row:
        parts.append(
            f"(collusion {float(row['collusion_risk'] or 0):.1f}, "
            f"materials {float(row['materials_risk'] or 0):.1f})"
        )
    lines = [" ".join(parts)]
    shown = [f"{f}: {row[f]}" for f in FACTS[kind] if row.get(f) not in (None, "")]
    if shown:
        lines.append("  " + " · ".join(shown))
    contributions = _where(scan / "contributions.csv", subject_id=subject, subject_kind=kind)
    if contributions.height == 0:
        lines.append("  risk 0, no finding contributes" if risk == 0 else "")
    else:
        lines.append("Where the risk comes from:")
        for c in contributions.iter_rows(named=True):
            family = c.get("family") or "collusion"
            lines.append(
                f"  +{float(c['points']):5.1f}  {family:<9} {c['detector']:<22} {c['reason']}"
            )
    stored = next(
        (p for p in (scan / "findings.parquet", scan / "findings.csv") if p.is_file()), None
    )
    if stored is not None:
        findings = (
            _where(stored, subject_id=subject, subject_kind=kind)
            .with_columns(pl.col("score").cast(pl.Float64))
            .sort("score", descending=True)
        )
        if findings.height:
            lines.append(f"Findings ({findings.height}):")
            for f in findings.iter_rows(named=True):
                lines.append(f"  {f['detector']:<22} score {f['score']:.2f}  {f['message']}")
    if kind == "firm" and (scan / "entities.csv").is_file():
        merged = _where(scan / "entities.csv", firm_id=subject).filter(pl.col("method") != "self")
        if merged.height:
            lines.append("Names merged into it:")
            for m in merged.iter_rows(named=True):
                lines.append(
                    f"  {m['bidder_name']}  ({m['method']}, score {m['score']}, "
                    f"with {m['matched_with']})"
                )
    return [line for line in lines if line]


if __name__ == "__main__":
    sys.exit(main())
