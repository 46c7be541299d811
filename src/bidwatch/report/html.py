"""report.html: one self-contained page where an analyst starts a case.

The page fetches nothing: styles, charts (server-side SVG) and one small script for sorting
and filtering are inline, and its Content-Security-Policy allows that script by its hash
and nothing else. Every value is escaped by Jinja2's autoescaping. A large scan embeds its
top rows and the detail of its top subjects and says so on the page; the CSV, Parquet and
Excel outputs hold everything.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from importlib import resources
from typing import TYPE_CHECKING, Any

import polars as pl
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from bidwatch.detectors import REGISTRY
from bidwatch.detectors._base import family
from bidwatch.report import charts
from bidwatch.report.i18n import HTML_LANG, labels

if TYPE_CHECKING:
    from bidwatch.api import ScanResult

# Rows of each ranking embedded in the page, and subjects drawn in detail. A browser opens
# a page of a few megabytes at once; a 100k-tender scan is capped, and the page says so.
MAX_ROWS = 2000
DETAIL_TENDERS = 100
DETAIL_MATERIALS = 50
DETAIL_FIRMS = 100
DETAIL_GROUPS = 50
MAX_REJECTED = 500
MAX_POINTS = 600
# Characters of top reasons in a list; the case and the CSV files have them whole.
MAX_REASONS = 240
# Risk bands for filtering: risk is 0-100.
BANDS = ((50.0, "high"), (20.0, "medium"), (0.0, "low"))
TRACE_DETECTORS = ("shared-traces", "trace-network")


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("bidwatch.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["money"] = _money
    return env


def _num(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def _money(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:,.0f}"


def script() -> tuple[Markup, str]:
    """The page's one script and its CSP source: the script is the package's own file."""
    text = resources.files("bidwatch.report").joinpath("templates/report.js").read_text("utf-8")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return Markup(text), f"'sha256-{digest}'"


def band(risk: float | None) -> str:
    """high (50 and above), medium (20 to 50), low (above 0) or none."""
    value = risk or 0.0
    for floor, name in BANDS:
        if value >= floor and value > 0:
            return name
    return "none"


def render(result: ScanResult, summary: dict[str, Any], *, lang: str = "en") -> str:
    t = labels(lang)
    data = result.data
    tenders = result.ranking("tender")
    firms = result.ranking("firm")
    groups = result.ranking("group")
    pairs = result.ranking("pair")
    buyers = result.ranking("buyer").filter(pl.col("findings") > 0)
    materials = result.ranking("tender", by="materials_risk").filter(pl.col("materials_risk") > 0)

    detail_tenders = _unique(
        tenders.filter(pl.col("risk") > 0).head(DETAIL_TENDERS).get_column("tender_id"),
        materials.head(DETAIL_MATERIALS).get_column("tender_id"),
    )
    group_rows = groups.head(DETAIL_GROUPS)
    members = _group_members(group_rows)
    detail_firms = _unique(
        firms.filter(pl.col("risk") > 0).head(DETAIL_FIRMS).get_column("firm_id"),
        members.get_column("firm_id"),
    )
    entities = data.entities
    merged = (
        entities.filter(pl.col("method") != "self").sort("firm_id", "bidder_name", nulls_last=True)
        if entities is not None
        else pl.DataFrame()
    )
    firm_rows = _firm_rows(result, firms.head(MAX_ROWS), set(detail_firms))
    code, csp = script()
    return (
        environment()
        .get_template("report.html.j2")
        .render(
            t=t,
            lang=HTML_LANG[lang],
            script=code,
            script_csp=csp,
            summary=summary,
            overview=_overview(result, summary),
            tenders=_tender_rows(result, tenders.head(MAX_ROWS), set(detail_tenders)),
            tender_total=tenders.height,
            tender_filters=_filters(tenders.head(MAX_ROWS), result),
            materials=_tender_rows(result, materials.head(MAX_ROWS), set(detail_tenders)),
            materials_total=materials.height,
            firms=firm_rows,
            firm_regions=sorted({r["region"] for r in firm_rows if r["region"]}),
            firm_total=firms.height,
            groups=[dict(g, band=band(g["risk"])) for g in group_rows.to_dicts()],
            group_total=groups.height,
            pairs=pairs.head(MAX_ROWS).to_dicts(),
            pair_total=pairs.height,
            buyers=buyers.head(MAX_ROWS).to_dicts(),
            buyer_total=buyers.height,
            tender_details=_tender_details(result, detail_tenders, t),
            firm_details=_firm_details(result, detail_firms, t),
            group_details=_group_details(result, group_rows, members, t),
            materials_view=_materials_view(result, t),
            rejected=_rejected(data.rejected, summary),
            merged=merged.head(MAX_ROWS).to_dicts(),
            merged_total=merged.height,
            limits={
                "rows": MAX_ROWS,
                "tenders": DETAIL_TENDERS,
                "materials": DETAIL_MATERIALS,
                "firms": DETAIL_FIRMS,
                "groups": DETAIL_GROUPS,
                "rejected": MAX_REJECTED,
                "reasons": MAX_REASONS,
            },
        )
    )


def _unique(*columns: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for column in columns:
        for value in column:
            seen.setdefault(value, None)
    return list(seen)


# --- overview ---------------------------------------------------------------------------


def _overview(result: ScanResult, summary: dict[str, Any]) -> dict[str, Any]:
    detectors = {d.name: d for d in REGISTRY}
    runs = []
    for run in result.runs:
        cls_ = detectors.get(run.name)
        rate = run.flag_rate
        runs.append(
            {
                "name": run.name,
                "family": family(cls_) if cls_ is not None else "collusion",
                "subject": cls_.subject if cls_ is not None else "",
                "status": run.status,
                "reason": run.reason or "",
                "scanned": run.scanned,
                "flagged": run.flagged,
                "rate": None if rate is None else 100.0 * rate,
                "notes": list(run.notes),
            }
        )
    config = json.dumps(summary["config"], ensure_ascii=False, indent=2, default=str)
    return {
        "inputs": [dict(s, index=i) for i, s in enumerate(summary["inputs"])],
        "runs": runs,
        "ran": sum(r["status"] == "ran" for r in runs),
        "notes": list(summary["notes"]),
        "config": config,
    }


def _rejected(rejected: pl.DataFrame, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Rejected rows per input file, the first MAX_REJECTED of each."""
    out = []
    for i, source in enumerate(summary["inputs"]):
        if not source["rows_rejected"]:
            continue
        rows = rejected.filter(pl.col("file") == source["path"])
        if "table" in rejected.columns:
            rows = rows.filter(pl.col("table") == source["table"])
        out.append(
            {
                "index": i,
                "path": source["path"],
                "table": source["table"],
                "total": source["rows_rejected"],
                "columns": [c for c in rows.columns if c not in ("file", "table")],
                "rows": rows.head(MAX_REJECTED).to_dicts(),
            }
        )
    return out


# --- ranked lists -----------------------------------------------------------------------


def _periods(result: ScanResult) -> pl.DataFrame:
    when = pl.coalesce("published_at", "bid_deadline", "awarded_at")
    return result.data.tenders.select(
        "tender_id", when.dt.strftime("%Y-%m").alias("period")
    ).unique("tender_id", keep="first", maintain_order=True)


def _tender_rows(
    result: ScanResult, ranked: pl.DataFrame, detailed: set[str]
) -> list[dict[str, Any]]:
    rows = ranked.join(_periods(result), on="tender_id", how="left", maintain_order="left")
    out = []
    for row in rows.iter_rows(named=True):
        row["band"] = band(row["risk"])
        row["detail"] = row["tender_id"] in detailed
        row["q"] = " ".join(
            str(row[k] or "") for k in ("tender_id", "title", "winner", "buyer_name")
        ).lower()
        out.append(row)
    return out


def _filters(ranked: pl.DataFrame, result: ScanResult) -> dict[str, list[str]]:
    """The values each filter of the tender list offers: those of the embedded rows."""
    rows = ranked.join(_periods(result), on="tender_id", how="left", maintain_order="left")
    columns = {
        "region": "region",
        "buyer": "buyer_name",
        "category": "category",
        "period": "period",
        "method": "award_method",
    }
    return {
        key: sorted(v for v in rows.get_column(column).unique().to_list() if v not in (None, ""))
        for key, column in columns.items()
    }


def _firm_rows(
    result: ScanResult, ranked: pl.DataFrame, detailed: set[str]
) -> list[dict[str, Any]]:
    """Ranked firms with the region most of their bids were in, to filter by."""
    regions = (
        result.data.bids.select("tender_id", "firm_id")
        .join(ranked.select("firm_id"), on="firm_id", how="semi")
        .join(
            result.data.tenders.select("tender_id", "region").unique("tender_id", keep="first"),
            on="tender_id",
        )
        .filter(pl.col("region").is_not_null())
        .group_by("firm_id", "region")
        .agg(pl.len().alias("_n"))
        .sort(["firm_id", "_n", "region"], descending=[False, True, False])
        .unique("firm_id", keep="first")
        .select("firm_id", "region")
    )
    out = []
    rows = ranked.join(regions, on="firm_id", how="left", maintain_order="left")
    for row in rows.iter_rows(named=True):
        row["band"] = band(row["risk"])
        row["detail"] = row["firm_id"] in detailed
        row["q"] = f"{row['firm_id']} {row['name'] or ''} {row['bidder_names'] or ''}".lower()
        out.append(row)
    return out


# --- details ----------------------------------------------------------------------------


def _by(frame: pl.DataFrame, key: str) -> dict[str, pl.DataFrame]:
    if frame.height == 0:
        return {}
    return {str(k[0]): part for k, part in frame.partition_by(key, as_dict=True).items()}


def _findings_of(result: ScanResult, kind: str, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    frame = result.findings.frame.filter(
        (pl.col("subject_kind") == kind) & pl.col("subject_id").is_in(ids)
    ).sort(["subject_id", "score", "detector"], descending=[False, True, False])
    families = {d.name: family(d) for d in REGISTRY}
    out: dict[str, list[dict[str, Any]]] = {}
    for row in frame.iter_rows(named=True):
        row["family"] = families.get(row["detector"], "collusion")
        row["evidence"] = _pretty(row["evidence"])
        out.setdefault(row["subject_id"], []).append(row)
    return out


def _pretty(evidence: str | None) -> str:
    if not evidence:
        return ""
    try:
        return json.dumps(json.loads(evidence), ensure_ascii=False, indent=2)
    except ValueError:
        return evidence


def _waterfalls(
    result: ScanResult, kind: str, totals: Mapping[str, float], t: Mapping[str, str]
) -> dict[str, Markup]:
    contributions = result.contributions.filter(
        (pl.col("subject_kind") == kind)
        & pl.col("subject_id").is_in(list(totals))
        & (pl.col("points") > 0)
    ).sort(["subject_id", "points"], descending=[False, True])
    out = {}
    for subject, part in _by(contributions, "subject_id").items():
        items = [
            (f"{row['detector']} ({row['via']})" if row["via"] else row["detector"], row["points"])
            for row in part.iter_rows(named=True)
        ]
        out[subject] = charts.waterfall(items, total=float(totals[subject]), labels=t)
    return out


def _tender_details(
    result: ScanResult, ids: list[str], t: Mapping[str, str]
) -> list[dict[str, Any]]:
    if not ids:
        return []
    data = result.data
    info = result.risk.tenders.filter(pl.col("tender_id").is_in(ids))
    findings = _findings_of(result, "tender", ids)
    waterfalls = _waterfalls(
        result, "tender", dict(info.select("tender_id", "risk").iter_rows()), t
    )
    names = result.risk.firms.select("firm_id", pl.col("name").alias("_firm_name"))
    bids = (
        data.bids.filter(pl.col("tender_id").is_in(ids))
        .join(names, on="firm_id", how="left", maintain_order="left")
        .sort(["tender_id", "amount"], nulls_last=True)
    )
    bids_by = _by(bids, "tender_id")
    covers = _detector_param(result, "cover-band", "covers", 2)
    contracts = _contract_view(result).filter(pl.col("tender_id").is_in(ids))
    contracts_by = {row["tender_id"]: row for row in contracts.iter_rows(named=True)}
    prices = _price_view(result, ids)
    prices_by = _by(prices, "tender_id")
    low = _detector_param(result, "below-reference-price", "max_ratio", 0.8)
    high = _detector_param(result, "unbalanced-bid", "high", 1.5)
    out = []
    for row in info.iter_rows(named=True):
        tender = row["tender_id"]
        flagged = {
            firm for finding in findings.get(tender, []) for firm in (finding["firms"] or [])
        }
        part = bids_by.get(tender)
        marks = []
        valid: list[float] = []
        if part is not None:
            for bid in part.iter_rows(named=True):
                if bid["amount"] is None:
                    continue
                marks.append(
                    {
                        "label": bid["bidder_name"] or bid["_firm_name"] or bid["bidder_id"] or "",
                        "amount": float(bid["amount"]),
                        "winner": bool(bid["is_winner"]),
                        "flagged": bid["firm_id"] in flagged,
                    }
                )
                if (bid["status"] or "valid") == "valid":
                    valid.append(float(bid["amount"]))
        valid.sort()
        # As cover-band judges it: only where the lowest bid wins (or no rule is stated).
        lowest_wins = row["award_method"] in (None, "lowest_price")
        cover_band = (valid[0], valid[covers]) if lowest_wins and len(valid) > covers else None
        chart = (
            charts.bids_chart(
                marks,
                estimate=row["estimate"],
                band=cover_band,
                labels=t,
            )
            if marks
            else None
        )
        price_rows = prices_by.get(tender)
        out.append(
            {
                **row,
                "bids_chart": chart,
                "covers": covers,
                "findings": findings.get(tender, []),
                "waterfall": waterfalls.get(tender),
                "contract": contracts_by.get(tender),
                "price_chart": charts.price_chart(
                    [
                        {"label": p["label"], "ratio": p["ratio"], "flagged": p["flagged"]}
                        for p in price_rows.iter_rows(named=True)
                    ],
                    low=low,
                    high=high,
                    labels=t,
                )
                if price_rows is not None
                else None,
            }
        )
    return out


def _detector_param(result: ScanResult, name: str, param: str, default: Any) -> Any:
    for detector in result.config.detectors():
        if detector.name == name:
            value = getattr(detector, param, default)
            return default if value is None else value
    return default


def _firm_details(result: ScanResult, ids: list[str], t: Mapping[str, str]) -> list[dict[str, Any]]:
    if not ids:
        return []
    data = result.data
    info = result.risk.firms.filter(pl.col("firm_id").is_in(ids))
    findings = _findings_of(result, "firm", ids)
    waterfalls = _waterfalls(result, "firm", dict(info.select("firm_id", "risk").iter_rows()), t)
    when = pl.coalesce("published_at", "bid_deadline", "awarded_at")
    dated = data.tenders.select("tender_id", when.alias("_when")).unique(
        "tender_id", keep="first", maintain_order=True
    )
    bids = (
        data.bids.filter(pl.col("firm_id").is_in(ids))
        .select("tender_id", "firm_id", pl.col("is_winner").fill_null(False))
        .join(dated, on="tender_id", how="left", maintain_order="left")
    )
    activity = _by(bids, "firm_id")
    incidence = data.bids.select("tender_id", "firm_id").drop_nulls().unique()
    mine = incidence.filter(pl.col("firm_id").is_in(ids))
    cobidders = (
        mine.join(incidence, on="tender_id", suffix="_other")
        .filter(pl.col("firm_id") != pl.col("firm_id_other"))
        .group_by("firm_id", "firm_id_other")
        .agg(pl.len().alias("tenders"))
        .join(
            result.risk.firms.select(pl.col("firm_id").alias("firm_id_other"), "name", "risk"),
            on="firm_id_other",
            how="left",
        )
        .sort(["firm_id", "tenders", "firm_id_other"], descending=[False, True, False])
        .group_by("firm_id", maintain_order=True)
        .head(10)
    )
    cobidders_by = _by(cobidders, "firm_id")
    traces = (
        result.findings.frame.filter(pl.col("detector").is_in(TRACE_DETECTORS))
        .select("detector", "subject_kind", "subject_id", "message", "firms")
        # The links across tenders (trace-network) before the single tenders' shared traces.
        .sort(pl.col("detector") == TRACE_DETECTORS[0], "subject_id")
        .explode("firms")
        .filter(pl.col("firms").is_in(ids))
        .unique(["firms", "detector", "subject_id"], maintain_order=True)
        .group_by("firms", maintain_order=True)
        .head(10)
    )
    traces_by = _by(traces, "firms")
    entities = data.entities if data.entities is not None else None
    merged_by = (
        _by(entities.filter(pl.col("firm_id").is_in(ids)).sort("firm_id", "bidder_name"), "firm_id")
        if entities is not None
        else {}
    )
    out = []
    for row in info.iter_rows(named=True):
        firm = row["firm_id"]
        chart = None
        part = activity.get(firm)
        if part is not None:
            periods, bid_counts, win_counts = _activity(part)
            chart = charts.activity(periods, bid_counts, win_counts, labels=t)
        out.append(
            {
                **row,
                "activity": chart,
                "cobidders": cobidders_by[firm].to_dicts() if firm in cobidders_by else [],
                "traces": traces_by[firm].to_dicts() if firm in traces_by else [],
                "merged": merged_by[firm].to_dicts() if firm in merged_by else [],
                "findings": findings.get(firm, []),
                "waterfall": waterfalls.get(firm),
            }
        )
    return out


def _activity(bids: pl.DataFrame) -> tuple[list[str], list[int], list[int]]:
    """Bids and wins per year, or per quarter when the bids span five years or fewer."""
    dated = bids.filter(pl.col("_when").is_not_null())
    if dated.height == 0:
        return [], [], []
    first, last = dated.select(
        pl.col("_when").dt.year().min().alias("first"), pl.col("_when").dt.year().max()
    ).row(0)
    quarterly = last - first < 5
    period = (
        pl.format("{}-Q{}", pl.col("_when").dt.year(), pl.col("_when").dt.quarter())
        if quarterly
        else pl.col("_when").dt.year().cast(pl.String)
    )
    counts = (
        dated.group_by(period.alias("period"))
        .agg(pl.len().alias("bids"), pl.col("is_winner").sum().alias("wins"))
        .sort("period")
    )
    return (
        counts.get_column("period").to_list(),
        counts.get_column("bids").to_list(),
        [int(w) for w in counts.get_column("wins").to_list()],
    )


def _group_members(groups: pl.DataFrame) -> pl.DataFrame:
    if groups.height == 0:
        return pl.DataFrame(schema={"group_id": pl.String, "firm_id": pl.String})
    return (
        groups.select("group_id", pl.col("members").str.split(";").alias("firm_id"))
        .explode("firm_id")
        .filter(pl.col("firm_id") != "")
    )


def _group_details(
    result: ScanResult, groups: pl.DataFrame, members: pl.DataFrame, t: Mapping[str, str]
) -> list[dict[str, Any]]:
    if groups.height == 0:
        return []
    data = result.data
    firms = result.risk.firms.select("firm_id", "name", "risk", "wins")
    findings = _findings_of(result, "group", groups.get_column("group_id").to_list())
    incidence = data.bids.select(
        "tender_id", "firm_id", pl.col("is_winner").fill_null(False)
    ).filter(pl.col("firm_id").is_not_null())
    in_groups = incidence.join(members, on="firm_id")
    cobids = (
        in_groups.select("group_id", "tender_id", "firm_id")
        .unique()
        .join(
            in_groups.select("group_id", "tender_id", "firm_id").unique(),
            on=["group_id", "tender_id"],
            suffix="_b",
        )
        .filter(pl.col("firm_id") < pl.col("firm_id_b"))
        .group_by("group_id", "firm_id", "firm_id_b")
        .agg(pl.len().alias("cobids"))
    )
    traces = _shared_traces(result, members)
    edges = (
        cobids.join(traces, on=["group_id", "firm_id", "firm_id_b"], how="full", coalesce=True)
        .with_columns(pl.col("cobids").fill_null(0), pl.col("traces").fill_null(""))
        .sort("group_id", "firm_id", "firm_id_b")
    )
    edges_by = _by(edges, "group_id")
    # Tenders where two or more members met: who of them won, and when.
    when = pl.coalesce("awarded_at", "bid_deadline", "published_at")
    dated = data.tenders.select("tender_id", when.dt.strftime("%Y-%m-%d").alias("_date")).unique(
        "tender_id", keep="first", maintain_order=True
    )
    met = (
        in_groups.group_by("group_id", "tender_id")
        .agg(pl.col("firm_id").n_unique().alias("_n"))
        .filter(pl.col("_n") >= 2)
    )
    wins = (
        in_groups.filter(pl.col("is_winner"))
        .join(met, on=["group_id", "tender_id"], how="semi")
        .join(dated, on="tender_id", how="left")
        .sort("group_id", "_date", "tender_id", nulls_last=True)
    )
    wins_by = _by(wins, "group_id")
    met_by = {k: v.height for k, v in _by(met, "group_id").items()}
    members_by = _by(
        members.join(firms, on="firm_id", how="left", maintain_order="left"), "group_id"
    )
    out = []
    for row in groups.iter_rows(named=True):
        group = row["group_id"]
        nodes = members_by.get(group, pl.DataFrame())
        node_list = [
            {
                "id": n["firm_id"],
                "label": n["name"] or n["firm_id"],
                "wins": n["wins"] or 0,
                "risk": n["risk"] or 0.0,
            }
            for n in nodes.iter_rows(named=True)
        ]
        edge_rows = edges_by.get(group)
        edge_list = (
            [
                {
                    "a": e["firm_id"],
                    "b": e["firm_id_b"],
                    "cobids": e["cobids"],
                    "traces": e["traces"],
                }
                for e in edge_rows.iter_rows(named=True)
            ]
            if edge_rows is not None
            else []
        )
        win_rows = wins_by.get(group)
        win_list = (
            [
                (w["_date"] or "", w["firm_id"], w["tender_id"])
                for w in win_rows.iter_rows(named=True)
            ]
            if win_rows is not None
            else []
        )
        labels = [n["label"] for n in node_list]
        names = {
            n["id"]: n["label"] if labels.count(n["label"]) == 1 else f"{n['label']} ({n['id']})"
            for n in node_list
        }
        order = [names[n["id"]] for n in node_list]
        win_list = [(day, names.get(firm, firm), tender) for day, firm, tender in win_list]
        out.append(
            {
                **row,
                "nodes": node_list,
                "met": met_by.get(group, 0),
                "won": len(win_list),
                "network": charts.network(node_list, edge_list, labels=t),
                "rotation": charts.rotation(order, win_list, labels=t),
                "findings": findings.get(group, []),
            }
        )
    return out


def _shared_traces(result: ScanResult, members: pl.DataFrame) -> pl.DataFrame:
    """group_id, firm_id < firm_id_b, traces: the traces two members share, as the
    shared-traces and trace-network findings name them (the same edges as --graph)."""
    from bidwatch.report.exports import trace_pairs

    pairs = trace_pairs(result.findings.frame)
    return (
        pairs.join(members.rename({"firm_id": "firm_a"}), on="firm_a")
        .join(members.rename({"firm_id": "firm_b"}), on=["group_id", "firm_b"])
        .select(
            "group_id",
            pl.col("firm_a").alias("firm_id"),
            pl.col("firm_b").alias("firm_id_b"),
            pl.col("shared_traces").alias("traces"),
        )
    )


# --- materials --------------------------------------------------------------------------


def _contract_view(result: ScanResult) -> pl.DataFrame:
    """tender_id, contract and final amounts, change orders (count, priced total, reasons)
    and growth, as settlement-growth measures it, of each tender's largest contract."""
    from bidwatch.detectors._contracts import contract_frame
    from bidwatch.detectors.settlement_growth import change_orders, with_growth

    data = result.data
    signed = contract_frame(data).filter(pl.col("contract_amount") > 0)
    reasons = data.change_orders.group_by("tender_id").agg(
        pl.col("reason").drop_nulls().unique().sort().head(5).str.join("; ").alias("reasons")
    )
    return (
        with_growth(signed, change_orders(data))
        .join(reasons, on="tender_id", how="left")
        .sort(["tender_id", "contract_amount"], descending=[False, True])
        .unique("tender_id", keep="first", maintain_order=True)
        .select(
            "tender_id",
            "contract_amount",
            "final_amount",
            pl.col("_orders").alias("orders"),
            pl.col("_order_total").alias("changed"),
            "reasons",
            "growth",
        )
    )


def _price_view(result: ScanResult, ids: list[str]) -> pl.DataFrame:
    """tender_id, label, ratio, flagged: the contract holder's priced items with a reference
    price, unit price over reference, for the tenders ``ids``."""
    from bidwatch.detectors._after import priced_items, with_reference
    from bidwatch.detectors._bills import BIDDER, HOLDER, bill_owners

    schema = {
        "tender_id": pl.String,
        "label": pl.String,
        "ratio": pl.Float64,
        "flagged": pl.Boolean,
    }
    data = result.data
    if data.items.height == 0 or data.reference_prices.height == 0:
        return pl.DataFrame(schema=schema)
    low = _detector_param(result, "below-reference-price", "max_ratio", 0.8)
    high = _detector_param(result, "unbalanced-bid", "high", 1.5)
    # Only the drawn tenders' items: a national bill of quantities has millions of rows.
    some = replace(data, items=data.items.filter(pl.col("tender_id").is_in(ids)))
    items = priced_items(some)
    if items.height == 0:
        return pl.DataFrame(schema=schema)
    items = bill_owners(items, some).filter(pl.col(BIDDER) == pl.col(HOLDER))
    compared = with_reference(items, some).filter(pl.col("_reference") > 0)
    ratio = pl.col("_price") / pl.col("_reference")
    return compared.select(
        "tender_id",
        pl.coalesce("material", "description", "item_code")
        .cast(pl.String)
        .fill_null("")
        .alias("label"),
        ratio.alias("ratio"),
        ((ratio < low) | (ratio > high)).alias("flagged"),
    ).sort(["tender_id", "ratio"])


def _materials_view(result: ScanResult, t: Mapping[str, str]) -> dict[str, Any]:
    reasons = _change_reasons(result)
    contracts = _contract_view(result).filter(pl.col("growth").is_not_null())
    if contracts.height == 0:
        return {"growth_chart": None, "contracts": 0, "shown": 0, "reasons": reasons}
    flagged = (
        result.findings.frame.filter(pl.col("detector") == "settlement-growth")
        .select(pl.col("subject_id").alias("tender_id"))
        .unique()
        .with_columns(pl.lit(True).alias("flagged"))
    )
    points = (
        contracts.join(flagged, on="tender_id", how="left")
        .with_columns(pl.col("flagged").fill_null(False))
        .sort(["flagged", "contract_amount", "tender_id"], descending=[True, True, False])
        .head(MAX_POINTS)
    )
    limit = _detector_param(result, "settlement-growth", "max_growth", 0.15)
    chart = charts.growth_chart(
        [
            {
                "label": p["tender_id"],
                "amount": p["contract_amount"],
                "growth": p["growth"],
                "flagged": p["flagged"],
            }
            for p in points.iter_rows(named=True)
        ],
        limit=float(limit),
        labels=t,
        max_points=MAX_POINTS,
    )
    return {
        "growth_chart": chart,
        "contracts": contracts.height,
        "shown": points.height,
        "flagged": int(points.get_column("flagged").sum()),
        "limit": limit,
        "reasons": reasons,
    }


def _change_reasons(result: ScanResult, top: int = 15) -> list[dict[str, Any]]:
    """Change orders per reason: how many, on how many contracts, for how much."""
    orders = result.data.change_orders
    if orders.height == 0 or "reason" not in orders.columns:
        return []
    return (
        orders.group_by(pl.col("reason").fill_null("").alias("reason"))
        .agg(
            pl.len().alias("orders"),
            pl.col("tender_id").n_unique().alias("contracts"),
            pl.col("amount").sum().alias("amount"),
        )
        .sort(["orders", "reason"], descending=[True, False])
        .head(top)
        .to_dicts()
    )
