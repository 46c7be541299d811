"""The synthetic market after the award: contracts, change orders, bills of quantities,
reference prices and inspections, with planted materials and delivery schemes.

Private to ``bidwatch.synth``: its module docstring documents these tables, the schemes and
their truth; ``synth.generate`` calls ``after_award`` with the awarded market. Every draw
here comes from a random generator of its own (``default_rng([seed, 5])``), so the tables of
the award are the same for a seed with or without what follows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from bidwatch.schema import TABLES

Arr = npt.NDArray[Any]

US_PER_DAY = 86_400 * 1_000_000

# ------------------------------------------------------------------------ planted schemes

MATERIALS_SCHEMES = ("low_bid_recover", "substitution", "shell_contractor")
LOW_BID, SUBSTITUTION, SHELL = 1, 2, 3  # codes; 0: none
# Share of all tenders whose contract goes to a planted contractor, per scheme; the buy_in
# tenders that the buy-in firm holds come on top of low_bid_recover's.
MATERIALS_SHARE: dict[str, float] = {
    "low_bid_recover": 0.012,
    "substitution": 0.015,
    "shell_contractor": 0.005,
}
# Planted contractors are honest bidders of ordinary size: at most this many contracts.
PLANTED_MAX_WINS = 12
# low_bid_recover: the settled amount over the contract amount, the number of change orders,
# and how early in the works the first two come (share of the duration).
RECOVER_GROWTH = (0.25, 0.60)
RECOVER_ORDERS = (3, 8)
RECOVER_EARLY = (0.02, 0.20)
# low_bid_recover: in the bill of quantities, 1-3 key materials priced at this share of the
# reference price, the early items (earthworks, measures) front-loaded at RECOVER_FRONT
# times an honest price for them and the late items (subgrade, formwork, masonry) at
# RECOVER_LATE times it: both scaled down alike when the bid leaves less room, the late
# items taking any surplus.
RECOVER_CHEAP = (0.55, 0.80)
RECOVER_CHEAP_ITEMS = (1, 3)
RECOVER_FRONT = (1.5, 2.5)
RECOVER_LATE = (0.3, 0.6)
# low_bid_recover: chance that an inspection fails, and the shortfall when it does.
RECOVER_FAIL = 0.45
RECOVER_SHORTFALL = (0.03, 0.12)
# substitution: actual duration / planned, key materials priced at this share of the
# reference, the key inspection (concrete strength, pavement thickness) at this share of
# the requirement.
SUBSTITUTION_SPEED = (0.40, 0.65)
SUBSTITUTION_PRICE = (0.88, 1.00)
SUBSTITUTION_MEASURED = (0.75, 0.92)
# shell_contractor: a firm of a few contracts (at most SHELL_MAX_WINS), founded this many
# days before its first win, with this registered capital (万元), its largest contract
# SHELL_CAPACITY to SHELL_CAPACITY_MAX times the capital.
SHELL_FOUNDED_DAYS = (30, 150)
MIN_AGE_AT_FIRST_BID = 365  # days an honest firm has existed when it first bids, at least
MAX_AGE_AT_FIRST_BID = 3650 - 365
_FOUNDED_FROM = int(np.datetime64("1998-01-01", "D").astype(np.int64))
_NEW_CODES_FROM = int(np.datetime64("2015-10-01", "D").astype(np.int64))
SHELL_CAPITAL_WAN = (50, 200)
SHELL_CAPACITY, SHELL_CAPACITY_MAX = 20, 30
SHELL_MAX_WINS = 4

# ------------------------------------------------------------------------ honest delivery

SIGNING_DAYS = (3, 30)  # signed this many days after the award
# Planned duration: DURATION_DAYS x (amount / 1M yuan) ** DURATION_POWER x lognormal noise.
DURATION_DAYS, DURATION_POWER, DURATION_SD = 90.0, 0.35, 0.25
DURATION_RANGE = (30, 900)
OVERRUN = (0.05, 0.10)  # log-median and log-sd of actual / planned duration
LONG_DELAY, LONG_DELAY_FACTOR = 0.12, (1.3, 2.2)  # share of contracts much delayed, factor
CHANGE_ORDERS_MEAN = 1.2  # Poisson mean of an honest contract's change orders (at most 6)
# Honest growth of the settled amount (contracts with change orders): a few % mostly, a
# tail to 20%, some settled under the contract amount.
GROWTH = (0.025, 0.02)  # |normal| mean and sd
GROWTH_TAIL, GROWTH_TAIL_RANGE = 0.15, (0.06, 0.20)
GROWTH_DOWN, GROWTH_DOWN_RANGE = 0.08, (0.005, 0.06)
CHANGE_TIMING = (2.2, 1.5)  # beta: approvals more often in the second half of the works
HONEST_REASONS = (
    ("设计变更", 0.24),
    ("工程量调整", 0.20),
    ("地质条件变化", 0.12),
    ("材料价格调整", 0.12),
    ("业主要求增加", 0.10),
    ("政策性调整", 0.08),
    ("现场签证", 0.09),
    ("工程量增加", 0.05),
)
DOWN_REASONS = (("工程量核减", 0.6), ("设计变更", 0.4))
RECOVER_REASONS = (("工程量增加", 0.6), ("设计变更", 0.4))
REASONS = tuple(dict.fromkeys(r for r, _ in HONEST_REASONS + DOWN_REASONS + RECOVER_REASONS))
HONEST_FAIL, HONEST_SHORTFALL = 0.03, (0.005, 0.04)
INSPECTION_ROWS = (2, 5)
INSPECTED_BEFORE = 20  # days before completion, at most

# --------------------------------------------------------------- reference prices (信息价)

# name (as bills of quantities write it), unit of the published price, national price
# (元), monthly log-sd of its national walk.
MATERIALS: tuple[tuple[str, str, float, float], ...] = (
    ("道路石油沥青", "元/吨", 4500.0, 0.03),
    ("普通硅酸盐水泥P.O42.5", "元/吨", 450.0, 0.02),
    ("HRB400钢筋", "元/吨", 4200.0, 0.03),
    ("碎石", "元/m³", 110.0, 0.015),
    ("C30商品混凝土", "元/m³", 520.0, 0.015),
)
REGION_SD = (0.04, 0.05)  # log-sd of a region's level: all materials, each material
LOCAL_WALK_SD = 0.008  # monthly log-sd of a region's own walk

# -------------------------------------------------------------- bills of quantities (清单)

BOQ_SHARE = 0.15  # tenders whose priced bids come with a bill of quantities
HONEST_LEVEL = 0.87  # the estimate's items at standard prices come to this share of it
MASS, VOLUME, AREA, LUMP = range(4)
# code, description, material (index into MATERIALS, -1: none), kind of unit, standard
# price per unit (元, non-materials), timing (0 material, 1 early, 2 late).
ITEMS: tuple[tuple[str, str, int, int, float, int], ...] = (
    ("040203006001", "沥青混凝土面层 道路石油沥青 70号A级", 0, MASS, 0.0, 0),
    ("040202015001", "水泥稳定碎石基层 普通硅酸盐水泥P.O42.5", 1, MASS, 0.0, 0),
    ("010515001001", "现浇构件钢筋 HRB400", 2, MASS, 0.0, 0),
    ("040202009001", "碎石垫层 5-31.5mm", 3, VOLUME, 0.0, 0),
    ("010502001001", "现浇混凝土 C30商品混凝土", 4, VOLUME, 0.0, 0),
    ("010101002001", "挖一般土方", -1, VOLUME, 28.0, 1),
    ("040201001001", "路基处理", -1, AREA, 45.0, 2),
    ("011702001001", "现浇混凝土模板", -1, AREA, 60.0, 2),
    ("010403001001", "浆砌片石", -1, VOLUME, 420.0, 2),
    ("011707001001", "安全文明施工及其他措施项目", -1, LUMP, 0.0, 1),
)
LUMP_ITEM = 9
# Per category (road, bridge, building, water): each item's share of the works at standard
# prices, and the chance the bill has it (1: always).
ITEM_SHARE = np.array(
    [
        [0.24, 0.07, 0.04, 0.15, 0.09, 0.10, 0.15, 0.04, 0.00, 0.07],
        [0.05, 0.06, 0.20, 0.06, 0.22, 0.07, 0.00, 0.10, 0.06, 0.08],
        [0.00, 0.06, 0.22, 0.04, 0.20, 0.06, 0.00, 0.12, 0.12, 0.10],
        [0.00, 0.10, 0.08, 0.10, 0.16, 0.18, 0.05, 0.07, 0.18, 0.08],
    ]
)
ITEM_CHANCE = np.array(
    [
        [1.0, 1.0, 0.4, 1.0, 0.5, 1.0, 1.0, 1.0, 0.0, 1.0],
        [0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.5, 1.0],
        [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.6, 1.0],
        [0.0, 1.0, 0.5, 1.0, 1.0, 1.0, 0.3, 0.6, 1.0, 1.0],
    ]
)
QUANTITY_SD = 0.15  # log-sd of an item's share around the category's
MATERIAL_MARKUP = (0.03, 0.05)  # honest price / reference: log-median and log-sd
PRICE_SD = 0.12  # log-sd of an honest bidder's price of a non-material item
# How bills write units: the buyer's template spells each item's unit one way, some bidders
# their own; a few mass items are priced per kg.
SPELLINGS: tuple[tuple[str, ...], ...] = (
    ("t", "吨", "元/吨", "元/t"),
    ("m³", "立方米", "m3"),
    ("m2", "㎡", "平方米"),
    ("项",),
)
KG_SPELLINGS = ("kg", "千克", "元/kg")
OWN_SPELLING = 0.2
PER_KG = 0.04

# ------------------------------------------------------------------------- inspections

# name, unit spellings, required values, limit (min/max), honest margin (relative), decimals
INSPECTIONS: tuple[tuple[str, tuple[str, ...], tuple[float, ...], str, float, int], ...] = (
    ("路面厚度", ("cm", "厘米"), (18.0, 20.0, 22.0, 24.0), "min", 0.05, 1),
    ("压实度", ("%",), (93.0, 94.0, 95.0, 96.0), "min", 0.02, 1),
    ("弯沉", ("0.01mm",), (30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0), "max", 0.22, 0),
    ("平整度", ("m/km",), (2.0, 2.5, 3.0), "max", 0.25, 2),
    ("混凝土强度", ("MPa", "兆帕"), (25.0, 30.0, 35.0), "min", 0.12, 1),
    ("钢筋保护层厚度", ("mm", "毫米"), (25.0, 30.0, 35.0, 40.0), "min", 0.10, 0),
    ("桥面铺装厚度", ("cm", "厘米"), (8.0, 9.0, 10.0), "min", 0.05, 1),
    ("砂浆强度", ("MPa", "兆帕"), (5.0, 7.5, 10.0), "min", 0.15, 1),
    ("楼板厚度", ("mm", "毫米"), (100.0, 110.0, 120.0), "min", 0.04, 0),
    ("衬砌厚度", ("cm", "厘米"), (10.0, 12.0, 15.0), "min", 0.05, 1),
    ("墙面垂直度", ("mm", "毫米"), (5.0, 8.0, 10.0), "max", 0.40, 1),
)
# What each category's inspections measure, most important first: the first (pavement
# thickness, concrete strength) is always measured.
INSPECTED = np.array(
    [
        [0, 1, 2, 3, 4],  # road
        [4, 5, 6, 1, 3],  # bridge
        [4, 5, 7, 8, 10],  # building
        [4, 1, 7, 5, 9],  # water
    ]
)
OTHER_SPELLING = 0.2  # inspections that write the unit the other way (厘米 for cm)


def empty(table: str) -> pl.DataFrame:
    """A table with no rows and its canonical columns (dates as dates)."""
    return pl.DataFrame(
        schema={c.name: pl.Date() if c.kind == "date" else c.dtype for c in TABLES[table].columns}
    )


@dataclass(frozen=True)
class Awarded:
    """The awarded market as ``synth.generate`` holds it: indices, amounts and times."""

    tender_id: pl.Series
    region: Arr  # per tender: index into region_name
    region_name: pl.Series
    category: Arr  # per tender: road, bridge, building, water
    estimate: Arr  # per tender: cents
    deadline: Arr  # per tender: microseconds
    awarded: Arr  # per tender: microseconds
    bid_tender: Arr  # per bid, sorted by tender
    bid_firm: Arr
    bid_cents: Arr
    bid_priced: Arr  # the bid has an amount (it was not withdrawn)
    bid_winner: Arr
    bid_submitted: Arr  # microseconds
    bid_name: pl.Series  # the bidder's name as the bid writes it
    firm_id: pl.Series
    registry: pl.DataFrame
    honest: Arr  # per firm: in no group
    buy_in_held: Arr  # per tender: a buy_in tender that its buy-in firm holds


@dataclass(frozen=True)
class AfterAward:
    contracts: pl.DataFrame
    change_orders: pl.DataFrame
    items: pl.DataFrame
    reference_prices: pl.DataFrame
    inspections: pl.DataFrame
    firms: pl.DataFrame  # the registry, with the shells' founding date and capital
    tender_scheme: pl.Series  # per tender: its materials scheme, "" when clean
    firm_role: pl.Series  # per firm: its materials role, "" when none


@dataclass(frozen=True)
class _Contracts:
    bid: Arr  # the winning bid of each contract
    tender: Arr
    firm: Arr
    cents: Arr
    scheme: Arr  # 0 or the materials scheme's code
    signed: Arr  # days since the epoch
    planned: Arr  # planned duration, in days
    days: Arr  # actual duration, in days
    done: Arr  # completed and settled by the end of the data
    orders: Arr  # number of change orders
    change: Arr  # cents the change orders add up to


def after_award(seed: int, market: Awarded) -> AfterAward:
    """Contracts and what follows them for every awarded tender; see ``bidwatch.synth``."""
    rng = np.random.default_rng([seed, 5])
    n = market.tender_id.len()
    won = np.flatnonzero(market.bid_winner)
    tender, firm = market.bid_tender[won], market.bid_firm[won]
    # Founding dates are redrawn from a generator of their own, so that the draws of the
    # schemes below stay as they were.
    role, registry = _plant(rng, market, won, np.random.default_rng([seed, 6]))
    # A buy-in firm recovers its loss on the buy_in tenders it holds, not on its other work.
    held_buy_in = market.buy_in_held[tender]
    scheme = np.where(held_buy_in, LOW_BID, role[firm])
    role[firm[held_buy_in]] = LOW_BID
    tender_scheme = np.zeros(n, dtype=np.int64)
    tender_scheme[tender] = scheme

    held = _held(rng, market, won, scheme)
    month, first_month = _months(market.deadline)
    prices, level = _reference_prices(rng, market.region_name.len(), int(month.max()) + 1)
    names = pl.Series(("", *MATERIALS_SCHEMES), dtype=pl.String)
    return AfterAward(
        contracts=_contract_frame(market, held),
        change_orders=_change_orders(rng, market, held),
        items=_items(
            rng, market, tender_scheme=tender_scheme, prices=prices, level=level, month=month
        ),
        reference_prices=_price_frame(market, prices, first_month),
        inspections=_inspections(rng, market, held),
        firms=registry,
        tender_scheme=names.gather(tender_scheme),
        firm_role=names.gather(role),
    )


# ------------------------------------------------------------------------------ planting


def _plant(
    rng: np.random.Generator, market: Awarded, won: Arr, founding: np.random.Generator
) -> tuple[Arr, pl.DataFrame]:
    """Per firm its planted role (0 or a scheme code), and the registry with the shells'
    founding date and capital."""
    n_firms = market.firm_id.len()
    n = market.tender_id.len()
    firm = market.bid_firm[won]
    yuan = market.bid_cents[won] / 100.0
    wins = np.bincount(firm, minlength=n_firms)
    largest = np.zeros(n_firms)
    np.maximum.at(largest, firm, yuan)
    never = np.iinfo(np.int64).max
    first_win = np.full(n_firms, never)
    np.minimum.at(first_win, firm, market.awarded[market.bid_tender[won]] // US_PER_DAY)
    first_bid = np.full(n_firms, never)
    np.minimum.at(first_bid, market.bid_firm, market.bid_submitted // US_PER_DAY)

    eligible = market.honest & (wins > 0) & (wins <= PLANTED_MAX_WINS)
    new_code = (market.registry.get_column("credit_code").str.slice(8, 2) == "MA").to_numpy()
    gap = np.where(wins > 0, first_win - first_bid, never)
    # A shell first bids shortly before its first win (it is founded before its first
    # bid), holds an "MA" credit code (founded since 2015) and a contract that dwarfs the
    # least capital it can have.
    shell_ok = (
        eligible
        & (wins <= SHELL_MAX_WINS)
        & new_code
        & (gap < SHELL_FOUNDED_DAYS[1] - 10)
        & (largest >= SHELL_CAPACITY * SHELL_CAPITAL_WAN[0] * 1e4)
    )
    role = np.zeros(n_firms, dtype=np.int64)
    # Shells hold the larger contracts: preferred by the log of their largest, with noise.
    preference = np.log(np.maximum(largest, 1.0)) + rng.gumbel(size=n_firms)
    candidates = np.flatnonzero(shell_ok)
    shells = _take(candidates[np.argsort(-preference[candidates], kind="stable")], wins, n, SHELL)
    role[shells] = SHELL
    for code in (LOW_BID, SUBSTITUTION):
        free = np.flatnonzero(eligible & (role == 0))
        role[_take(rng.permutation(free), wins, n, code)] = code

    days = market.registry.get_column("founded_on").cast(pl.Int32).to_numpy().astype(np.int64)
    # A firm exists before it bids: one the registry founds later than a year before its
    # first bid was founded 1-10 years before it (since 2015-10 when its code says so).
    bid_day = np.where(first_bid != never, first_bid, days + MIN_AGE_AT_FIRST_BID)
    young = days > bid_day - MIN_AGE_AT_FIRST_BID
    floor = np.where(new_code, _NEW_CODES_FROM, _FOUNDED_FROM)
    span = np.clip(bid_day - MIN_AGE_AT_FIRST_BID - floor, 0, MAX_AGE_AT_FIRST_BID)
    redrawn = bid_day - MIN_AGE_AT_FIRST_BID - np.floor(founding.random(n_firms) * (span + 1))
    days = np.where(young, redrawn.astype(np.int64), days)
    capital = market.registry.get_column("registered_capital").to_numpy().copy()
    low = np.maximum(SHELL_FOUNDED_DAYS[0], gap[shells] + 1)
    days[shells] = first_win[shells] - rng.integers(low, SHELL_FOUNDED_DAYS[1] + 1)
    # Capital: a 20th to a 30th of its largest contract, in 10万 steps, within 50-200万.
    ratio = rng.uniform(SHELL_CAPACITY, SHELL_CAPACITY_MAX, shells.size)
    wan = np.floor(largest[shells] / ratio / 1e5) * 10
    capital[shells] = np.clip(wan, *SHELL_CAPITAL_WAN) * 1e4
    registry = market.registry.with_columns(
        pl.Series("founded_on", days.astype(np.int32)).cast(pl.Date),
        pl.Series("registered_capital", capital, dtype=pl.Float64),
    )
    return role, registry


def _take(order: Arr, wins: Arr, n: int, code: int) -> Arr:
    """Firms from ``order`` until their contracts reach the scheme's share of tenders."""
    quota = round(MATERIALS_SHARE[MATERIALS_SCHEMES[code - 1]] * n)
    held = wins[order]
    out: Arr = order[np.cumsum(held) - held < quota]
    return out


# ----------------------------------------------------------------------------- contracts


def _held(rng: np.random.Generator, market: Awarded, won: Arr, scheme: Arr) -> _Contracts:
    """Signing, duration, completion and the change orders' count and sum of each contract."""
    tender, cents = market.bid_tender[won], market.bid_cents[won]
    m = won.size
    signed = market.awarded[tender] // US_PER_DAY + rng.integers(
        SIGNING_DAYS[0], SIGNING_DAYS[1] + 1, m
    )
    million = cents / 100.0 / 1e6
    planned = np.clip(
        np.round(DURATION_DAYS * million**DURATION_POWER * np.exp(rng.normal(0, DURATION_SD, m))),
        *DURATION_RANGE,
    ).astype(np.int64)
    ratio = np.exp(rng.normal(OVERRUN[0], OVERRUN[1], m)) * np.where(
        rng.random(m) < LONG_DELAY, rng.uniform(*LONG_DELAY_FACTOR, m), 1.0
    )
    ratio = np.where(scheme == SUBSTITUTION, rng.uniform(*SUBSTITUTION_SPEED, m), ratio)
    days = np.maximum(np.round(planned * ratio), 10).astype(np.int64)
    # The data end with the last signing: works not done by then are open, unsettled.
    done = signed + days <= signed.max(initial=0)

    recover = scheme == LOW_BID
    orders = np.where(
        recover,
        rng.integers(RECOVER_ORDERS[0], RECOVER_ORDERS[1] + 1, m),
        np.minimum(rng.poisson(CHANGE_ORDERS_MEAN, m), 6),
    )
    u = rng.random(m)
    honest = np.select(
        [u < GROWTH_DOWN, u < GROWTH_DOWN + GROWTH_TAIL],
        [-rng.uniform(*GROWTH_DOWN_RANGE, m), rng.uniform(*GROWTH_TAIL_RANGE, m)],
        np.maximum(np.abs(rng.normal(GROWTH[0], GROWTH[1], m)), 0.002),
    )
    growth = np.where(recover, rng.uniform(*RECOVER_GROWTH, m), np.where(orders > 0, honest, 0.0))
    return _Contracts(
        bid=won,
        tender=tender,
        firm=market.bid_firm[won],
        cents=cents,
        scheme=scheme,
        signed=signed,
        planned=planned,
        days=days,
        done=done,
        orders=orders,
        change=np.round(cents * growth).astype(np.int64),
    )


def _contract_frame(market: Awarded, held: _Contracts) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "tender_id": market.tender_id.gather(held.tender),
            "contractor_id": market.firm_id.gather(held.firm),
            "contractor_name": market.bid_name.gather(held.bid),
            "contract_amount": held.cents / 100.0,
            "final_amount": _floats((held.cents + held.change) / 100.0, held.done),
            "signed_at": _dates(held.signed),
            "planned_completion": _dates(held.signed + held.planned),
            "actual_completion": _dates(held.signed + held.days, held.done),
        }
    )


def _change_orders(rng: np.random.Generator, market: Awarded, held: _Contracts) -> pl.DataFrame:
    """Change orders adding up to each contract's change; those approved after the end of
    the data are not known yet."""
    count = held.orders
    c = np.repeat(np.arange(count.size), count)
    j = _within(count)
    last = j == count[c] - 1
    weight = rng.gamma(2.0, 1.0, c.size)
    running = np.cumsum(weight)
    before = np.r_[0.0, running][np.repeat(np.cumsum(count) - count, count)]
    share = np.where(last, 1.0, (running - before) / np.bincount(c, weight, count.size)[c])
    reached = np.round(held.change[c] * share).astype(np.int64)
    previous = np.where(j == 0, 0, np.r_[0, reached[:-1]])
    cents = reached - previous

    recover = held.scheme[c] == LOW_BID
    when = rng.beta(*CHANGE_TIMING, c.size)
    when = np.where(recover & (j < 2), rng.uniform(*RECOVER_EARLY, c.size), when)
    days = held.days[c]
    approved = held.signed[c] + np.clip(np.round(when * days), 1, days - 1).astype(np.int64)
    reason = np.select(
        [recover, held.change[c] < 0],
        [_choose(rng, RECOVER_REASONS, c.size), _choose(rng, DOWN_REASONS, c.size)],
        _choose(rng, HONEST_REASONS, c.size),
    )
    known = approved <= held.signed.max(initial=0)
    order = np.lexsort((approved, c))
    order = order[known[order]]
    return pl.DataFrame(
        {
            "tender_id": market.tender_id.gather(held.tender[c[order]]),
            "amount": cents[order] / 100.0,
            "reason": pl.Series(REASONS, dtype=pl.String).gather(reason[order]),
            "approved_at": _dates(approved[order]),
        }
    )


def _choose(rng: np.random.Generator, mix: tuple[tuple[str, float], ...], size: int) -> Arr:
    """Reasons drawn from ``mix``, as indices into REASONS."""
    index = np.array([REASONS.index(reason) for reason, _ in mix])
    p = np.array([w for _, w in mix])
    out: Arr = index[rng.choice(len(mix), size, p=p / p.sum())]
    return out


# ---------------------------------------------------------------------- reference prices


def _months(deadline: Arr) -> tuple[Arr, np.datetime64]:
    """Per tender the month its bids were priced in (of the bid deadline), counted from the
    first such month, and that month."""
    months = (deadline // US_PER_DAY).astype("datetime64[D]").astype("datetime64[M]")
    first = months.min()
    out: Arr = (months - first).astype(np.int64)
    return out, first


def _reference_prices(rng: np.random.Generator, regions: int, months: int) -> tuple[Arr, Arr]:
    """Prices (region x month x material, 元 per the material's unit) and each region's
    price level: the national price, a regional level, a national monthly walk per
    material and a smaller walk of the region's own."""
    base = np.array([m[2] for m in MATERIALS])
    walk_sd = np.array([m[3] for m in MATERIALS])
    level = rng.normal(0.0, REGION_SD[0], regions)
    own = rng.normal(0.0, REGION_SD[1], (regions, len(MATERIALS)))
    national = np.cumsum(rng.normal(0.0, walk_sd, (months, len(MATERIALS))), axis=0)
    local = np.cumsum(rng.normal(0.0, LOCAL_WALK_SD, (regions, months, len(MATERIALS))), axis=1)
    log_price = (level[:, None] + own)[:, None, :] + national[None, :, :] + local
    prices: Arr = np.round(base * np.exp(log_price), 2)
    return prices, np.exp(level)


def _price_frame(market: Awarded, prices: Arr, first_month: np.datetime64) -> pl.DataFrame:
    """One row per region that has tenders, month and material."""
    regions = np.unique(market.region)
    months, materials = prices.shape[1], prices.shape[2]
    r = np.repeat(regions, months * materials)
    t = np.tile(np.repeat(np.arange(months), materials), regions.size)
    k = np.tile(np.arange(materials), regions.size * months)
    periods = np.datetime_as_string(first_month + np.arange(months), unit="M")
    return pl.DataFrame(
        {
            "material": pl.Series([m[0] for m in MATERIALS]).gather(k),
            "region": market.region_name.gather(r),
            "period": pl.Series(periods.astype(str)).gather(t),
            "unit": pl.Series([m[1] for m in MATERIALS]).gather(k),
            "unit_price": prices[r, t, k],
        }
    )


# -------------------------------------------------------------------- bills of quantities


_MATERIAL = np.array([it[2] for it in ITEMS])
_KIND = np.array([it[3] for it in ITEMS])
_STANDARD = np.array([it[4] for it in ITEMS])
_TIMING = np.array([it[5] for it in ITEMS])
_SPELLING_START = np.cumsum([0, *(len(s) for s in SPELLINGS)])
_SPELLING_COUNT = np.array([len(s) for s in SPELLINGS])
BOQ_CHUNK = 100_000  # bids priced at a time: bounds the temporary arrays at any scale


@dataclass(frozen=True)
class _Bill:
    """The buyer's bills of quantities: one row (pair) per item of a tender's bill."""

    local: Arr  # per tender: its bill, or -1
    first: Arr  # per bill: its first pair
    count: Arr  # per bill: its number of items
    item: Arr  # per pair
    quantity: Arr  # per pair, in the base unit (1 for the lump item)
    unit_value: Arr  # per pair: reference or standard price (the lump's value)
    at_standard: Arr  # per bill: its items at those prices
    spelled: Arr  # per pair: how the template spells the unit (any non-negative integer)


def _items(
    rng: np.random.Generator,
    market: Awarded,
    *,
    tender_scheme: Arr,
    prices: Arr,
    level: Arr,
    month: Arr,
) -> pl.DataFrame:
    """A bill of quantities for every priced bid of BOQ_SHARE of the tenders: the buyer's
    quantities, the bidder's unit prices, adding up to its bid."""
    bill = _bill(rng, market, prices, level, month)
    if bill is None:
        return empty("items")
    bids = np.flatnonzero((bill.local[market.bid_tender] >= 0) & market.bid_priced)
    parts = [
        _priced(rng, market, bill, tender_scheme, bids[i : i + BOQ_CHUNK])
        for i in range(0, bids.size, BOQ_CHUNK)
    ]
    bid, item, unit, quantity, price = (np.concatenate(part) for part in zip(*parts, strict=True))
    units = pl.Series([*(u for s in SPELLINGS for u in s), *KG_SPELLINGS], dtype=pl.String)
    names = [MATERIALS[it[2]][0] if it[2] >= 0 else None for it in ITEMS]
    return pl.DataFrame(
        {
            "tender_id": market.tender_id.gather(market.bid_tender[bid]),
            "bidder_id": market.firm_id.gather(market.bid_firm[bid]),
            "bidder_name": market.bid_name.gather(bid),
            "item_code": pl.Series([it[0] for it in ITEMS]).gather(item),
            "material": pl.Series(names, dtype=pl.String).gather(item),
            "description": pl.Series([it[1] for it in ITEMS]).gather(item),
            "unit": units.gather(unit),
            "quantity": quantity,
            "unit_price": price,
        }
    )


def _bill(
    rng: np.random.Generator, market: Awarded, prices: Arr, level: Arr, month: Arr
) -> _Bill | None:
    """Which tenders have a bill, its items, and their quantities from the estimate."""
    n = market.tender_id.len()
    boq = np.flatnonzero(rng.random(n) < BOQ_SHARE)
    if boq.size == 0:
        return None
    category = market.category[boq]
    has = rng.random((boq.size, len(ITEMS))) < ITEM_CHANCE[category]
    share = np.where(has, ITEM_SHARE[category], 0.0) * np.exp(
        rng.normal(0.0, QUANTITY_SD, has.shape)
    )
    share /= share.sum(axis=1, keepdims=True)
    pair_t, item = np.nonzero(has)  # by tender, then item
    tender = boq[pair_t]
    value = market.estimate[tender] / 100.0 * HONEST_LEVEL * share[pair_t, item]
    region = market.region[tender]
    material = _MATERIAL[item]
    lump = item == LUMP_ITEM
    unit_value = np.where(
        material >= 0,
        prices[region, month[tender], np.maximum(material, 0)],
        _STANDARD[item] * level[region],
    )
    unit_value = np.where(lump, value, unit_value)
    quantity = np.where(lump, 1.0, np.maximum(np.round(value / unit_value, 2), 0.01))
    local = np.full(n, -1)
    local[boq] = np.arange(boq.size)
    count = has.sum(axis=1)
    return _Bill(
        local=local,
        first=np.cumsum(count) - count,
        count=count,
        item=item,
        quantity=quantity,
        unit_value=unit_value,
        at_standard=np.bincount(pair_t, quantity * unit_value, boq.size),
        spelled=rng.integers(0, 1 << 30, item.size),
    )


def _priced(
    rng: np.random.Generator, market: Awarded, bill: _Bill, tender_scheme: Arr, bids: Arr
) -> tuple[Arr, Arr, Arr, Arr, Arr]:
    """The bill of each of ``bids`` as the bidder prices it: per row the bid, the item, the
    unit as written (index into the spellings), the quantity and the unit price."""
    own_bill = bill.local[market.bid_tender[bids]]
    row_bid = np.repeat(np.arange(bids.size), bill.count[own_bill])
    pair = bill.first[own_bill][row_bid] + _within(bill.count[own_bill])
    rows = pair.size
    item = bill.item[pair]
    q = bill.quantity[pair]
    unit_value = bill.unit_value[pair]
    is_mat = _MATERIAL[item] >= 0
    amount = market.bid_cents[bids] / 100.0
    won = market.bid_winner[bids]
    scheme = np.where(won, tender_scheme[market.bid_tender[bids]], 0)[row_bid]

    def per_bid(values: Arr) -> Arr:
        out: Arr = np.bincount(row_bid, values, bids.size)
        return out

    # Honest prices: materials near the reference (a low bidder a little under it), the
    # other items at prices of their own, then scaled to take the rest of the bid.
    tilt = (amount / bill.at_standard[own_bill]) ** 0.3
    noise = rng.normal(0.0, 1.0, rows)
    raw = unit_value * np.where(
        is_mat,
        np.exp(MATERIAL_MARKUP[0] + MATERIAL_MARKUP[1] * noise) * tilt[row_bid],
        np.exp(PRICE_SD * noise),
    )
    substituted = np.flatnonzero((scheme == SUBSTITUTION) & is_mat)
    raw[substituted] = unit_value[substituted] * rng.uniform(*SUBSTITUTION_PRICE, substituted.size)
    materials = per_bid(np.where(is_mat, q * raw, 0.0))
    others = per_bid(np.where(is_mat, 0.0, q * raw))
    scale = (amount - materials) / others
    # Materials alone near the bid: every item scaled alike instead.
    alike = scale < 0.3
    scale = np.where(alike, amount / (materials + others), scale)
    price = raw * np.where(is_mat & ~alike[row_bid], 1.0, scale[row_bid])
    _unbalance(
        rng,
        np.flatnonzero(scheme == LOW_BID),
        row_bid=row_bid,
        item=item,
        q=q,
        unit_value=unit_value,
        raw=raw,
        amount=amount,
        price=price,
    )

    # Units as written: the template's spelling or the bidder's own; some mass items per
    # kg (a thousand times the quantity at a thousandth of the price).
    own = rng.random(bids.size)[row_bid] < OWN_SPELLING
    spelling = np.where(own, rng.integers(0, 1 << 30, rows), bill.spelled[pair])
    kind = _KIND[item]
    unit = _SPELLING_START[kind] + spelling % _SPELLING_COUNT[kind]
    per_kg = (kind == MASS) & (rng.random(rows) < PER_KG)
    unit = np.where(per_kg, _SPELLING_START[-1] + spelling % len(KG_SPELLINGS), unit)
    q = np.where(per_kg, q * 1000.0, q)
    price = np.where(per_kg, np.round(price / 1000.0, 3), np.round(price, 2))
    # The lump item (措施项目) takes the cents left, so that the bill adds up to the bid.
    lump = item == LUMP_ITEM
    rest = per_bid(np.where(lump, 0.0, q * price))
    price = np.where(lump, np.round(amount - rest, 2)[row_bid], price)
    return bids[row_bid], item.astype(np.int8), unit.astype(np.int8), q, price


def _unbalance(
    rng: np.random.Generator,
    rows: Arr,
    *,
    row_bid: Arr,
    item: Arr,
    q: Arr,
    unit_value: Arr,
    raw: Arr,
    amount: Arr,
    price: Arr,
) -> None:
    """low_bid_recover's prices on ``rows`` (written into ``price``): 1-3 key materials far
    under the reference; the early items at RECOVER_FRONT and the late ones at RECOVER_LATE
    times an honest price for them, both scaled down alike when the bid leaves less room,
    the late items taking any surplus."""
    if rows.size == 0:
        return
    bid, it = row_bid[rows], item[rows]
    value, honest, quantity = unit_value[rows], raw[rows], q[rows]
    bids, bid = np.unique(bid, return_inverse=True)
    is_mat = _MATERIAL[it] >= 0
    pick = rank_within(bid, np.where(is_mat, rng.random(rows.size), 2.0))
    how_many = rng.integers(RECOVER_CHEAP_ITEMS[0], RECOVER_CHEAP_ITEMS[1] + 1, bids.size)
    cheap = is_mat & (pick < how_many[bid])
    cheap_price = value * rng.uniform(*RECOVER_CHEAP, rows.size)
    early = _TIMING[it] == 1
    late = _TIMING[it] == 2
    loaded = honest * np.select(
        [early, late],
        [rng.uniform(*RECOVER_FRONT, rows.size), rng.uniform(*RECOVER_LATE, rows.size)],
        1.0,
    )

    def per_bid(values: Arr) -> Arr:
        out: Arr = np.bincount(bid, values, bids.size)
        return out

    budget = amount[bids] - per_bid(
        np.where(is_mat, quantity * np.where(cheap, cheap_price, honest), 0.0)
    )
    early_sum = per_bid(np.where(early, quantity * loaded, 0.0))
    late_sum = per_bid(np.where(late, quantity * loaded, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        fit = np.minimum(budget / (early_sum + late_sum), 1.0)
        surplus = np.where(fit < 1.0, fit, (budget - early_sum) / late_sum)
    unbalanced = ((budget > 0) & (late_sum > 0))[bid]
    price[rows] = np.select(
        [unbalanced & cheap, unbalanced & early, unbalanced & late],
        [cheap_price, loaded * fit[bid], loaded * surplus[bid]],
        price[rows],
    )


# ---------------------------------------------------------------------------- inspections


_INSPECTION_UNITS = pl.Series([u for it in INSPECTIONS for u in it[1]], dtype=pl.String)
_FIRST_UNIT = np.cumsum([0, *(len(it[1]) for it in INSPECTIONS)])[:-1]
_UNIT_CHOICES = np.array([len(it[1]) for it in INSPECTIONS])
_AT_LEAST = np.array([it[3] == "min" for it in INSPECTIONS])


def _inspections(rng: np.random.Generator, market: Awarded, held: _Contracts) -> pl.DataFrame:
    """2-5 measured items per completed contract, near its completion."""
    c, item, measured, required, visit, unit, passed = _measure(rng, market, held)
    return pl.DataFrame(
        {
            "tender_id": market.tender_id.gather(held.tender[c]),
            "contractor_id": market.firm_id.gather(held.firm[c]),
            "contractor_name": market.bid_name.gather(held.bid[c]),
            "inspected_at": _dates(visit),
            "item": pl.Series([it[0] for it in INSPECTIONS]).gather(item),
            "measured": measured,
            "required": required,
            "unit": _INSPECTION_UNITS.gather(unit),
            "limit": pl.Series(["max", "min"]).gather(_AT_LEAST[item].astype(np.int8)),
            "result": pl.Series(["fail", "pass"]).gather(passed.astype(np.int8)),
        }
    )


def _measure(
    rng: np.random.Generator, market: Awarded, held: _Contracts
) -> tuple[Arr, Arr, Arr, Arr, Arr, Arr, Arr]:
    """Per inspection row: the contract, the item, measured and required values, the day,
    the unit as written and whether it passed."""
    done = np.flatnonzero(held.done)
    count = rng.integers(INSPECTION_ROWS[0], INSPECTION_ROWS[1] + 1, done.size)
    c = np.repeat(done, count)
    slot = _within(count)
    size = c.size
    item = INSPECTED[market.category[held.tender[c]], slot].astype(np.int8)
    required_of = [it[2] for it in INSPECTIONS]
    width = max(len(r) for r in required_of)
    table = np.array([[*r, *([np.nan] * (width - len(r)))] for r in required_of])
    choices = np.array([len(r) for r in required_of])
    required = table[item, (rng.random(size) * choices[item]).astype(np.int64)]
    at_least = _AT_LEAST[item]
    margin = np.array([it[4] for it in INSPECTIONS])[item]

    # Honest works meet the requirement with a margin, a few fail narrowly; a recovering
    # contractor's fail more often and by more; a substituted material falls clearly short.
    scheme = held.scheme[c]
    spread = margin * np.exp(rng.normal(0.0, 0.5, size))
    ratio = np.where(at_least, 1 + np.maximum(spread, 0.003), np.maximum(1 - spread, 0.2))
    recover = scheme == LOW_BID
    low, high = np.array([HONEST_SHORTFALL, RECOVER_SHORTFALL]).T[:, recover * 1]
    shortfall = low + (high - low) * rng.random(size)
    fails = np.flatnonzero(rng.random(size) < np.where(recover, RECOVER_FAIL, HONEST_FAIL))
    ratio[fails] = np.where(at_least[fails], 1 - shortfall[fails], 1 + shortfall[fails])
    substituted = np.flatnonzero((scheme == SUBSTITUTION) & (slot == 0))
    ratio[substituted] = rng.uniform(*SUBSTITUTION_MEASURED, substituted.size)
    measured = required * ratio
    percent = np.array([it[1][0] == "%" for it in INSPECTIONS])[item]
    measured = np.where(percent, np.minimum(measured, 99.9), measured)
    scale = 10.0 ** np.array([it[5] for it in INSPECTIONS])[item]
    measured = np.maximum(np.round(measured * scale), 1) / scale
    passed = np.where(at_least, measured >= required, measured <= required)

    before = rng.integers(0, INSPECTED_BEFORE + 1, done.size)[_group_index(count)]
    visit = held.signed[c] + np.maximum(held.days[c] - before, 1)
    other = (rng.random(size) < OTHER_SPELLING) & (_UNIT_CHOICES[item] > 1)
    unit = _FIRST_UNIT[item] + other
    return c, item, measured, required, visit, unit, passed


# -------------------------------------------------------------------------------- helpers


def _within(count: Arr) -> Arr:
    """0, 1, ..., count-1 for each group laid end to end."""
    out: Arr = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    return out


def _group_index(count: Arr) -> Arr:
    """The group of each item when groups of ``count`` items are laid end to end."""
    out: Arr = np.repeat(np.arange(count.size), count)
    return out


def rank_within(group: Arr, key: Arr) -> Arr:
    """0-based rank of ``key`` within its ``group`` (ties by position)."""
    order = np.lexsort((key, group))
    g = group[order]
    start = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1] if g.size else np.zeros(0, np.int64)
    first = np.repeat(start, np.diff(np.r_[start, g.size]))
    rank = np.empty(group.size, dtype=np.int64)
    rank[order] = np.arange(group.size) - first
    return rank


def _dates(days: Arr, known: Arr | None = None) -> pl.Series:
    dates = pl.Series(days.astype(np.int32)).cast(pl.Date)
    if known is None:
        return dates
    return pl.select(pl.when(pl.Series(known)).then(dates)).to_series()


def _floats(values: Arr, known: Arr) -> pl.Series:
    return pl.select(pl.when(pl.Series(known)).then(pl.Series(values))).to_series()
