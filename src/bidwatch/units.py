"""Units of measure: every spelling a source uses, read into one symbol, and the factor that
turns a quantity in that unit into its dimension's base unit.

Two quantities (or two unit prices) are compared only after both are in the base unit of
one dimension: a price per kg is a thousand times a price per t, and a price per 套 is not
comparable with a price per 个. A unit that is not listed here is rejected by ``normalise``,
never compared raw.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class Unit:
    symbol: str
    dimension: str
    factor: float  # one of this unit in the dimension's base unit
    spellings: tuple[str, ...] = ()


UNITS: tuple[Unit, ...] = (
    Unit("t", "mass", 1.0, ("t", "吨", "ton", "tons", "tonne", "tonnes", "公吨")),
    Unit("kg", "mass", 1e-3, ("kg", "公斤", "千克", "kilogram", "kilograms")),
    Unit("g", "mass", 1e-6, ("g", "克", "gram", "grams")),
    Unit("m3", "volume", 1.0, ("m3", "立方米", "立方", "方", "cubic metre", "cubic meter", "cbm")),
    Unit("l", "volume", 1e-3, ("l", "升", "litre", "liter", "litres", "liters")),
    Unit(
        "m2", "area", 1.0, ("m2", "平方米", "平米", "平方", "square metre", "square meter", "sqm")
    ),
    Unit("km2", "area", 1e6, ("km2", "平方公里", "平方千米")),
    Unit("mu", "area", 2000.0 / 3.0, ("亩", "mu")),
    Unit("m", "length", 1.0, ("m", "米", "延米", "延长米", "metre", "meter", "metres", "meters")),
    Unit("km", "length", 1e3, ("km", "公里", "千米", "kilometre", "kilometer")),
    Unit("cm", "length", 1e-2, ("cm", "厘米", "公分")),
    Unit("mm", "length", 1e-3, ("mm", "毫米")),
    Unit("0.01mm", "length", 1e-5, ("0.01mm", "1/100mm", "百分之一毫米")),
    Unit("MPa", "pressure", 1.0, ("mpa", "兆帕", "n/mm2")),
    Unit("kPa", "pressure", 1e-3, ("kpa", "千帕")),
    Unit("kN", "force", 1.0, ("kn", "千牛")),
    Unit("%", "ratio", 1.0, ("%", "percent", "百分比", "百分率")),
    Unit("m/km", "roughness", 1.0, ("m/km", "iri")),
    Unit("d", "time", 1.0, ("d", "天", "日", "day", "days")),
    Unit("h", "time", 1.0 / 24.0, ("h", "小时", "hour", "hours")),
    # Labour is priced per working day (工日) of 8 working hours (工时), not per clock day.
    Unit("工日", "labour", 1.0, ("工日", "man-day", "man-days")),
    Unit("工时", "labour", 1.0 / 8.0, ("工时", "man-hour", "man-hours")),
    Unit("kWh", "energy", 1.0, ("kwh", "千瓦时", "度")),
    # Counts: a price per 套 (set) is not a price per 个 (piece), so each is its own dimension.
    Unit("pc", "count:pc", 1.0, ("pc", "pcs", "piece", "pieces", "个", "只", "件", "块", "根")),
    Unit("set", "count:set", 1.0, ("set", "sets", "套", "组")),
    Unit("unit", "count:unit", 1.0, ("unit", "units", "台", "座", "樘", "处", "项", "item")),
    Unit("lump", "count:lump", 1.0, ("lump sum", "lump", "总价", "总额", "元/项总价")),
)

BY_SYMBOL: dict[str, Unit] = {u.symbol: u for u in UNITS}

_PRICE_PREFIX = re.compile(r"^(?:元|圆|rmb|cny|yuan|¥)\s*/\s*", re.IGNORECASE)
_SUPERSCRIPT = str.maketrans({"²": "2", "³": "3"})


def _key(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_SUPERSCRIPT)
    return re.sub(r"\s+", " ", text.strip()).casefold()


SPELLINGS: dict[str, str] = {}
for _unit in UNITS:
    for _spelling in (_unit.symbol, *_unit.spellings):
        _k = _key(_spelling)
        if SPELLINGS.setdefault(_k, _unit.symbol) != _unit.symbol:
            raise AssertionError(f"unit spelling {_spelling!r} claimed twice")


def parse_unit(text: str) -> tuple[str | None, str | None]:
    """(symbol, problem) for one written unit: "元/吨", "元/t" and "t" all read as "t"."""
    key = _key(text)
    if not key:
        return None, None
    bare = _PRICE_PREFIX.sub("", key)
    # NFKC turns ㎡ into m2 and ㎥ into m3 already; "m^2" and "平方米/m2" remain.
    bare = bare.replace("^", "")
    if bare in SPELLINGS:
        return SPELLINGS[bare], None
    if "/" in bare and not bare.startswith(("0.01", "1/100", "m/km", "n/mm")):
        head = key.split("/", 1)[0]
        if head in ("万元", "千元", "万", "usd", "eur"):
            return None, (
                f"unit {text!r} prices in {head}; give unit prices in 元 per unit "
                "(元/t, 元/m3) so that they compare with the reference prices"
            )
    known = ", ".join(u.symbol for u in UNITS)
    return None, (
        f"unit {text!r} is not a known unit of measure ({known}); write it as one of these, "
        f'or map it under [values.unit] in the mapping file: "{text}" = "t"'
    )


def dimension(symbol: pl.Expr) -> pl.Expr:
    """The dimension of a unit symbol column (mass, volume, ..., count:set)."""
    return symbol.replace_strict(
        list(BY_SYMBOL), [u.dimension for u in UNITS], default=None, return_dtype=pl.String
    )


def factor(symbol: pl.Expr) -> pl.Expr:
    """How many base units one of this unit is (kg -> 0.001 t)."""
    return symbol.replace_strict(
        list(BY_SYMBOL), [u.factor for u in UNITS], default=None, return_dtype=pl.Float64
    )


def base_symbol(symbol: pl.Expr) -> pl.Expr:
    """The base unit of a symbol's dimension (kg -> t, cm -> m)."""
    bases = {u.dimension: u.symbol for u in UNITS if u.factor == 1.0}
    return symbol.replace_strict(
        list(BY_SYMBOL),
        [bases[u.dimension] for u in UNITS],
        default=None,
        return_dtype=pl.String,
    )
