"""Raw frames -> canonical tables. The only code that knows how sources write things.

Every column is parsed by its schema kind into a value and, per row, a problem (or null).
A row with a problem is rejected with (file, row, column, value, reason); it never vanishes
and never reaches a detector. Values are parsed by vectorised polars expressions first; only
the distinct values those cannot read go through the Python parsers below.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from bidwatch.errors import InputError
from bidwatch.ingest import ROW, RawTable
from bidwatch.schema import TABLES, Column, Table, alias_index, header_key, split_unit
from bidwatch.units import parse_unit

SRC = "_src"
REJECTED_SCHEMA = {
    "file": pl.String,
    "table": pl.String,
    "row": pl.Int64,
    "where": pl.String,
    "column": pl.String,
    "value": pl.String,
    "reason": pl.String,
}

# Above this no amount is a price, and amounts in cents would overflow 64-bit integers.
MAX_AMOUNT = 1e15


def empty_rejected() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECTED_SCHEMA)


# ---------------------------------------------------------------------------------- amounts

_CN_DIGITS = {
    "零": 0, "〇": 0, "壹": 1, "一": 1, "贰": 2, "二": 2, "两": 2, "叁": 3, "三": 3,
    "肆": 4, "四": 4, "伍": 5, "五": 5, "陆": 6, "六": 6, "柒": 7, "七": 7, "捌": 8, "八": 8,
    "玖": 9, "九": 9,
}  # fmt: skip
_CN_SMALL_UNITS = {"拾": 10, "十": 10, "佰": 100, "百": 100, "仟": 1000, "千": 1000}
_CN_AMOUNT = re.compile(
    r"^[零〇壹一贰二两叁三肆四伍五陆六柒七捌八玖九拾十佰百仟千万亿元圆角分整正]+$"
)
_UNIT_SUFFIXES = (
    ("百万元", 1e6), ("百万", 1e6), ("亿元", 1e8), ("亿", 1e8), ("万元", 1e4), ("万", 1e4),
    ("千元", 1e3), ("元整", 1.0), ("元", 1.0), ("圆", 1.0),
)  # fmt: skip
_CURRENCY = re.compile(
    r"(?i)^(rmb|cny|usd|eur|chf|jpy|uah|人民币)|(rmb|cny|usd|eur|chf|jpy|uah)$|[¥$€£₴]"
)
_THOUSANDS = re.compile(r"^\d{1,3}([,' ]\d{3})+(\.\d+)?$")


def chinese_amount(text: str) -> tuple[float, bool] | None:
    """Read a Chinese uppercase amount: 壹佰贰拾万元整 -> (1200000.0, True).

    The flag says whether the amount names its unit (元); one that does not (壹佰贰拾) is in
    the column's unit. Digits must be separated by units (一二三 is not an amount).
    """
    if not _CN_AMOUNT.match(text):
        return None
    total = 0.0
    section = 0.0
    number = 0.0
    fraction = 0.0
    after_yuan = False
    previous_digit = False
    for ch in text:
        if ch in _CN_DIGITS:
            if previous_digit and number and _CN_DIGITS[ch]:
                return None
            number = _CN_DIGITS[ch] or number
            previous_digit = True
            continue
        previous_digit = False
        if after_yuan and ch in "角分":
            fraction += number * (0.1 if ch == "角" else 0.01)
            number = 0
        elif ch in _CN_SMALL_UNITS:
            section += (number or 1) * _CN_SMALL_UNITS[ch]
            number = 0
        elif ch == "万":
            total += (section + number) * 1e4
            section = number = 0
        elif ch == "亿":
            total = (total + section + number) * 1e8
            section = number = 0
        elif ch in "元圆":
            total += section + number
            section = number = 0
            after_yuan = True
    if not after_yuan:
        total += section + number
    return round(total + fraction, 2), after_yuan


def amount_text(
    text: str, scale: float = 1.0, *, decimal_comma: bool = False
) -> tuple[float | None, str | None]:
    """Parse an amount as people write it; returns (value, problem).

    ``scale`` is the unit of the column (a header "报价(万元)" gives 10000); a value that
    writes its own unit ("12万", "壹佰万元整", "3,000元") keeps its own. ``decimal_comma``
    is the column's convention (see ``decimal_comma``): "1.234" is 1.234 unless the column
    writes "1.234,56".
    """
    raw = text
    text = unicodedata.normalize("NFKC", text).strip().replace("\u3000", "")
    if not text:
        return None, None
    chinese = chinese_amount(text)
    if chinese is not None:
        value, own_unit = chinese
        return (value if own_unit else value * scale), None
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1].strip()
    text = _CURRENCY.sub("", text).strip()
    for suffix, factor in _UNIT_SUFFIXES:
        if text.endswith(suffix):
            text, scale = text[: -len(suffix)].strip(), factor
            break
    text = _CURRENCY.sub("", text).strip()
    if text.startswith("-"):
        negative, text = not negative, text[1:].strip()
    elif text.startswith("+"):
        text = text[1:].strip()
    if decimal_comma:
        text = re.sub(r"[.' ]", "", text).replace(",", ".")
    elif _THOUSANDS.match(text):
        text = re.sub(r"[,' ]", "", text)
    elif re.fullmatch(_COMMA_DECIMAL, text):
        text = re.sub(r"[.' ]", "", text).replace(",", ".")
    try:
        if text[:1] in ("+", "-"):
            raise ValueError(text)
        number = float(text)
    except ValueError:
        return None, (
            f"amount {raw!r} is not a number; write digits like 1234567.89, 1,234,567, "
            "123.4万 or 壹佰贰拾万元整"
        )
    if not math.isfinite(number):
        return None, f"amount {raw!r} is not a finite number"
    return (-number if negative else number) * scale, None


# Forms that can only be read one way: 1.234.567 and 12,5 only with a decimal comma,
# 1,234,567 and 12.5 only with a decimal point. 1.234 or 1,234 alone can be either.
_COMMA_DECIMAL = (
    r"^[+-]?(\d{1,3}(\.\d{3}){2,}(,\d+)?|\d{1,3}(\.\d{3})+,\d+|\d+,\d{1,2}|\d+,\d{4,})$"
)
_POINT_DECIMAL = (
    r"^[+-]?(\d{1,3}(,\d{3}){2,}(\.\d+)?|\d{1,3}(,\d{3})+\.\d+|\d+\.\d{1,2}|\d+\.\d{4,})$"
)


def decimal_comma(values: pl.Series) -> bool:
    """Whether a column writes its decimals with a comma (1.234,56) rather than a point.

    Decided once per column, so that every value of it is read the same way: a column is
    comma-decimal only when some values can only be read so and none only the other way.
    """
    bare = values.str.strip_chars().str.replace_all(r"[¥$€£₴\s]", "")
    comma = bool(bare.str.contains(_COMMA_DECIMAL).any())
    point = bool(bare.str.contains(_POINT_DECIMAL).any())
    return comma and not point


# ------------------------------------------------------------------------------------ dates

DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日",
)
_EXCEL_EPOCH = datetime(1899, 12, 30)
_CN_DATE = re.compile(
    r"^(\d{4})年(\d{1,2})月(\d{1,2})日\s*(?:(\d{1,2})[时:：](\d{1,2})(?:分)?(?:[:：](\d{1,2})秒?)?)?$"
)


def date_text(text: str, fmt: str | None = None) -> tuple[datetime | None, str | None]:
    """Parse a date or timestamp; returns (naive datetime, problem).

    Offsets are converted to UTC. Bare integers are read by size: 8 digits as YYYYMMDD,
    9-10 digits as Unix seconds, 13 digits as Unix milliseconds, 20000-80000 as an Excel
    serial day number.
    """
    raw = text
    text = unicodedata.normalize("NFKC", text).strip()
    if not text:
        return None, None
    if fmt:
        try:
            return datetime.strptime(text, fmt), None
        except ValueError:
            return None, f"date {raw!r} does not match date_format {fmt!r} from the mapping file"
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        return parsed, None
    except ValueError:
        pass
    if re.fullmatch(r"\d+(\.\d+)?", text):
        number = float(text)
        digits = len(text.split(".")[0])
        if digits == 8:
            try:
                return datetime.strptime(text[:8], "%Y%m%d"), None
            except ValueError:
                pass
        elif digits in (9, 10):
            return datetime.fromtimestamp(number, UTC).replace(tzinfo=None), None
        elif digits == 13:
            return datetime.fromtimestamp(number / 1000, UTC).replace(tzinfo=None), None
        elif 20000 <= number <= 80000:
            return _EXCEL_EPOCH + timedelta(days=number), None
    match = _CN_DATE.match(text)
    if match:
        y, mo, d, h, mi, s = (int(g) if g else 0 for g in match.groups())
        try:
            return datetime(y, mo, d, h, mi, s), None
        except ValueError:
            pass
    for candidate in DATE_FORMATS:
        try:
            return datetime.strptime(text, candidate), None
        except ValueError:
            continue
    return None, (
        f"date {raw!r} is not a date bidwatch reads; write 2024-03-01 or 2024-03-01 09:30, "
        'or set date_format = "..." under [options] in the mapping file'
    )


# -------------------------------------------------------------------------- flags and enums

TRUE_WORDS = frozenset(
    ("1", "1.0", "true", "t", "yes", "y", "是", "中标", "是中标", "中标人", "√", "✓", "x", "winner")
)
FALSE_WORDS = frozenset(("0", "0.0", "false", "f", "no", "n", "否", "未中标", "落标", "不中标", ""))

VALUE_WORDS: dict[str, dict[str, str]] = {
    "status": {
        "valid": "valid", "active": "valid", "pending": "valid", "qualified": "valid",
        "有效": "valid", "合格": "valid", "通过": "valid", "有效标": "valid",
        "disqualified": "disqualified", "invalid": "disqualified", "rejected": "disqualified",
        "unsuccessful": "disqualified", "invalid.pre-qualification": "disqualified",
        "无效": "disqualified", "废标": "disqualified", "否决": "disqualified",
        "被否决": "disqualified", "不合格": "disqualified", "未通过": "disqualified",
        "无效标": "disqualified",
        "withdrawn": "withdrawn", "deleted": "withdrawn", "撤回": "withdrawn", "撤标": "withdrawn",
        "放弃": "withdrawn", "弃标": "withdrawn",
    },
    "award_method": {
        "lowest_price": "lowest_price", "lowest price": "lowest_price", "lowest": "lowest_price",
        "priceonly": "lowest_price", "price only": "lowest_price", "costonly": "lowest_price",
        "lowestcost": "lowest_price", "lowest cost": "lowest_price",
        "average_bid": "average_bid", "average bid": "average_bid", "average": "average_bid",
        "scoring": "scoring", "mixed": "scoring", "best value": "scoring",
        "ratedcriteria": "scoring", "qualityonly": "scoring", "bestproposal": "scoring",
        "bestvaluetogovernment": "scoring", "meat": "scoring", "singlebidonly": "lowest_price",
        "most economically advantageous tender": "scoring",
    },
    "procedure": {
        "open": "open", "公开招标": "open", "公开": "open",
        "invited": "invited", "selective": "invited", "restricted": "invited",
        "邀请招标": "invited", "邀请": "invited",
        "negotiated": "negotiated", "limited": "negotiated", "竞争性谈判": "negotiated",
        "谈判": "negotiated",
        "competitive_consultation": "competitive_consultation",
        "竞争性磋商": "competitive_consultation", "磋商": "competitive_consultation",
        "single_source": "single_source", "direct": "single_source", "单一来源": "single_source",
    },
    "result": {
        "pass": "pass", "passed": "pass", "ok": "pass", "合格": "pass", "通过": "pass",
        "符合": "pass", "符合要求": "pass", "达标": "pass", "1": "pass", "true": "pass",
        "fail": "fail", "failed": "fail", "不合格": "fail", "不通过": "fail", "不符合": "fail",
        "不符合要求": "fail", "未达标": "fail", "0": "fail", "false": "fail",
    },
    "limit": {
        "min": "min", "minimum": "min", "at_least": "min", "下限": "min", "不小于": "min",
        "max": "max", "maximum": "max", "at_most": "max", "上限": "max", "不大于": "max",
    },
}  # fmt: skip

# Chinese method names vary ("经评审的最低投标价法", "综合评估法（暗标）"): a marker word decides.
VALUE_MARKERS: dict[str, tuple[tuple[str, str], ...]] = {
    "award_method": (
        ("最低", "lowest_price"),
        ("平均", "average_bid"),
        ("基准价", "average_bid"),
        ("合理低价", "average_bid"),
        ("综合", "scoring"),
        ("评分", "scoring"),
    ),
}


def value_key(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().casefold()


# --------------------------------------------------------------------------- the normaliser


@dataclass(frozen=True)
class ColumnMap:
    source: str
    column: str
    scale: float | None = None


@dataclass(frozen=True)
class Parsed:
    """One source's rows as canonical columns, with the problems of each row."""

    frame: pl.DataFrame  # canonical columns + _src + _row, every row of the source
    problems: pl.DataFrame  # _src, _row, column, value, reason
    columns: tuple[ColumnMap, ...]
    ignored: tuple[str, ...]


def map_headers(
    raw: RawTable, user: dict[str, str], table: Table
) -> tuple[list[ColumnMap], list[str]]:
    """Source header -> canonical column, from the user mapping first, then built-in aliases."""
    index = alias_index(table)
    user_keys = {header_key(k): v for k, v in user.items()}
    mapped: list[ColumnMap] = []
    ignored: list[str] = []
    for header in raw.headers:
        if raw.canonical:
            mapped.append(ColumnMap(header, header))
            continue
        if header in user or header_key(header) in user_keys:
            target = user.get(header) or user_keys[header_key(header)]
            base, scale = split_unit(header)
            mapped.append(ColumnMap(header, target, scale))
            continue
        base, scale = split_unit(header)
        column = index.get(header_key(base)) or index.get(header_key(header))
        if column is None:
            ignored.append(header)
        else:
            mapped.append(ColumnMap(header, column, scale))
    by_column: dict[str, str] = {}
    for cm in mapped:
        if cm.column in by_column:
            raise InputError(
                f"{raw.path}: columns {by_column[cm.column]!r} and {cm.source!r} both map to "
                f"{table.name}.{cm.column}. Name the one to use in the mapping file, e.g. "
                f'[{table.name}] "{cm.source}" = "{cm.column}", and rename or drop the other.'
            )
        by_column[cm.column] = cm.source
    missing = [c for c in table.required if c not in by_column]
    if missing:
        found = ", ".join(repr(h) for h in raw.headers) or "none"
        fixes = " ".join(f'"<your header>" = "{m}"' for m in missing)
        raise InputError(
            f"{raw.path}: no column for required {table.name} field(s) "
            f"{', '.join(missing)}. Columns found: {found}. Add a mapping file entry under "
            f"[{table.name}], e.g. {fixes}, and pass it with --mapping."
        )
    return mapped, ignored


def normalise(
    raw: RawTable,
    src: int,
    *,
    user_columns: dict[str, str] | None = None,
    values: dict[str, dict[str, str]] | None = None,
    date_format: str | None = None,
) -> Parsed:
    """Parse one raw table into canonical columns; problems are listed, not raised."""
    table = TABLES[raw.table]
    mapped, ignored = map_headers(raw, user_columns or {}, table)
    frame = raw.frame
    values = values or {}
    out: list[pl.Series] = []
    problems: list[pl.DataFrame] = []
    rows = frame.get_column(ROW)
    for cm in mapped:
        column = table.column(cm.column)
        source = frame.get_column(cm.source)
        if source.dtype.is_nested() or source.dtype == pl.Binary:
            raise InputError(
                f"{raw.path}: column {cm.source!r} holds {source.dtype} values, which cannot be "
                f"read as {table.name}.{column.name}; store it as text or numbers, or map "
                "another column to it."
            )
        try:
            parsed, problem = parse_column(column, source, cm.scale, values, date_format)
        except pl.exceptions.PolarsError as exc:
            raise InputError(
                f"{raw.path}: column {cm.source!r} ({source.dtype}) cannot be read as "
                f"{table.name}.{column.name}: {str(exc).splitlines()[0]}"
            ) from None
        out.append(parsed.alias(column.name))
        if problem.null_count() < problem.len():
            problems.append(_problem_rows(rows, column.name, source, problem))
    present = {cm.column for cm in mapped}
    for column in table.columns:
        if column.name not in present:
            out.append(pl.Series(column.name, [None] * frame.height, dtype=column.dtype))
    canonical = (
        pl.DataFrame(out)
        .select(table.names)
        .with_columns(pl.lit(src, dtype=pl.UInt16).alias(SRC), rows.alias(ROW))
    )
    problems.extend(_structural_problems(raw, table, canonical, mapped))
    problem_frame = (
        pl.concat(problems, how="vertical")
        if problems
        else pl.DataFrame(
            schema={ROW: pl.Int64, "column": pl.String, "value": pl.String, "reason": pl.String}
        )
    ).select(pl.lit(src, dtype=pl.UInt16).alias(SRC), pl.all())
    return Parsed(canonical, problem_frame, tuple(mapped), tuple(ignored))


def _problem_rows(
    rows: pl.Series, column: str, source: pl.Series, problem: pl.Series
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            ROW: rows,
            "column": pl.Series([column] * rows.len(), dtype=pl.String),
            "value": source.cast(pl.String),
            "reason": problem,
        }
    ).filter(pl.col("reason").is_not_null())


def _structural_problems(
    raw: RawTable, table: Table, canonical: pl.DataFrame, mapped: list[ColumnMap]
) -> list[pl.DataFrame]:
    out: list[pl.DataFrame] = []
    data_columns = [c for c in raw.frame.columns if c != ROW]
    if data_columns:
        empty = raw.frame.filter(pl.all_horizontal(pl.col(data_columns).is_null()))
        if empty.height:
            out.append(_fixed(empty.get_column(ROW), "", None, "empty row"))
    for name in raw.overflow:
        stray = raw.frame.filter(pl.col(name).is_not_null())
        if stray.height:
            out.append(
                _fixed(
                    stray.get_column(ROW),
                    name,
                    stray.get_column(name),
                    f"row has more fields than the header ({len(raw.headers) - len(raw.overflow)} "
                    "columns); a delimiter inside an unquoted value? Quote that value.",
                )
            )
    return out


def _fixed(rows: pl.Series, column: str, value: pl.Series | None, reason: str) -> pl.DataFrame:
    n = rows.len()
    return pl.DataFrame(
        {
            ROW: rows,
            "column": pl.Series([column] * n, dtype=pl.String),
            "value": value.cast(pl.String)
            if value is not None
            else pl.Series([None] * n, dtype=pl.String),
            "reason": pl.Series([reason] * n, dtype=pl.String),
        }
    )


def parse_column(
    column: Column,
    source: pl.Series,
    scale: float | None,
    values: dict[str, dict[str, str]],
    date_format: str | None,
) -> tuple[pl.Series, pl.Series]:
    """(parsed values, problem per row) for one source column."""
    if column.kind in ("id", "text"):
        return _text(source, column.kind == "id"), _no_problem(source)
    if column.kind in ("amount", "number", "signed"):
        return _amount(source, scale or 1.0, column)
    if column.kind == "unit":
        return _unit(source, values.get(column.name, {}))
    if column.kind == "period":
        return _period(source)
    if column.kind == "date":
        return _date(source, date_format)
    if column.kind == "bool":
        return _bool(source)
    return _enum(source, column, values.get(column.name, {}))


def _no_problem(source: pl.Series) -> pl.Series:
    return pl.Series(dtype=pl.String).extend_constant(None, source.len())


def _text(source: pl.Series, is_id: bool) -> pl.Series:
    if source.dtype.is_float():
        # NaN is a missing value; integral floats (1305.0) read as integers where they fit.
        present = source.is_not_nan()
        as_int = source.cast(pl.Int64, strict=False).cast(pl.String)
        integral = present & (source == source.floor()) & as_int.is_not_null()
        return pl.select(
            pl.when(integral).then(as_int).when(present).then(source.cast(pl.String))
        ).to_series()
    if source.dtype != pl.String:
        source = source.cast(pl.String)
    # Control and format characters (a tab, a zero-width space) are invisible in every
    # output and only make equal values differ.
    # Each rewrite runs only where some value needs it: searching costs far less than
    # rewriting millions of values that stay the same.
    invisible = r"[\p{Cc}\p{Cf}]"
    if source.str.contains(invisible).any():
        source = source.str.replace_all(invisible, "")
    stripped = source.str.strip_chars()
    spreadsheet = r"^(\d+)\.0+$"
    if is_id and stripped.str.contains(spreadsheet).any():
        # Identifiers exported through a spreadsheet gain a ".0": 1305.0 is id "1305".
        stripped = stripped.str.replace(spreadsheet, "${1}")
    return pl.select(pl.when(stripped.str.len_chars() > 0).then(stripped)).to_series()


def _slow_path(
    source: pl.Series,
    fast: pl.Series,
    parser: Callable[[str], tuple[object, str | None]],
    dtype: pl.DataType,
) -> tuple[pl.Series, pl.Series]:
    """Run ``parser`` on the distinct values the vectorised path could not read."""
    needs = source.is_not_null() & fast.is_null()
    if not needs.any():
        return fast, _no_problem(source)
    distinct = source.filter(needs).unique().to_list()
    parsed = [parser(v) for v in distinct]
    lookup = pl.DataFrame(
        {
            "_key": pl.Series(distinct, dtype=pl.String),
            "_value": pl.Series([p[0] for p in parsed], dtype=dtype),
            "_problem": pl.Series([p[1] for p in parsed], dtype=pl.String),
        }
    )
    joined = pl.DataFrame({"_key": source, "_fast": fast}).join(
        lookup, on="_key", how="left", maintain_order="left"
    )
    value = joined.select(pl.coalesce("_fast", "_value")).to_series()
    return value, joined.get_column("_problem")


def _amount(source: pl.Series, scale: float, column: Column) -> tuple[pl.Series, pl.Series]:
    if source.dtype.is_numeric():
        value = source.cast(pl.Float64) * scale
        problem = pl.select(
            pl.when(value.is_not_null() & ~value.is_finite()).then(
                pl.lit("amount is not a finite number")
            )
        ).to_series()
    else:
        source = source.cast(pl.String)
        comma = decimal_comma(source)
        # The common forms read vectorised: currency signs and thousands separators off.
        bare = source.str.strip_chars().str.replace_all(r"^(?:RMB|CNY|¥|￥|\$|€)\s*", "")
        if comma:
            bare = bare.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
        else:
            thousands = bare.str.contains(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
            bare = pl.select(
                pl.when(thousands).then(bare.str.replace_all(",", "", literal=True)).otherwise(bare)
            ).to_series()
        fast = bare.cast(pl.Float64, strict=False)
        fast = pl.select(pl.when(fast.is_finite()).then(fast * scale)).to_series()
        value, problem = _slow_path(
            source, fast, lambda t: amount_text(t, scale, decimal_comma=comma), pl.Float64()
        )
    signed = column.kind == "signed"
    sign = pl.select(
        pl.when(pl.lit(not signed) & (value <= 0))
        .then(
            pl.format(
                "{} {} is {}; {} must be above zero (leave the cell empty if unknown)",
                pl.lit(column.name),
                source.cast(pl.String),
                pl.when(value < 0).then(pl.lit("negative")).otherwise(pl.lit("zero")),
                pl.lit(column.name),
            )
        )
        .when(value.abs() > MAX_AMOUNT)
        .then(
            pl.format(
                "{} {} is above {} (a thousand trillion); no tender is that large: check the "
                "unit (元 or 万元) and the decimal separator",
                pl.lit(column.name),
                source.cast(pl.String),
                pl.lit(f"{MAX_AMOUNT:.0e}"),
            )
        )
    ).to_series()
    problem = pl.select(pl.coalesce(problem, sign)).to_series()
    value = pl.select(pl.when(problem.is_null()).then(value)).to_series()
    return value.alias(column.name), problem


def _date(source: pl.Series, date_format: str | None) -> tuple[pl.Series, pl.Series]:
    dtype = pl.Datetime("us")
    if source.dtype in (pl.Date,) or isinstance(source.dtype, pl.Datetime):
        value = source.cast(dtype)
        if isinstance(source.dtype, pl.Datetime) and source.dtype.time_zone:
            value = source.dt.convert_time_zone("UTC").dt.replace_time_zone(None).cast(dtype)
        return value, _no_problem(source)
    source = source.cast(pl.String)
    if date_format:
        return _slow_path(
            source,
            pl.Series([None] * source.len(), dtype=dtype),
            lambda t: date_text(t, date_format),
            dtype,
        )
    stripped = source.str.strip_chars()
    fast = pl.select(
        pl.coalesce(
            [stripped.str.strptime(dtype, fmt, strict=False, exact=True) for fmt in DATE_FORMATS]
        )
    ).to_series()
    return _slow_path(source, fast, date_text, dtype)


def _bool(source: pl.Series) -> tuple[pl.Series, pl.Series]:
    if source.dtype == pl.Boolean:
        return source, _no_problem(source)
    if source.dtype.is_numeric():
        text = source.cast(pl.Float64).cast(pl.String)
    else:
        text = source.cast(pl.String)
    key = text.str.strip_chars().str.to_lowercase()
    value = pl.select(
        pl.when(key.is_in(list(TRUE_WORDS)))
        .then(True)
        .when(key.is_in(list(FALSE_WORDS)) | key.is_null())
        .then(pl.when(key.is_not_null()).then(False))
    ).to_series()
    problem = pl.select(
        pl.when(key.is_not_null() & ~key.is_in(list(TRUE_WORDS | FALSE_WORDS))).then(
            pl.format(
                "{} is not a yes/no value; use 1/0, true/false or 是/否",
                text,
            )
        )
    ).to_series()
    return value, problem


def _enum(source: pl.Series, column: Column, user: dict[str, str]) -> tuple[pl.Series, pl.Series]:
    source = source.cast(pl.String)
    words = {**VALUE_WORDS.get(column.name, {}), **{value_key(k): v for k, v in user.items()}}
    words.update({v: v for v in column.values})
    markers = VALUE_MARKERS.get(column.name, ())

    def lookup(text: str) -> tuple[str | None, str | None]:
        key = value_key(text)
        if not key:
            return None, None
        if key in words:
            return words[key], None
        for marker, target in markers:
            if marker in key:
                return target, None
        return None, (
            f"{column.name} {text!r} is not one of {', '.join(column.values)}; map it under "
            f'[values.{column.name}] in the mapping file if it means one of them: "{text}" = "..."'
        )

    empty = pl.Series([None] * source.len(), dtype=pl.String)
    return _slow_path(source, empty, lookup, pl.String())


def _unit(source: pl.Series, user: dict[str, str]) -> tuple[pl.Series, pl.Series]:
    """Units read into one symbol each (元/吨, 元/t and 吨 are "t"); the mapping's
    [values.unit] spells out the ones bidwatch does not know."""
    mapped = {value_key(k): v for k, v in user.items()}

    def lookup(text: str) -> tuple[str | None, str | None]:
        target = mapped.get(value_key(text))
        if target is not None:
            symbol, problem = parse_unit(target)
            if problem:
                return None, f"[values.unit] maps {text!r} to {target!r}: {problem}"
            return symbol, None
        return parse_unit(text)

    source = source.cast(pl.String)
    empty = pl.Series([None] * source.len(), dtype=pl.String)
    return _slow_path(source, empty, lookup, pl.String())


_PERIOD = re.compile(r"^(\d{4})\s*(?:[-/.年]\s*)?(\d{1,2})\s*月?(?:[-/.]\d{1,2}日?)?(?:\s.*)?$")


def period_text(text: str) -> tuple[str | None, str | None]:
    """A month, "YYYY-MM", from 2024-03, 2024/3, 2024年3月, 202403 or a date in it."""
    stripped = unicodedata.normalize("NFKC", text).strip()
    if not stripped:
        return None, None
    match = _PERIOD.match(stripped)
    if match:
        year, month = int(match.group(1)), int(match.group(2))
        if 1900 <= year <= 2200 and 1 <= month <= 12:
            return f"{year:04d}-{month:02d}", None
    return None, f"period {text!r} is not a month; write it as YYYY-MM, e.g. 2024-03"


def _period(source: pl.Series) -> tuple[pl.Series, pl.Series]:
    if source.dtype == pl.Date or isinstance(source.dtype, pl.Datetime):
        return source.dt.strftime("%Y-%m"), _no_problem(source)
    if source.dtype.is_numeric():
        source = source.cast(pl.Int64, strict=False)
    source = source.cast(pl.String)
    empty = pl.Series([None] * source.len(), dtype=pl.String)
    return _slow_path(source, empty, period_text, pl.String())
