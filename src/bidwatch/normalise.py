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
    comma, point = (
        pl.DataFrame({"v": values.cast(pl.String)}).select(_decimal_forms(pl.col("v"))).row(0)
    )
    return bool(comma) and not point


def _decimal_forms(values: pl.Expr) -> list[pl.Expr]:
    """Whether some value can only be read with a decimal comma; whether some only with a
    decimal point."""
    bare = values.str.strip_chars().str.replace_all(r"[¥$€£₴\s]", "")
    return [
        bare.str.contains(_COMMA_DECIMAL).any().alias("comma"),
        bare.str.contains(_POINT_DECIMAL).any().alias("point"),
    ]


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
    readers: list[_Reader] = []
    for cm in mapped:
        column = table.column(cm.column)
        dtype = frame.schema[cm.source]
        if dtype.is_nested() or dtype == pl.Binary:
            raise InputError(
                f"{raw.path}: column {cm.source!r} holds {dtype} values, which cannot be "
                f"read as {table.name}.{column.name}; store it as text or numbers, or map "
                "another column to it."
            )
        readers.append(
            _reader(
                column,
                cm.source,
                dtype=dtype,
                scale=cm.scale,
                values=values or {},
                date_format=date_format,
                position=len(readers),
            )
        )
    try:
        wide = _read_columns(frame, readers)
    except pl.exceptions.PolarsError:
        # One pass reads every column: read them one by one to name the column that fails.
        for cm, reader in zip(mapped, readers, strict=True):
            try:
                _read_columns(frame.select(cm.source), [reader])
            except pl.exceptions.PolarsError as exc:
                raise InputError(
                    f"{raw.path}: column {cm.source!r} ({frame.schema[cm.source]}) cannot be "
                    f"read as {table.name}.{reader.column.name}: {str(exc).splitlines()[0]}"
                ) from None
        raise
    by_name = {reader.column.name: reader.final(wide) for reader in readers}
    canonical = wide.select(
        *[
            by_name[c.name].alias(c.name)
            if c.name in by_name
            else pl.lit(None, dtype=c.dtype).alias(c.name)
            for c in table.columns
        ],
        pl.lit(src, dtype=pl.UInt16).alias(SRC),
        pl.col(ROW),
    )
    problems: list[pl.DataFrame] = []
    for reader in readers:
        if reader.flag_name in wide.columns and wide.get_column(reader.flag_name).any():
            problems.append(
                wide.filter(pl.col(reader.flag_name)).select(
                    pl.col(ROW),
                    pl.lit(reader.column.name, dtype=pl.String).alias("column"),
                    pl.col(reader.source).cast(pl.String).alias("value"),
                    reader.problem().alias("reason"),
                )
            )
    del wide
    problems.extend(_structural_problems(raw))
    problem_frame = (
        pl.concat(problems, how="vertical")
        if problems
        else pl.DataFrame(
            schema={ROW: pl.Int64, "column": pl.String, "value": pl.String, "reason": pl.String}
        )
    ).select(pl.lit(src, dtype=pl.UInt16).alias(SRC), pl.all())
    return Parsed(canonical, problem_frame, tuple(mapped), tuple(ignored))


def _structural_problems(raw: RawTable) -> list[pl.DataFrame]:
    out: list[pl.DataFrame] = []
    data_columns = [c for c in raw.frame.columns if c != ROW]
    if data_columns:
        empty = raw.frame.filter(pl.all_horizontal(pl.col(data_columns).is_null()))
        if empty.height:
            out.append(_fixed(empty, "", None, "empty row"))
    for name in raw.overflow:
        stray = raw.frame.filter(pl.col(name).is_not_null())
        if stray.height:
            out.append(
                _fixed(
                    stray,
                    name,
                    name,
                    f"row has more fields than the header ({len(raw.headers) - len(raw.overflow)} "
                    "columns); a delimiter inside an unquoted value? Quote that value.",
                )
            )
    return out


def _fixed(rows: pl.DataFrame, column: str, value: str | None, reason: str) -> pl.DataFrame:
    return rows.select(
        pl.col(ROW),
        pl.lit(column, dtype=pl.String).alias("column"),
        (
            pl.col(value).cast(pl.String) if value is not None else pl.lit(None, dtype=pl.String)
        ).alias("value"),
        pl.lit(reason, dtype=pl.String).alias("reason"),
    )


def parse_column(
    column: Column,
    source: pl.Series,
    scale: float | None,
    values: dict[str, dict[str, str]],
    date_format: str | None,
) -> tuple[pl.Series, pl.Series]:
    """(parsed values, problem per row) for one source column."""
    frame = pl.DataFrame({"_source": source})
    reader = _reader(
        column,
        "_source",
        dtype=source.dtype,
        scale=scale,
        values=values,
        date_format=date_format,
        position=0,
    )
    wide = _read_columns(frame, [reader])
    problem = (
        wide.select(pl.when(pl.col(reader.flag_name)).then(reader.problem())).to_series()
        if reader.flag_name in wide.columns
        else pl.Series(dtype=pl.String).extend_constant(None, source.len())
    )
    return wide.select(reader.final(wide)).to_series().alias(column.name), problem.alias("reason")


# ------------------------------------------------------------------------- column readers
#
# Every column of a table is read in the same few passes over the table (polars runs the
# columns of one pass in parallel): first facts about whole columns (which values need
# cleaning, does the column write decimal commas); then, column by column, what is computed
# once and used several times (the cleaned rows, the vectorised reading of dates and text
# amounts); then the distinct values that only the Python parsers above read; then every
# value and whether its row has a problem. The text of a problem is built only for the
# rows that have one.


@dataclass(frozen=True)
class _Lookup:
    """The Python parser's answer for each distinct value the vectorised path cannot read."""

    keys: pl.Series
    values: pl.Series
    problems: pl.Series

    def value(self, key: pl.Expr) -> pl.Expr:
        return key.replace_strict(self.keys, self.values, default=None)

    def problem(self, key: pl.Expr) -> pl.Expr:
        return key.replace_strict(self.keys, self.problems, default=None)


class _Reader:
    """How one source column is read into one canonical column."""

    parser: Callable[[str], tuple[object, str | None]] | None = None
    dtype: pl.DataType = pl.String()

    def __init__(self, column: Column, source: str, position: int) -> None:
        self.column = column
        self.source = source
        self.value_name = f"\x00value {position}"
        self.flag_name = f"\x00flag {position}"
        self.fact_name = f"\x00fact {position} "
        self.facts: dict[str, object] = {}
        self.lookup: _Lookup | None = None

    @property
    def col(self) -> pl.Expr:
        return pl.col(self.source)

    def fact_exprs(self) -> list[pl.Expr]:
        """Whole-column facts, each a one-row expression named ``fact_name`` + its key."""
        return []

    def slow_values(self) -> pl.Expr | None:
        """The values (strings) the vectorised path cannot read, if the parser reads any."""
        return None

    def slow_key(self) -> pl.Expr:
        return self.col.cast(pl.String)

    def value(self) -> pl.Expr:
        raise NotImplementedError

    # Whether rows with a problem lose their value (a value is read and then refused).
    drops_flagged = False

    def final(self, wide: pl.DataFrame) -> pl.Expr:
        """The canonical column, from the frame ``_read_columns`` returned."""
        value = pl.col(self.value_name)
        if self.drops_flagged and wide.get_column(self.flag_name).any():
            return pl.when(~pl.col(self.flag_name)).then(value)
        return value

    def flag(self) -> pl.Expr | None:
        """True on rows with a problem; the rows ``problem`` is evaluated on."""
        if self.lookup is None:
            return None
        return self.lookup.problem(self.slow_key()).is_not_null()

    def problem(self) -> pl.Expr:
        assert self.lookup is not None
        return self.lookup.problem(self.slow_key())

    def fact(self, key: str) -> object:
        return self.facts[key]

    def prepare(self, frame: pl.DataFrame) -> None:
        """Compute what the later passes use more than once, once (after the facts)."""

    def finish(self, frame: pl.DataFrame) -> None:
        """Use the parser's answers (``lookup``) before the pass over every row."""


def _read_columns(frame: pl.DataFrame, readers: list[_Reader]) -> pl.DataFrame:
    """The raw frame plus, per reader, its value column and (if any row has one) a problem
    flag column."""
    lazy = frame.lazy()
    fact_exprs = [e for r in readers for e in r.fact_exprs()]
    if fact_exprs:
        facts = lazy.select(fact_exprs).collect()
        for r in readers:
            r.facts = {
                k[len(r.fact_name) :]: facts.get_column(k)[0]
                for k in facts.columns
                if k.startswith(r.fact_name)
            }
    for r in readers:
        r.prepare(frame)
    slow = [(r, e) for r in readers if (e := r.slow_values()) is not None]
    if slow:
        found = lazy.select(
            e.drop_nulls().unique(maintain_order=True).implode().alias(r.value_name)
            for r, e in slow
        ).collect()
        for r, _ in slow:
            distinct = found.get_column(r.value_name)[0]
            if distinct.len():
                assert r.parser is not None
                parsed = [r.parser(v) for v in distinct.to_list()]
                r.lookup = _Lookup(
                    distinct,
                    pl.Series([p[0] for p in parsed], dtype=r.dtype),
                    pl.Series([p[1] for p in parsed], dtype=pl.String),
                )
    columns: list[pl.Expr] = []
    for r in readers:
        r.finish(frame)
        columns.append(r.value().alias(r.value_name))
        flag = r.flag()
        if flag is not None:
            columns.append(flag.fill_null(False).alias(r.flag_name))
    # select, not with_columns: with_columns left the new columns in other chunks than the
    # old ones, and every later select of the frame realigned (copied) them.
    return lazy.select(pl.all(), *columns).collect()


def _reader(
    column: Column,
    source: str,
    *,
    dtype: pl.DataType,
    scale: float | None,
    values: dict[str, dict[str, str]],
    date_format: str | None,
    position: int,
) -> _Reader:
    if column.kind in ("id", "text"):
        return _Text(column, source, position, dtype)
    if column.kind in ("amount", "number", "signed"):
        return _Amount(column, source, position, dtype, scale or 1.0)
    if column.kind == "unit":
        return _Unit(column, source, position, values.get(column.name, {}))
    if column.kind == "period":
        return _Period(column, source, position, dtype)
    if column.kind == "date":
        return _Date(column, source, position, dtype, date_format)
    if column.kind == "bool":
        return _Bool(column, source, position, dtype)
    return _Enum(column, source, position, values.get(column.name, {}))


# Control and format characters (a tab, a zero-width space) are invisible in every output
# and only make equal values differ.
_INVISIBLE = r"[\p{Cc}\p{Cf}]"
# Identifiers exported through a spreadsheet gain a ".0": 1305.0 is id "1305".
_SPREADSHEET = r"^(\d+)\.0+$"


class _Text(_Reader):
    def __init__(self, column: Column, source: str, position: int, dtype: pl.DataType) -> None:
        super().__init__(column, source, position)
        self.is_id = column.kind == "id"
        self.is_float = dtype.is_float()
        self.text = self.col if dtype == pl.String else self.col.cast(pl.String)
        self.cleaned: pl.Series | None = None

    def fact_exprs(self) -> list[pl.Expr]:
        if self.is_float:
            return []
        # Rewriting millions of values that stay the same costs far more than one search:
        # only the rows that need it are cleaned. Stripping spaces and removing a
        # spreadsheet ".0" leave other values as they are, so one search finds all three
        # (and the empty values, which become null).
        dirty = rf"^$|{_INVISIBLE}|^\s|\s$" + (r"|^\d+\.0+$" if self.is_id else "")
        return [
            pl.arg_where(self.text.str.contains(dirty)).implode().alias(self.fact_name + "dirty")
        ]

    def prepare(self, frame: pl.DataFrame) -> None:
        if self.is_float:
            return
        rows = self.fact("dirty")
        assert isinstance(rows, pl.Series)
        if not rows.len():
            return
        text = frame.select(self.text).to_series()
        dirty = pl.lit(text.gather(rows))
        dirty = dirty.str.replace_all(_INVISIBLE, "").str.strip_chars()
        if self.is_id:
            dirty = dirty.str.replace(_SPREADSHEET, "${1}")
        cleaned = pl.select(pl.when(dirty.str.len_bytes() > 0).then(dirty)).to_series()
        self.cleaned = text.clone().scatter(rows, cleaned)

    def value(self) -> pl.Expr:
        if self.is_float:
            # NaN is a missing value; integral floats (1305.0) read as integers where they fit.
            present = self.col.is_not_nan()
            as_int = self.col.cast(pl.Int64, strict=False).cast(pl.String)
            integral = present & (self.col == self.col.floor()) & as_int.is_not_null()
            return pl.when(integral).then(as_int).when(present).then(self.col.cast(pl.String))
        return self.text if self.cleaned is None else pl.lit(self.cleaned)


class _Amount(_Reader):
    dtype = pl.Float64()

    def __init__(
        self, column: Column, source: str, position: int, dtype: pl.DataType, scale: float
    ) -> None:
        super().__init__(column, source, position)
        self.numeric = dtype.is_numeric()
        self.scale = scale
        # Text amounts: what the vectorised path reads, then with the parser's values, and
        # where the parser read nothing. Each is computed once and used by several steps.
        self.fast: pl.Series | None = None
        self.read: pl.Series | None = None
        self.unread: pl.Series | None = None

    def fact_exprs(self) -> list[pl.Expr]:
        if self.numeric:
            return []
        return [form.name.prefix(self.fact_name) for form in _decimal_forms(self.slow_key())]

    @property
    def comma(self) -> bool:
        """The column's decimal convention, as ``decimal_comma`` decides it."""
        return bool(self.fact("comma")) and not self.fact("point")

    def parser(self, text: str) -> tuple[object, str | None]:
        return amount_text(text, self.scale, decimal_comma=self.comma)

    def prepare(self, frame: pl.DataFrame) -> None:
        if not self.numeric:
            self.fast = frame.select(self._fast()).to_series()

    def finish(self, frame: pl.DataFrame) -> None:
        if self.numeric:
            return
        assert self.fast is not None
        if self.lookup is None:
            self.read = self.fast
            return
        key = self.slow_key()
        found = frame.select(
            pl.coalesce(pl.lit(self.fast), self.lookup.value(key)).alias("read"),
            self.lookup.problem(key).is_not_null().alias("unread"),
        )
        self.read, self.unread = found.get_column("read"), found.get_column("unread")

    def _fast(self) -> pl.Expr:
        # The common forms read vectorised: currency signs and thousands separators off.
        bare = self.slow_key().str.strip_chars().str.replace_all(r"^(?:RMB|CNY|¥|￥|\$|€)\s*", "")
        if self.comma:
            bare = bare.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
        else:
            thousands = bare.str.contains(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
            bare = (
                pl.when(thousands).then(bare.str.replace_all(",", "", literal=True)).otherwise(bare)
            )
        fast = bare.cast(pl.Float64, strict=False)
        return pl.when(fast.is_finite()).then(fast * self.scale)

    def slow_values(self) -> pl.Expr | None:
        if self.numeric:
            return None
        assert self.fast is not None
        return self.slow_key().filter(pl.lit(self.fast).is_null())

    def _read(self) -> pl.Expr:
        """The amount before the range checks."""
        if self.numeric:
            value = self.col.cast(pl.Float64)
            # x * 1.0 is x: the column is kept as it is rather than copied.
            return value if self.scale == 1.0 else value * self.scale
        assert self.read is not None
        return pl.lit(self.read)

    def _unread(self) -> pl.Expr:
        """Whether the value could not be read at all."""
        if self.numeric:
            value = self._read()
            return value.is_not_null() & ~value.is_finite()
        return pl.lit(False) if self.unread is None else pl.lit(self.unread)

    def _out_of_range(self) -> pl.Expr:
        value = self._read()
        below = pl.lit(False) if self.column.kind == "signed" else value <= 0
        return below | (value.abs() > MAX_AMOUNT)

    drops_flagged = True

    def value(self) -> pl.Expr:
        return self._read()

    def flag(self) -> pl.Expr:
        return self._unread().fill_null(False) | self._out_of_range().fill_null(False)

    def problem(self) -> pl.Expr:
        name = self.column.name
        # Evaluated on the flagged rows only: the value is the column read before.
        value = pl.col(self.value_name)
        unread = (
            pl.when(value.is_not_null() & ~value.is_finite()).then(
                pl.lit("amount is not a finite number")
            )
            if self.numeric
            else self.lookup.problem(self.slow_key())
            if self.lookup is not None
            else pl.lit(None, dtype=pl.String)
        )
        shown = self.slow_key()
        checks = (
            pl.when(pl.lit(self.column.kind != "signed") & (value <= 0))
            .then(
                pl.format(
                    "{} {} is {}; {} must be above zero (leave the cell empty if unknown)",
                    pl.lit(name),
                    shown,
                    pl.when(value < 0).then(pl.lit("negative")).otherwise(pl.lit("zero")),
                    pl.lit(name),
                )
            )
            .when(value.abs() > MAX_AMOUNT)
            .then(
                pl.format(
                    "{} {} is above {} (a thousand trillion); no tender is that large: check "
                    "the unit (元 or 万元) and the decimal separator",
                    pl.lit(name),
                    shown,
                    pl.lit(f"{MAX_AMOUNT:.0e}"),
                )
            )
        )
        return pl.coalesce(unread, checks)


class _Date(_Reader):
    dtype = pl.Datetime("us")

    def __init__(
        self,
        column: Column,
        source: str,
        position: int,
        dtype: pl.DataType,
        date_format: str | None,
    ) -> None:
        super().__init__(column, source, position)
        self.source_dtype = dtype
        self.typed = dtype == pl.Date or isinstance(dtype, pl.Datetime)
        self.date_format = date_format
        self.fast: pl.Series | None = None

    def parser(self, text: str) -> tuple[object, str | None]:
        return date_text(text, self.date_format)

    def prepare(self, frame: pl.DataFrame) -> None:
        """Read the dates in the first of ``DATE_FORMATS`` that fits each: a format is tried
        only on the values the ones before it did not read (a column usually keeps to one)."""
        if self.typed or self.date_format:
            return
        stripped = frame.select(self.slow_key().str.strip_chars()).to_series()
        first, *others = DATE_FORMATS
        fast = stripped.str.strptime(self.dtype, first, strict=False, exact=True)
        rows = (stripped.is_not_null() & fast.is_null()).arg_true()
        for fmt in others:
            if not rows.len():
                break
            parsed = stripped.gather(rows).str.strptime(self.dtype, fmt, strict=False, exact=True)
            read = parsed.is_not_null()
            if read.any():
                fast = fast.scatter(rows.filter(read), parsed.filter(read))
            rows = rows.filter(~read)
        self.fast = fast

    def _fast(self) -> pl.Expr:
        if self.fast is None:
            return pl.lit(None, dtype=self.dtype)
        return pl.lit(self.fast)

    def slow_values(self) -> pl.Expr | None:
        if self.typed:
            return None
        if self.date_format:
            return self.slow_key()
        return self.slow_key().filter(self._fast().is_null())

    def value(self) -> pl.Expr:
        if self.typed:
            if isinstance(self.source_dtype, pl.Datetime) and self.source_dtype.time_zone:
                return (
                    self.col.dt.convert_time_zone("UTC").dt.replace_time_zone(None).cast(self.dtype)
                )
            return self.col.cast(self.dtype)
        if self.lookup is None:
            return self._fast()
        return pl.coalesce(self._fast(), self.lookup.value(self.slow_key()))


class _Bool(_Reader):
    def __init__(self, column: Column, source: str, position: int, dtype: pl.DataType) -> None:
        super().__init__(column, source, position)
        self.boolean = dtype == pl.Boolean
        self.text = (
            self.col.cast(pl.Float64).cast(pl.String)
            if dtype.is_numeric()
            else self.col.cast(pl.String)
        )
        self.key = self.text.str.strip_chars().str.to_lowercase()

    def value(self) -> pl.Expr:
        if self.boolean:
            return self.col
        key = self.key
        return (
            pl.when(key.is_in(list(TRUE_WORDS)))
            .then(True)
            .when(key.is_in(list(FALSE_WORDS)) | key.is_null())
            .then(pl.when(key.is_not_null()).then(False))
        )

    def flag(self) -> pl.Expr | None:
        if self.boolean:
            return None
        return self.key.is_not_null() & ~self.key.is_in(list(TRUE_WORDS | FALSE_WORDS))

    def problem(self) -> pl.Expr:
        return pl.format("{} is not a yes/no value; use 1/0, true/false or 是/否", self.text)


class _Enum(_Reader):
    """A value from a fixed list: the column's own words, the mapping's, and marker words."""

    def __init__(self, column: Column, source: str, position: int, user: dict[str, str]) -> None:
        super().__init__(column, source, position)
        words = {**VALUE_WORDS.get(column.name, {}), **{value_key(k): v for k, v in user.items()}}
        words.update({v: v for v in column.values})
        self.words = words
        self.markers = VALUE_MARKERS.get(column.name, ())

    def parser(self, text: str) -> tuple[object, str | None]:
        column = self.column
        key = value_key(text)
        if not key:
            return None, None
        if key in self.words:
            return self.words[key], None
        for marker, target in self.markers:
            if marker in key:
                return target, None
        return None, (
            f"{column.name} {text!r} is not one of {', '.join(column.values)}; map it under "
            f'[values.{column.name}] in the mapping file if it means one of them: "{text}" = "..."'
        )

    def slow_values(self) -> pl.Expr | None:
        return self.slow_key()

    def value(self) -> pl.Expr:
        if self.lookup is None:
            return pl.lit(None, dtype=self.dtype)
        return self.lookup.value(self.slow_key())


class _Unit(_Enum):
    """Units read into one symbol each (元/吨, 元/t and 吨 are "t"); the mapping's
    [values.unit] spells out the ones bidwatch does not know."""

    def __init__(self, column: Column, source: str, position: int, user: dict[str, str]) -> None:
        super().__init__(column, source, position, {})
        self.mapped = {value_key(k): v for k, v in user.items()}

    def parser(self, text: str) -> tuple[object, str | None]:
        target = self.mapped.get(value_key(text))
        if target is not None:
            symbol, problem = parse_unit(target)
            if problem:
                return None, f"[values.unit] maps {text!r} to {target!r}: {problem}"
            return symbol, None
        return parse_unit(text)


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


class _Period(_Enum):
    def __init__(self, column: Column, source: str, position: int, dtype: pl.DataType) -> None:
        super().__init__(column, source, position, {})
        self.typed = dtype == pl.Date or isinstance(dtype, pl.Datetime)
        self.numeric = dtype.is_numeric()

    def parser(self, text: str) -> tuple[object, str | None]:
        return period_text(text)

    def slow_key(self) -> pl.Expr:
        if self.numeric:
            return self.col.cast(pl.Int64, strict=False).cast(pl.String)
        return self.col.cast(pl.String)

    def slow_values(self) -> pl.Expr | None:
        return None if self.typed else self.slow_key()

    def value(self) -> pl.Expr:
        if self.typed:
            return self.col.dt.strftime("%Y-%m")
        return super().value()
