"""Synthetic rural road and public facility tenders with planted bid rigging, planted
materials and delivery schemes, and their truth.

``generate(tenders, seed)`` returns bidwatch's canonical tables (tenders, bids, firms, and
after the award contracts, change orders, bills of quantities, reference prices and
inspections; see ``bidwatch.schema``) and the ground truth: which tenders were rigged, by
which scheme and group, the part each firm played and the buyers party to a scheme; which
contracts a planted contractor holds and how it cheats. ``bidwatch synth`` writes them to a
folder that ``bidwatch scan`` reads with no mapping. The same seed gives byte-identical
files.

## The market

- Counties (阳新县) in provinces, each with 8-20 townships (白沙镇). Buyers are township
  governments (白沙镇人民政府) and county bureaus (交通运输局, 公路事业发展中心, 水利局,
  住房和城乡建设局, 教育局, 卫生健康局, 农业农村局); a township publishes about 15 tenders in
  the six years, a bureau more.
- Tenders: category road, bridge, building or water; a title from the category's templates
  (阳新县白沙镇石湾村道路硬化工程); procedure mostly open, some invited; award rule scoring
  (综合评分法), lowest_price (经评审的最低投标价法) or average_bid (基准价法); an estimate
  (招标控制价) lognormal from a few hundred thousand to tens of millions of yuan; published on
  a working day, bids due 20-35 days later (a few tenders allow less), award 3-21 days after.
- Firms: registered in a home county, active there and in up to two neighbouring counties,
  with a specialty (road, bridge, building, water, general) that sets how often they bid in
  each category. Names are region + 字号 + industry + legal form (阳新县鑫达路桥建设有限公司);
  credit codes are 18-character USCCs whose organisation code (GB 11714) and final check
  character (GB 32100-2015) are valid; firms founded since 2015-10 carry the "MA" prefix.
- Each tender draws 3-15 bidders (3-7 when invited) from the firms active in its county,
  weighted by how active each firm is and how well its specialty fits the category.

## Honest bids

cost = the tender's true cost (a share of the estimate, common to its bidders) x firm
efficiency x noise; bid = cost x a 1-10% markup, rounded by the firm's habit (to the cent,
the yuan, the hundred or, for a few firms, the thousand yuan). A bid above the estimate is
usually pulled just under it (firms know the ceiling) and otherwise disqualified; a few more
bids are disqualified (document faults) or withdrawn (no amount). A tender keeps two or more
valid bids, except a few clean ones (``SOLE_VALID_CLEAN``) where every bid but one fails the
qualification review; it has exactly one winner: the lowest valid bid under lowest_price; the
bid closest to the benchmark (mean of the valid bids x (1 - K), K drawn in 0-5%) under
average_bid; under scoring the best technical score minus 2 points per 1% above the lowest
valid bid, often not the lowest bid. Bids are uploaded mostly in the last days before the
deadline, in waking hours.

Each honest firm leaves its own traces on its bids: IP address (its own /24; the host
varies), MAC address, machine code (机器码), document author, deposit account and phone, all
distinct between firms. About ``VARIANT_NAME_SHARE`` of bids spell the bidder's name unlike
the registry (``VARIANT_MIX``): 有限公司 and 有限责任公司 swapped, region dropped, region in
brackets after the 字号 (full- or half-width), a trailing space, a homophone typo in the 字号
(鑫 for 新, never another firm's 字号), or the English name (Yangxin Xinda Road and Bridge
Construction Co., Ltd.). Firms of one county have distinct 字号, often one character apart,
and the same 字号 recurs in other counties: look-alikes that are different firms.
``SynthData.spellings`` holds every spelling of every firm.

## Planted schemes

About ``COLLUSIVE_SHARE`` of tenders are rigged (one scheme per tender), split between the
schemes by ``SCHEME_MIX``. Each belongs to a group of firms registered in its county: a ring
of 3-6 firms that rigs about ``TENDERS_PER_GROUP`` tenders of its county; or, for the buyer
schemes, one or a few firms dealing with one buyer (a busy township for favours and sham
tenders, any buyer for buy-ins) over a run of its tenders; or an allocation ring of 2-3 firms
holding a market. Members of a group also bid honestly elsewhere. A group that ended up with
no tender of its own is not a group: its firms are honest. ``ALL_SCHEMES`` lists the ten
schemes; ``SCHEMES`` those whose tenders a scan can rank first, every one but
market_allocation, which leaves nothing in its tenders and shows only across them (between
the members, as a pair).

In a ring's tender the designated winner and most members bid (the covers), sometimes beside
honest outsiders, who may beat the ring: the ring then shades its price but does not always
win. Covers never win: under scoring and average-bid rules they carry weak technical offers
or stay away from the benchmark. Price patterns follow the award rule. Under lowest-price
awards the covers (陪标) price just above the designated winner, which narrows the bids.
Under scoring and average-bid awards the price score or the benchmark depends on the other
bids, so the covers of schemes whose covers exist to make the winner win (``STEERING``:
rotation, cover bidding, round covers, sham tenders) bid far from the winner instead
(``WIDE_COVERS``): well above it under scoring, where the lowest valid bid sets every price
score, and on both sides under average-bid rules, where they steer the mean (Conley &
Decarolis 2016). Rigging widens the bids there. The one-hand schemes keep their patterns
under every rule.

- ``rotation``: the designated winner takes turns round the ring in publication order, with
  some disorder; it bids high (median 94% of the estimate) and the covers 0.3-6% above it.
- ``cover_bidding``: one leader wins most of the ring's tenders, near the estimate (median
  96.5%); the covers sit in a tight, noisy band 0.6-3% above it (low CV, large relative
  distance, high winning bid / estimate). The covers are the leader's satellites: they enter
  other tenders at ``COVER_ACTIVITY`` of their activity, so they bid often, rarely win and
  lose mostly to the leader (persistent losers), their prices tied to the leader's rather
  than to costs.
- ``shared_traces``: one hand prepares the ring's bids on the leader's computer: every ring
  bid of the tender carries the leader's machine code, most its MAC, IP and document author,
  some its deposit account and phone (``SHARED_TRACE_RATES``); they are uploaded minutes
  apart. The leader's traces link the ring across its tenders. Prices are only mildly
  rigged.
- ``identical_bids``: two (sometimes three) covers bid exactly the same odd amount.
- ``arithmetic_bids``: the ring's bids form an arithmetic progression from the winner's bid
  (a fixed odd offset, exact to the cent) or a geometric one (a fixed ratio, rounded to the
  cent).
- ``round_covers``: a leader ring (as cover bidding, leader median 94.5%) whose covers do not
  price the works: each ring writes a share of its covers (``ROUND_COVER_RATE``, drawn per
  ring) to ``ROUND_DIGITS`` significant digits (1,240,000), the nearer round amount on the
  cover's side of the winner; the winner's bid is priced. Honest firms that bid to the
  thousand yuan write round amounts too, rarely.
- ``market_allocation`` (划分市场): a ring of 2-3 firms takes one market of its county (a
  category of works, the one whose size fits the ring) and splits its buyers among its
  members. For the six years no member bids for another member's buyers in that market, nor
  for buyers left out of the split; each bids for most of its own buyers' tenders
  (``ALLOCATION_TURNOUT``, sized to give about ``TENDERS_PER_GROUP`` of them, at least
  ``ALLOCATION_PER_MEMBER`` per member whatever the sample's size), at honest prices,
  against an ordinary field of outsiders: it wins some, loses others. Those are the ring's
  tenders. The members are specialists of that market: they enter tenders of other
  categories at ``ALLOCATION_FOCUS`` of their activity.
- ``favoured_bidder`` (招标人与投标人串通): a township government steers a run of its tenders
  (an official's tenure, ``TENURE`` of a busy township's tenders) to one firm, which wins
  every one of them: about two thirds of the buyer's tenders over the six years (from under
  half to all). The firm meets an ordinary field; the buyer sets short bidding periods
  (``SHORT_DEADLINE``) and gets the firm its win one of three ways (``FAVOUR_MIX``): every
  rival disqualified (the favoured bid is the only valid one, priced near the estimate,
  median 95%); the lowest rival disqualified and the firm just under the next one; or the
  firm, told the others' prices, just under the lowest (``FAVOUR_UNDERCUT``; under
  average-bid awards just under the benchmark the bids imply; under scoring the evaluators'
  technical marks do the rest). The firm mostly uploads last, minutes before the deadline
  (``FAVOURED_LATE``, ``LATE_MINUTES``).
- ``fabricated_bids`` (明招暗定, 虚假招标): a township government stages a run of its tenders:
  the winner (a county firm) is chosen beforehand, and the only other bids are the paperwork
  of 2-4 shell firms (陪标专业户). One hand invents every amount of these tenders, the
  winner's (around 90% of the estimate) included: whole yuan that keep the first digit of the
  intended amount, a second digit near it (``INVENTED_SD``) and the others as the
  fabricator's digit habit has them (a Dirichlet draw around ``DIGIT_TASTE``: 8, 6 and 9
  favoured, 4 avoided), so second digits deviate from priced bids' and later ones more. The
  shells live off bidding: they enter other tenders at ``SHELL_ACTIVITY`` times their
  activity, inventing their amounts there too. No outsider bids; the covers steer as above.
- ``buy_in`` (低价中标、高价结算): one firm wins some of one buyer's tenders not awarded by
  average bid (where a low bid cannot win) with bids far below the estimate (median 71%, in
  the low tail of honest winners, which overlaps it), expecting the buyer to let it recover
  the loss after the award (change orders, cheaper materials). It mostly wins; one not deep
  enough, or beaten by a better offer, loses.

Ring tenders also get a short bidding period more often (``SHORT_DEADLINE``), and some rings
share a shareholder (their organiser) between two members.

## After the award

What follows the award is drawn from a random generator of its own (``default_rng([seed,
5])``): the tables of the award are the same for a seed as they were before these existed,
but for the founding date and capital of the few shell contractors below, and the founding
date of firms the registry founded less than a year before their first bid (redrawn 1-10
years before it).

- contracts: one per tender, for the winning bid's amount, held by the winner (its
  bidder_id, and its name as the bid writes it); signed 3-30 days after the award; planned
  to last about 90 days x (amount / 1M yuan) ^ 0.35 (lognormal noise, 30-900 days). Works
  take a little longer than planned (median +5%), ``LONG_DELAY`` of them 1.3-2.2 times as
  long. The data end with the last signing: a contract whose works are done by then has its
  actual_completion and its final_amount (结算价); the others are open (both null).
- change_orders: an honest contract has Poisson(``CHANGE_ORDERS_MEAN``) of them (at most 6),
  approved during the works, more often in their second half, for the usual reasons
  (设计变更, 工程量调整, 地质条件变化, 材料价格调整, 业主要求增加, 政策性调整, 现场签证,
  工程量增加; 工程量核减 when the works shrink). Together they add up, to the cent, to
  final - contract: for most a few %, for ``GROWTH_TAIL`` 6-20%, for ``GROWTH_DOWN`` a
  fall of up to 6%; a contract without change orders settles at its contract amount. Open
  contracts show the change orders approved before the end of the data.
- reference_prices (信息价): for every county with tenders, every month from the first bid
  deadline to the last, five key materials (``MATERIALS``: 道路石油沥青 元/吨 ~4500,
  普通硅酸盐水泥P.O42.5 元/吨 ~450, HRB400钢筋 元/吨 ~4200, 碎石 元/m³ ~110, C30商品混凝土
  元/m³ ~520): the national price x the county's level (all materials, and each) x a
  national monthly random walk per material x a smaller walk of the county's own. The region
  is the tender's region as written.
- items (工程量清单): ``BOQ_SHARE`` of the tenders come with a bill of quantities that every
  priced bid (not withdrawn) fills in: 6-9 items by category (``ITEMS``: the key materials,
  named exactly as the reference prices; earthworks 挖一般土方 m³, 路基处理 m², formwork
  m², masonry 浆砌片石 m³, and a lump 措施项目 of unit 项). The buyer sets the quantities,
  the same for every bidder, from the estimate (each item's share of the works at its
  reference or standard price). An honest bidder prices key materials near the reference
  of the tender's region and month (median 1.03 x, a low bidder a little under), its other
  items at prices of its own, scaled to take the rest of its bid; the lump takes the last
  cents, so that quantity x unit price adds up to the bid (to half a cent). Units are
  spelled as the buyer's template has them (t, 吨, 元/吨, 元/t; m³, 立方米, m3; m2, ㎡,
  平方米), by some bidders their own way, and ``PER_KG`` of mass items are priced per kg
  (kg, 千克, 元/kg: a thousand times the quantity, a thousandth of the price).
- inspections (质量检测): every completed contract gets 2-5 measured items by category
  (``INSPECTIONS``, ``INSPECTED``), the first always measured: road 路面厚度 (cm, 18-24,
  min), 压实度 (%, 93-96, min), 弯沉 (0.01mm, 30-60, max), 平整度 (m/km, max), 混凝土强度
  (MPa, 25-35, min); bridges, buildings and water works 混凝土强度 first, then 钢筋保护层厚度
  (mm), 桥面铺装厚度, 砂浆强度, 楼板厚度, 衬砌厚度, 墙面垂直度 (max) or 压实度. Inspected
  up to 20 days before completion. Honest works meet the requirement with a margin;
  ``HONEST_FAIL`` of the measurements fall short by 0.5-4% and fail. The result is pass or
  fail as the measured value meets the requirement (at least it for min, at most for max).

## Planted materials schemes

A few planted contractors (``MATERIALS_SHARE`` of the tenders each, firms of at most
``PLANTED_MAX_WINS`` contracts drawn among the honest winners), and the buy-in firms, deliver
their contracts dishonestly; about 4% of tenders in all. ``MATERIALS_SCHEMES`` lists them.

- ``low_bid_recover`` (低价中标、高价结算 / 偷工减料): every buy_in tender that the buy-in
  firm holds (it mostly does), and every contract of a few more planted contractors. The
  contract settles 25-60% over its amount through 3-8 change orders, the first two within
  the first 20% of the works, for 工程量增加 or 设计变更 only. Its bill of quantities (where
  the tender has one) prices 1-3 key materials at 0.55-0.8 of the reference price, front-
  loads the early items (earthworks, the lump measures) at 1.5-2.5 times and the late ones
  (subgrade, formwork, masonry) at 0.3-0.6 times an honest price for them (both scaled down
  alike when a deep buy-in leaves less, the late items taking any surplus), and still adds
  up to the bid. Its inspections fail ``RECOVER_FAIL`` of the time, 3-12% short.
- ``substitution`` (以次充好): planted contractors whose works are done in 40-65% of the
  planned time, whose bills price key materials normally or a little low (0.88-1.0 of the
  reference), and whose first inspection (pavement thickness, concrete strength) measures
  0.75-0.92 of the requirement and fails; change orders as honest.
- ``shell_contractor`` (capacity mismatch, 挂靠 / 空壳公司): a few planted firms of at most
  ``SHELL_MAX_WINS`` contracts, one of them over 10M yuan, that first bid shortly before
  their first win. The registry says the firm was founded 30-150 days before that win (and
  before its first bid; such firms already hold an "MA" credit code, as firms founded since
  2015 do) with a registered capital of 50-200万元: its largest contract is 20-30 times the
  capital (more where 200万 caps it). Its works are delivered as honest ones are. Eligible
  firms are rare: small markets may have none, and at scale they hold fewer tenders than
  their share.

## What each detector should find

The schemes are planted for the detectors of the catalogue; where a tender carries several
signals, they belong to its one scheme:

- round-bids: ``round_covers``. cover-band, cover-bid-gap: ``cover_bidding`` (and rotation,
  round covers, sham tenders) under lowest-price awards; cover-bid-gap also the
  ``favoured_bidder`` told the prices. deep-discount-win: ``buy_in``.
- single-valid-bid, sole-survivor: ``favoured_bidder`` with every rival disqualified (and a
  few clean tenders). lowest-disqualified: ``favoured_bidder`` with the lowest rival
  disqualified (and clean tenders whose lowest bid failed). late-winner: ``favoured_bidder``.
  short-period: ``favoured_bidder``, ``fabricated_bids``, less so the rings.
- submission-cluster and trace-network: ``shared_traces``. identical-bids:
  ``identical_bids``. regular-differences: ``arithmetic_bids``.
- cobid-pairs, suspected-groups: every ring and the sham tenders' winner and shells.
  bid-rotation: ``rotation``. persistent-loser, group-price-correlation (Porter-Zona): the
  covers of ``cover_bidding`` and ``round_covers``. benchmark-influence (Conley-Decarolis):
  the ``STEERING`` schemes under average-bid awards (and scoring).
- market-allocation: ``market_allocation``. buyer-concentration: ``favoured_bidder``
  (strongly), ``fabricated_bids`` and ``buy_in`` buyers (less).
- benford-firm: the shells of ``fabricated_bids``; benford-buyer: its buyers.

## Ground truth

- ``truth_tenders`` (truth/tenders.csv): tender_id, collusive (0/1), scheme ("" when clean),
  group (the ring or group, "" when clean), materials (0/1: the contract is delivered by a
  planted scheme) and materials_scheme (``low_bid_recover``, ``substitution`` or
  ``shell_contractor``; "" when clean). A buy_in tender that an outsider won is
  materials 0: nobody recovers a loss there.
- ``truth_firms`` (truth/firms.csv): bidder_id, group ("rotation-0001", "" if none), role:
  ``ring_member`` (rotation, identical and arithmetic rings), ``designated_winner`` (the
  leader of a cover-bidding or round-covers ring, a sham tender's winner), ``cover`` (the
  other members of those leader rings), ``preparer_shared`` (members of a shared-traces
  ring; the leader's traces are the shared ones), ``allocated`` (a market-allocation
  member), ``favoured`` (the firm a buyer favours), ``fabricator`` (a shell whose amounts
  are invented), ``buy_in``, or ``honest``; and materials_role: the materials scheme of the
  firm (the buy-in firms that hold a buy_in tender are ``low_bid_recover``), "" when none.
- ``truth_buyers`` (truth/buyers.csv): every buyer, with scheme, group and bidder_id (the
  firm it deals with) when it is held: party to ``favoured_bidder``, ``fabricated_bids`` or
  ``buy_in``, or split off to a member (bidder_id) of a ``market_allocation`` ring, in the
  ring's market only (not party); "" otherwise.

## Scale

Everything is vectorised with numpy and polars (no Python loop over tenders, bids or firms);
per-bid text columns are gathered from per-firm values, so they share memory; the loops
that remain run over digit places, a few passes, or blocks of ``BOQ_CHUNK`` bids whose
bills are priced at a time. 1M tenders (about 6M bids, 200k firms; after the award 1M
contracts, 1.25M change orders, 7M bill-of-quantities rows, 3.3M inspections, 0.9M
reference prices) take about 21 s and 4.6 GB at peak on two cores, of which the tables
after the award about 6 s and 1.8 GB (the bills of quantities most: ``BOQ_SHARE`` bounds
them); writing them adds 12-15 s (2.8 GB of CSV, of which 0.9 GB of bills, or 0.6 GB of
Parquet).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from bidwatch import _synth_after
from bidwatch._synth_after import (
    BOQ_CHUNK,
    BOQ_SHARE,
    MATERIALS_SCHEMES,
    MATERIALS_SHARE,
    rank_within,
)

__all__ = [
    "ALL_SCHEMES",
    "BOQ_CHUNK",
    "BOQ_SHARE",
    "COLLUSIVE_SHARE",
    "MATERIALS_SCHEMES",
    "MATERIALS_SHARE",
    "SCHEMES",
    "SCHEME_MIX",
    "SynthData",
    "generate",
]

Arr = npt.NDArray[Any]

# ----------------------------------------------------------------------- planted schemes

# Share of tenders rigged, all schemes together: enough rigged tenders to measure recall per
# scheme, few enough that clean tenders dominate, as in a market that is not wholly cartelised.
COLLUSIVE_SHARE = 0.15
# Share of the rigged tenders per scheme (one scheme per tender).
SCHEME_MIX: dict[str, float] = {
    # The classic cartel forms (招标投标法实施条例 art. 39: bidders agree who wins; the others
    # bid to lose): turns round the ring, and one leader with standing covers.
    "rotation": 0.18,
    "cover_bidding": 0.18,
    # Evidence that art. 40 deems collusion: bid files made by one hand and deposits paid from
    # one account, "abnormally consistent" bids, prices that differ by a regular pattern
    # (报价呈规律性差异). Careless forms are rarer.
    "shared_traces": 0.14,
    "identical_bids": 0.11,
    "arithmetic_bids": 0.11,
    # A leader ring whose covers do not price the works at all and write round numbers (124万).
    "round_covers": 0.05,
    # 划分市场 (反垄断法 art. 17): a ring splits a county's buyers; each member bids for its own
    # buyers' tenders and keeps away from the others', with honest prices.
    "market_allocation": 0.06,
    # 招标人与投标人串通 (art. 41): a buyer steers its tenders to one firm with short bidding
    # periods, leaked prices (the firm bids last) and rivals disqualified on pretexts.
    "favoured_bidder": 0.07,
    # 明招暗定 / 虚假招标: a buyer's sham tenders, the winner chosen beforehand, the losing bids
    # paperwork of shell firms (陪标专业户) with invented amounts.
    "fabricated_bids": 0.05,
    # 低价中标、高价结算: a firm wins a buyer's tenders far below the estimate, expecting the buyer
    # to let it recover through change orders or cheaper materials.
    "buy_in": 0.05,
}
ALL_SCHEMES: tuple[str, ...] = tuple(SCHEME_MIX)
# The schemes whose tenders a scan ranks above clean ones, each with a measured floor in
# tests/test_synth_detection.py; market_allocation is found between its members instead.
SCHEMES: tuple[str, ...] = tuple(s for s in ALL_SCHEMES if s != "market_allocation")
# Schemes whose group takes its tenders from a county at large; the others take the tenders
# of the buyers the group holds.
RING_SCHEMES: tuple[str, ...] = ALL_SCHEMES[:6]
# Firms per group (inclusive). Identical and progression schemes need two covers besides the
# winner to show their pattern; a favoured bidder or a buy-in firm acts alone; a sham tender
# needs a winner and two or more shells.
RING_SIZE: dict[str, tuple[int, int]] = {
    "rotation": (3, 6),
    "cover_bidding": (3, 5),
    "shared_traces": (3, 5),
    "identical_bids": (3, 5),
    "arithmetic_bids": (3, 5),
    "round_covers": (3, 5),
    "market_allocation": (2, 3),
    "favoured_bidder": (1, 1),
    "fabricated_bids": (3, 5),
    "buy_in": (1, 1),
}
# Firms a county sets aside per group slot: about the mean size of a group.
SLOT_FIRMS = 3
# Mean number of tenders a group rigs over the six years: local cartels are long-lived, and a
# rotation needs several tenders to show turns; a firm's buy-ins are counted at one buyer,
# which publishes about 15 tenders in six years. Favours and sham tenders last a TENURE
# instead.
TENDERS_PER_GROUP: dict[str, int] = {
    "rotation": 16,
    "cover_bidding": 16,
    "shared_traces": 16,
    "identical_bids": 16,
    "arithmetic_bids": 16,
    "round_covers": 16,
    "market_allocation": 25,
    "favoured_bidder": 0,  # TENURE
    "fabricated_bids": 0,  # TENURE
    "buy_in": 4,
}
# favoured_bidder, fabricated_bids: the mean share of a busy township's tenders, in
# publication order, that the official who favours the firm or stages the sham tenders is
# in post for (a busy township: one of the quarter with the most tenders).
TENURE = 0.6
# Chance that a member beyond the winner and the covers a scheme needs bids in a rigged
# tender: rings rarely field every member every time.
MEMBER_TURNOUT = 0.8
# Chance that 1-3 honest outsiders also bid in a ring's tender: rings do not control every
# entrant, and an outsider may win.
OUTSIDER_SHARE = 0.2
# Factor on the designated winner's price when outsiders bid: the ring shades its price.
OUTSIDER_SHADING = (0.88, 0.97)
# Rotation: chance that a turn is skipped (a member who needs the work, a tender that suits
# another); pure round robin would be cartoonish.
ROTATION_DISORDER = 0.15
# Cover bidding and round covers: chance that the leader wins; the others get the odd tender.
LEADER_WINS = 0.85
# A leader ring's covers are satellites of the leader (挂靠 firms, affiliates) with little
# business of their own: they enter other tenders at this share of their activity, and so
# lose mostly to the one winner.
COVER_ACTIVITY = 0.3
# A sham tender's shells (陪标专业户) live off bidding: they enter other tenders at this
# multiple of their activity, inventing their amounts there too.
SHELL_ACTIVITY = 2.5
# Designated winner's bid / estimate per scheme: median and log-sd. Honest winners sit around
# 0.80-0.90 with a tail up to the ceiling, so the schemes overlap the honest distribution. A
# favoured bidder who finds every rival disqualified prices like a sham tender's winner; a
# buy-in sits far below, in the honest winners' low tail.
WINNER_RATIO: dict[str, tuple[float, float]] = {
    "rotation": (0.94, 0.03),
    "cover_bidding": (0.965, 0.02),
    "shared_traces": (0.92, 0.035),
    "identical_bids": (0.93, 0.03),
    "arithmetic_bids": (0.93, 0.03),
    "round_covers": (0.945, 0.025),
    "market_allocation": (0.9, 0.03),  # unused: the member prices honestly
    "favoured_bidder": (0.95, 0.025),
    "fabricated_bids": (0.9, 0.03),
    "buy_in": (0.71, 0.05),
}
# The highest cover stays this share under the estimate: a cover above the ceiling would be
# void, and a tender with fewer than three valid bids fails.
COVER_CEILING = 0.998
# shared_traces: chance, per tender, that each trace of the preparer's computer appears on
# every ring bid (the machine code always does). Careful preparers change IP or author.
SHARED_TRACE_RATES: dict[str, float] = {
    "mac_address": 0.85,
    "ip_address": 0.8,
    "document_author": 0.6,
    "deposit_account": 0.5,
    "phone": 0.25,
}
# Cover price / winner price of rotation and cover-bidding rings under scoring (uniform range)
# and average-bid awards (log-normal sd, both sides of the winner), where covers steer the
# price score or the benchmark rather than hug the winner.
WIDE_COVERS: dict[str, tuple[float, float]] = {"scoring": (1.05, 1.25), "average_bid": (0.0, 0.12)}
# The schemes whose covers do so: those whose covers exist to make the designated winner win.
# The one-hand schemes keep their patterns (copied, progressive or uploaded together) under
# every rule.
STEERING = ("rotation", "cover_bidding", "round_covers", "fabricated_bids")
# identical_bids: chance of three identical covers instead of two, when there are three.
IDENTICAL_TRIPLE = 0.3
# arithmetic_bids: share of progressions that are geometric (a fixed ratio).
GEOMETRIC_SHARE = 0.3
# round_covers: chance, drawn per ring in this range, that a cover is written round (three
# significant digits: 1,240,000), else it is priced like a loose cover. Honest firms that bid
# to the thousand yuan make round amounts too (ROUNDING_MIX).
ROUND_COVER_RATE = (0.5, 1.0)
ROUND_DIGITS = 3
# Chance that two members of a ring share a shareholder, the ring's organiser.
SHARED_SHAREHOLDER = 0.3
# Chance of a bidding period under the 20 days of 招标投标法 art. 24, per kind of tender: a buyer
# who favours a ring leaves outsiders little time, one who favours a firm more so, and a sham
# tender needs no time at all.
SHORT_DEADLINE: dict[str, float] = {
    "clean": 0.04,
    "rigged": 0.12,
    "favoured_bidder": 0.45,
    "fabricated_bids": 0.3,
}
# market_allocation: the least and most share of its own buyers' tenders in its market that
# a member bids for (the ring's tenders): most of them, as the split exists to give each
# member its territory's work. The ring takes the market of its county whose size fits.
ALLOCATION_TURNOUT = (0.25, 0.9)
# market_allocation: the fewest tenders a ring rigs per member, even in a small sample: a
# split shows only across many tenders.
ALLOCATION_PER_MEMBER = 24
# market_allocation: members are specialists of the market they split: they enter tenders of
# other categories at this share of their activity.
ALLOCATION_FOCUS = 0.25
# favoured_bidder: how the buyer gets the firm its win (shares, in order): every rival
# disqualified (the favoured bid is the only valid one); the lowest rival disqualified and
# the firm just under the next one; the firm, told the others' prices, just under the lowest
# (under average-bid awards: just under the benchmark the bids imply).
FAVOUR_MIX = (0.15, 0.4, 0.45)
FAVOUR_UNDERCUT = (0.001, 0.012)  # how far under the rival's price the firm bids
# favoured_bidder: chance that the firm uploads last, minutes before the deadline.
FAVOURED_LATE = 0.75
LATE_MINUTES = (1, 30)
# fabricated_bids: invented amounts are whole yuan whose digits after the first follow the
# fabricator's habit, the second digit staying within a few percent (log-sd INVENTED_SD) of
# the amount the fabricator had in mind. A habit is a Dirichlet draw around DIGIT_TASTE, the
# digits people who make up Chinese amounts favour (8, 6, 9: lucky) and avoid (4: 死), with
# this concentration: low = habits that stray far from it, towards a few favourite digits.
DIGIT_TASTE = (1.0, 0.9, 0.9, 0.9, 0.35, 1.0, 1.5, 0.9, 1.8, 1.25)
DIGIT_HABIT_CONCENTRATION = 8.0
INVENTED_SD = 0.08
# Clean tenders in which every bid but one fails the qualification review: honest noise for
# the single-valid-bid and sole-survivor screens.
SOLE_VALID_CLEAN = 0.004

# ------------------------------------------------------------------------ honest market

TENDERS_PER_FIRM = 5  # 1M tenders -> 200k firms
TENDERS_PER_REGION = 400  # 1M tenders -> 2,500 counties (China has about 2,800)
MIN_REGIONS, MAX_REGIONS = 4, 2800
MIN_HOME_FIRMS = 40  # enough firms in every county for a 15-bid tender and its groups
RING_FIRM_SHARE = 0.5  # at most this share of a county's firms are in rings
RIGGED_TENDER_SHARE = 0.5  # at most this share of a county's tenders are rigged
CATEGORIES = ("road", "bridge", "building", "water")
CATEGORY_MIX = (0.45, 0.12, 0.25, 0.18)
ESTIMATE_MEDIAN = (1.5e6, 3.0e6, 4.0e6, 1.2e6)  # yuan, per category
ESTIMATE_SIGMA = 0.85
ESTIMATE_RANGE = (2.0e5, 6.0e7)
AWARD_METHODS = ("scoring", "lowest_price", "average_bid")
AWARD_MIX = (0.5, 0.35, 0.15)
INVITED_SHARE = 0.12
EXTRA_BIDDERS_MEAN = 3.5  # open tenders: 3 + negative binomial, mean about 6.2 bids
HONEST_COST = (0.84, 0.05)  # true cost / estimate: median and log-sd, common to a tender
EFFICIENCY_SD = 0.035  # log-sd of firm efficiency
BID_NOISE_SD = 0.03  # log-sd of a bid's own cost noise
MARKUP = (0.01, 0.10)
PULL_UNDER_CEILING = 0.75  # a bid over the estimate is pulled under it, else disqualified
DISQUALIFIED, WITHDRAWN = 0.025, 0.01
AVERAGE_BID_K = (0.0, 0.05)  # average_bid benchmark = mean of valid bids x (1 - K)
SCORING_POINTS_PER_PCT = 2.0  # scoring: points lost per 1% above the lowest valid bid
TECH_SD = (4.0, 2.0)  # scoring: technical points, sd of the firm's quality and of the offer
VARIANT_NAME_SHARE = 0.15  # bids that spell the bidder's name unlike the registry
# Which spelling a variant bid uses: suffix swap, region dropped, region in full-width
# brackets, in half-width brackets, trailing space, a typo in the 字号, English.
VARIANT_MIX = (0.2, 0.2, 0.12, 0.12, 0.14, 0.12, 0.1)
# Firms that bid to the cent, the yuan, the hundred yuan, the thousand yuan.
ROUNDING_MIX = (0.6, 0.29, 0.085, 0.025)
SPECIALTIES = ("road", "bridge", "building", "water", "general")
SPECIALTY_MIX = (0.30, 0.12, 0.25, 0.13, 0.20)
# How much a firm of each specialty (columns) bids in each category (rows).
AFFINITY = np.array(
    [
        [1.00, 0.70, 0.15, 0.30, 0.60],
        [0.50, 1.00, 0.05, 0.20, 0.50],
        [0.10, 0.05, 1.00, 0.10, 0.60],
        [0.25, 0.15, 0.10, 1.00, 0.60],
    ]
)
FIRST_DAY = np.datetime64("2019-01-01", "D")
PUBLISHING_DAYS = 2160  # to the end of 2024
FOUNDED_RANGE = (np.datetime64("1998-01-01", "D"), np.datetime64("2021-12-31", "D"))
NEW_CODES_FROM = np.datetime64("2015-10-01", "D")  # USCCs with "MA" organisation codes

# --------------------------------------------------------------------------- name pools

PROVINCE_CODES = np.array(
    [42, 43, 36, 52, 53, 45, 51, 50, 61, 41, 34, 35, 44, 62, 14, 13, 37, 32, 33, 21, 22, 23,
     15, 46, 63, 64, 65, 54]
)  # fmt: skip
PLACE_CHARS = (
    "安白宝碧长城大丰凤福高广桂河鹤红华黄吉金锦靖九乐龙隆马茂南宁平清庆仁荣瑞三山"
    "上石双顺松太泰桃天通万旺文西仙湘新兴秀阳永玉元云泽昭中竹资溪岳江湖梅沙罗林"
)
VILLAGE_FIRST = "杨李张王刘陈石黄白马龙桃柳竹松枫梨枣茶桑高新老大小上下东西南北中前后"
VILLAGE_SECOND = "湾坪岭冲坝溪塘岗桥铺沟坡庄寨店河山园林口"
TRADE_CHARS = (
    "鑫宏达盛华通顺远恒泰隆兴昌鼎诚信瑞祥汇丰合金安建路桥中天宇博"
    "创嘉联凯力润荣晟众旭永正志骏锦腾豪峰源森佳德航发强海城方磊晨"
)
INDUSTRIES = (
    ("公路工程", "交通建设", "公路建设"),
    ("路桥建设", "路桥工程", "桥梁工程"),
    ("建筑工程", "建筑安装工程", "建设工程"),
    ("水利水电工程", "水利建设", "水务工程"),
    ("市政工程", "工程建设", "市政建设"),
)
# A typo puts a homophone in the 字号 (鑫 -> 新). None of these is in TRADE_CHARS, so a typo
# never spells another firm's registered 字号.
TYPO_OF = dict(
    zip(
        TRADE_CHARS,
        "新洪大胜化同舜园衡太龙星长顶程欣睿翔会风和今岸健陆乔忠添雨伯闯家连楷立闰容升重序勇政智俊劲藤浩锋元深加得杭法墙亥成芳垒辰",
        strict=True,
    )
)
# How firms write their industry in their English names.
INDUSTRY_ENGLISH = {
    "公路工程": "Highway Engineering",
    "交通建设": "Transportation Construction",
    "公路建设": "Highway Construction",
    "路桥建设": "Road and Bridge Construction",
    "路桥工程": "Road and Bridge Engineering",
    "桥梁工程": "Bridge Engineering",
    "建筑工程": "Construction Engineering",
    "建筑安装工程": "Building Installation Engineering",
    "建设工程": "Construction Engineering",
    "水利水电工程": "Water Conservancy and Hydropower Engineering",
    "水利建设": "Water Conservancy Construction",
    "水务工程": "Water Engineering",
    "市政工程": "Municipal Engineering",
    "工程建设": "Engineering Construction",
    "市政建设": "Municipal Construction",
}
FORMS = ("有限公司", "有限责任公司", "股份有限公司")
FORM_MIX = (0.70, 0.27, 0.03)
FORM_SWAPPED = ("有限责任公司", "有限公司", "股份公司")
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏"
    "魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚"
    "邵万钱严覃武戴莫孔向汤"
)
GIVEN_CHARS = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志文红玉兰云飞海鹏斌波辉宁亮林峰鑫浩宇"
    "凯俊帅晨欣新春梅兵彬荣德福祥成江东山金永忠庆武瑞龙光水生贵清"
)
ROADS = (
    "人民路", "建设路", "解放路", "新华路", "中山路", "迎宾大道", "滨江路", "东风路", "振兴大道",
    "工业园路", "朝阳路", "文化路", "胜利路", "幸福路", "和平路", "商贸街", "光明路", "长江路",
    "育才路", "发展大道",
)  # fmt: skip
BUREAUS = (
    "交通运输局", "公路事业发展中心", "水利局", "住房和城乡建设局", "教育局", "卫生健康局",
    "农业农村局",
)  # fmt: skip
# (category, parts: R region, T township, V village, Y year; title ending; owning bureau)
TEMPLATES: tuple[tuple[int, str, str, int], ...] = (
    (0, "RTV", "村道路硬化工程", 0),
    (0, "RTV", "村通组公路建设工程", 0),
    (0, "RTV", "村产业路建设项目", 6),
    (0, "RT", "集镇道路改造提升工程", 3),
    (0, "RY", "农村公路安全生命防护工程", 1),
    (0, "RY", "农村公路提档升级工程", 0),
    (1, "RTV", "村危桥改造工程", 1),
    (1, "RTV", "村便民桥新建工程", 0),
    (1, "RY", "农村公路危桥改造工程", 1),
    (2, "RT", "中心小学教学楼建设工程", 4),
    (2, "RT", "卫生院改扩建工程", 5),
    (2, "RT", "便民服务中心建设项目", 3),
    (2, "RTV", "村党群服务中心建设工程", 3),
    (2, "RT", "敬老院改造工程", 3),
    (3, "RTV", "村饮水安全巩固提升工程", 2),
    (3, "RT", "小型农田水利设施建设项目", 2),
    (3, "RTV", "村山塘整治工程", 2),
    (3, "RY", "高标准农田建设项目", 6),
    (3, "RT", "河道综合治理工程", 2),
)
TOWNSHIP_BUYER = 0.6  # a township's works are bought by its government, else by a bureau
MAC_OUIS = (0x28D244, 0xF8B156, 0x3C5282, 0x00E04C, 0x1C1B0D, 0x5405DB, 0x70B5E8, 0xB42E99)
ISP_FIRST_OCTETS = np.array(
    [27, 58, 59, 60, 61, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122,
     123, 124, 125, 171, 175, 180, 182, 183, 218, 219, 220, 221, 222, 223]
)  # fmt: skip
MOBILE_PREFIXES = (
    "133", "135", "136", "137", "138", "139", "150", "151", "152", "155", "157", "158", "159",
    "177", "180", "181", "182", "183", "186", "187", "188", "189", "199",
)  # fmt: skip
CAPITAL_WAN = np.array([100, 200, 300, 500, 600, 800, 1000, 1200, 1500, 2000, 3000, 5000, 8000])
CAPITAL_MIX = np.array([4, 6, 6, 12, 5, 6, 14, 4, 5, 10, 8, 6, 3], dtype=float)

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)])
ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2])

# Bid roles: an honest (competitive) bid; a ring's designated winner and its covers; a
# favoured firm; a buy-in; an allocation member at its own buyer (priced honestly); a sham
# tender's invented losing bid.
HONEST, DESIGNATED, COVER, FAVOURED, BUY_IN, ALLOCATED, SHAM = range(7)
VALID, DISQ, WITHDRAW = 0, 1, 2
US_PER_S = 1_000_000
US_PER_DAY = 86_400 * US_PER_S
IP_VARIANTS = 4
NAME_VARIANTS = 8
TRACES = (
    "ip_address",
    "mac_address",
    "machine_code",
    "document_author",
    "deposit_account",
    "phone",
)


# --------------------------------------------------------------------------------- output


@dataclass(frozen=True, eq=False)
class SynthData:
    """Canonical tables of a synthetic market and the truth about its planted schemes."""

    tenders: pl.DataFrame
    bids: pl.DataFrame
    firms: pl.DataFrame
    truth_tenders: pl.DataFrame
    truth_firms: pl.DataFrame
    # Every buyer (buyer_id) with the scheme and group that hold it and the firm it deals with
    # (bidder_id); "" when none. Written as truth/buyers.csv.
    truth_buyers: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(
            schema={n: pl.String for n in ("buyer_id", "scheme", "group", "bidder_id")}
        )
    )
    # Every spelling of every firm (firm_id, name), for measuring entity resolution; the
    # bids use some of them. Not written by ``write``.
    spellings: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema={"firm_id": pl.String, "name": pl.String})
    )
    # What happens after the award (see "After the award" in the module doc).
    contracts: pl.DataFrame = field(default_factory=lambda: _synth_after.empty("contracts"))
    change_orders: pl.DataFrame = field(default_factory=lambda: _synth_after.empty("change_orders"))
    items: pl.DataFrame = field(default_factory=lambda: _synth_after.empty("items"))
    reference_prices: pl.DataFrame = field(
        default_factory=lambda: _synth_after.empty("reference_prices")
    )
    inspections: pl.DataFrame = field(default_factory=lambda: _synth_after.empty("inspections"))

    def tables(self) -> dict[str, pl.DataFrame]:
        """The canonical tables by name, as ``bidwatch.load`` takes them."""
        return {
            "tenders": self.tenders,
            "bids": self.bids,
            "firms": self.firms,
            "contracts": self.contracts,
            "change_orders": self.change_orders,
            "items": self.items,
            "reference_prices": self.reference_prices,
            "inspections": self.inspections,
        }

    def write(self, out: str | Path, fmt: str = "csv") -> list[Path]:
        """Write the canonical tables (``tables``) as ``fmt`` (csv or parquet), the truth as
        CSV."""
        if fmt not in ("csv", "parquet"):
            raise ValueError(f"fmt must be 'csv' or 'parquet', got {fmt!r}")
        out = Path(out)
        (out / "truth").mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for name, frame in self.tables().items():
            path = out / f"{name}.{fmt}"
            if fmt == "csv":
                _write_csv(frame, path)
            else:
                frame.write_parquet(path)
            written.append(path)
        for name, frame in (
            ("tenders", self.truth_tenders),
            ("firms", self.truth_firms),
            ("buyers", self.truth_buyers),
        ):
            path = out / "truth" / f"{name}.csv"
            _write_csv(frame, path)
            written.append(path)
        return written


def _write_csv(frame: pl.DataFrame, path: Path) -> None:
    # Seconds, not polars' default microseconds: what sources write, and the loader's fast path.
    frame.write_csv(path, datetime_format="%Y-%m-%d %H:%M:%S", date_format="%Y-%m-%d")


# ---------------------------------------------------------------------------- generation


def generate(tenders: int, seed: int = 0) -> SynthData:
    """A synthetic market of ``tenders`` tenders with planted schemes; see the module doc."""
    if tenders < 1:
        raise ValueError(f"tenders must be at least 1, got {tenders}")
    rng = np.random.default_rng(seed)
    n_regions = int(np.clip(tenders // TENDERS_PER_REGION, MIN_REGIONS, MAX_REGIONS))
    places = _places(rng, n_regions)
    firms = _firm_traits(rng, places, max(tenders // TENDERS_PER_FIRM, MIN_HOME_FIRMS * n_regions))
    ten = _tender_draws(rng, tenders, places)
    rings = _rings(rng, ten, firms, places)
    market = _market(firms, activity=rings.activity(firms.n))
    bids = _bids(rng, ten, rings, firms, market)
    registry, names, traces = _firm_tables(rng, firms, places, rings)
    tender_frame = _tender_frame(rng, ten, bids, places)
    tender_id = tender_frame.get_column("tender_id")
    firm_id = registry.get_column("firm_id")
    bid_frame = _bid_frame(
        rng, bids=bids, tender_id=tender_id, firm_id=firm_id, names=names, traces=traces
    )
    truth_firms = _truth_firms(firm_id, rings)
    # After the award: its own random generator, so that everything above stays as it is.
    after = _synth_after.after_award(
        seed,
        _synth_after.Awarded(
            tender_id=tender_id,
            region=ten.region,
            region_name=places.name,
            category=ten.category,
            estimate=ten.estimate,
            deadline=bids.deadline,
            awarded=bids.awarded,
            bid_tender=bids.tender,
            bid_firm=bids.firm,
            bid_cents=bids.cents,
            bid_priced=bids.status != WITHDRAW,
            bid_winner=bids.winner,
            bid_submitted=bids.submitted,
            bid_name=bid_frame.get_column("bidder_name"),
            firm_id=firm_id,
            registry=registry,
            honest=(truth_firms.get_column("role") == "honest").to_numpy(),
            buy_in_held=_buy_in_held(ten.n, bids, rings),
        ),
    )
    materials = after.tender_scheme
    return SynthData(
        tenders=tender_frame,
        bids=bid_frame,
        firms=after.firms,
        truth_tenders=_truth_tenders(tender_id, rings).with_columns(
            (materials != "").cast(pl.Int8).alias("materials"),
            materials.alias("materials_scheme"),
        ),
        truth_firms=truth_firms.with_columns(after.firm_role.alias("materials_role")),
        truth_buyers=_truth_buyers(tender_frame.get_column("buyer_id"), ten.buyer, firm_id, rings),
        spellings=pl.DataFrame(
            {
                "firm_id": firm_id.gather(np.repeat(np.arange(firm_id.len()), NAME_VARIANTS)),
                "name": names,
            }
        ),
        contracts=after.contracts,
        change_orders=after.change_orders,
        items=after.items,
        reference_prices=after.reference_prices,
        inspections=after.inspections,
    )


def _buy_in_held(n: int, bids: _Bids, rings: _Rings) -> Arr:
    """Per tender: a buy_in tender won by the group's buy-in firm (it mostly is)."""
    won = np.flatnonzero(bids.winner)
    tender = bids.tender[won]
    ring = rings.tender_ring[tender]
    buy_in = np.append(rings.scheme, -1)[ring] == ALL_SCHEMES.index("buy_in")
    firm = rings.members[rings.start[np.where(buy_in, ring, 0)]] if rings.scheme.size else ring
    held = np.zeros(n, dtype=bool)
    held[tender] = buy_in & (firm == bids.firm[won])
    return held


# ----------------------------------------------------------------------------------- places


@dataclass(frozen=True)
class _Places:
    code: Arr  # 6-digit administrative division code of each county
    weight: Arr  # the county's share of tenders
    name: pl.Series  # 阳新县
    short: pl.Series  # 阳新
    area_code: Arr  # telephone area code
    town_start: Arr  # first township of each county in ``town``
    town_count: Arr
    town: pl.Series  # 白沙镇

    @property
    def buyers(self) -> int:
        """Buyers: each township's government, then each county's bureaus."""
        return int(self.town.len() + self.code.size * len(BUREAUS))

    def buyer_region(self) -> Arr:
        towns = np.repeat(np.arange(self.code.size), self.town_count)
        out: Arr = np.concatenate([towns, np.repeat(np.arange(self.code.size), len(BUREAUS))])
        return out


def _places(rng: np.random.Generator, n: int) -> _Places:
    index = np.arange(n)
    # Provinces in contiguous blocks, so that neighbouring indices are neighbouring counties.
    block = index * min(len(PROVINCE_CODES), n) // n
    within = index - np.searchsorted(block, block)
    code = PROVINCE_CODES[block] * 10_000 + (1 + within // 30) * 100 + 21 + within % 30
    short = _pairs(PLACE_CHARS, rng.permutation(_n_pairs(PLACE_CHARS))[:n])
    name = short + _choose(rng, ("县", "市"), n, (0.8, 0.2))
    weight = rng.lognormal(0.0, 0.5, n)
    town_count = rng.integers(8, 21, n)
    towns = int(town_count.sum())
    town = _pairs(PLACE_CHARS, rng.integers(0, _n_pairs(PLACE_CHARS), towns)) + _choose(
        rng, ("镇", "乡"), towns, (0.8, 0.2)
    )
    return _Places(
        code=code,
        weight=weight / weight.sum(),
        name=name,
        short=short,
        area_code=rng.integers(710, 1000, n),
        town_start=np.cumsum(town_count) - town_count,
        town_count=town_count,
        town=town,
    )


# ------------------------------------------------------------------------------------ firms


@dataclass(frozen=True)
class _Firms:
    home: Arr
    specialty: Arr
    activity: Arr
    efficiency: Arr
    quality: Arr
    rounding: Arr
    member_firm: Arr  # memberships (firm active in county), sorted by county
    member_region: Arr
    member_weight: Arr

    @property
    def n(self) -> int:
        return int(self.home.size)


def _firm_traits(rng: np.random.Generator, places: _Places, n: int) -> _Firms:
    regions = places.code.size
    home = np.concatenate(
        [
            np.repeat(np.arange(regions), MIN_HOME_FIRMS),
            rng.choice(regions, n - regions * MIN_HOME_FIRMS, p=places.weight),
        ]
    )
    home = rng.permutation(home)
    activity = rng.lognormal(0.0, 0.6, n)
    # Up to two neighbouring counties where the firm also bids, less often than at home.
    extra = rng.choice(3, n, p=(0.55, 0.30, 0.15))
    away = np.repeat(np.arange(n), extra)
    step = rng.integers(1, 4, away.size) * rng.choice(np.array([-1, 1]), away.size)
    firm = np.concatenate([np.arange(n), away])
    region = np.concatenate([home, (home[away] + step) % regions])
    weight = np.concatenate([activity, 0.4 * activity[away]])
    _, first = np.unique(region * n + firm, return_index=True)  # home listed first: kept
    return _Firms(
        home=home,
        specialty=rng.choice(len(SPECIALTIES), n, p=SPECIALTY_MIX),
        activity=activity,
        efficiency=np.exp(rng.normal(0.0, EFFICIENCY_SD, n)),
        quality=rng.normal(0.0, 1.0, n),
        rounding=rng.choice(len(ROUNDING_MIX), n, p=ROUNDING_MIX),
        member_firm=firm[first],
        member_region=region[first],
        member_weight=weight[first],
    )


@dataclass(frozen=True)
class _Market:
    """Weighted draws of a firm active in a county, per category, by inverse CDF."""

    firm: Arr
    cum: Arr  # cumulative weights, one block of all memberships per category
    start: Arr  # first membership of each county
    end: Arr

    def draw(self, rng: np.random.Generator, region: Arr, category: Arr) -> Arr:
        m = self.firm.size
        lo_i = category * m + self.start[region]
        hi_i = category * m + self.end[region]
        lo = np.where(lo_i > 0, self.cum[np.maximum(lo_i - 1, 0)], 0.0)
        hi = self.cum[hi_i - 1]
        pos = np.searchsorted(self.cum, lo + rng.random(region.size) * (hi - lo), side="right")
        firm: Arr = self.firm[np.clip(pos, lo_i, hi_i - 1) - category * m]
        return firm


def _market(firms: _Firms, activity: Arr) -> _Market:
    """Draws weighted by activity (times a factor per firm and category, ``activity``) and
    fit."""
    regions = int(firms.member_region.max()) + 1
    spec = firms.specialty[firms.member_firm]
    weights = np.concatenate(
        [
            firms.member_weight * activity[firms.member_firm, c] * AFFINITY[c, spec]
            for c in range(len(CATEGORIES))
        ]
    )
    return _Market(
        firm=firms.member_firm,
        cum=np.cumsum(weights),
        start=np.searchsorted(firms.member_region, np.arange(regions), side="left"),
        end=np.searchsorted(firms.member_region, np.arange(regions), side="right"),
    )


# ---------------------------------------------------------------------------------- tenders


@dataclass(frozen=True)
class _Tenders:
    region: Arr
    category: Arr
    template: Arr
    town: Arr  # index into places.town
    buyer: Arr  # the township (index into places.town) or, after them, the county's bureau
    invited: Arr
    award: Arr  # index into AWARD_METHODS
    estimate: Arr  # cents
    published: Arr  # microseconds since the epoch, in order: tender ids follow publication
    bidders: Arr  # bidders of a clean tender

    @property
    def n(self) -> int:
        return int(self.region.size)


def _tender_draws(rng: np.random.Generator, n: int, places: _Places) -> _Tenders:
    region = rng.choice(places.code.size, n, p=places.weight)
    category = rng.choice(4, n, p=CATEGORY_MIX)
    by_category = np.array([t[0] for t in TEMPLATES])
    first = np.searchsorted(by_category, np.arange(4))
    count = np.bincount(by_category, minlength=4)
    template = first[category] + rng.integers(0, count[category])
    town = places.town_start[region] + rng.integers(0, places.town_count[region])
    has_town = np.array(["T" in t[1] for t in TEMPLATES])[template]
    bureau = np.array([t[3] for t in TEMPLATES])[template]
    township_buys = has_town & (rng.random(n) < TOWNSHIP_BUYER)
    buyer = np.where(township_buys, town, places.town.len() + region * len(BUREAUS) + bureau)
    invited = rng.random(n) < INVITED_SHARE
    median = np.array(ESTIMATE_MEDIAN)[category]
    estimate = np.clip(median * rng.lognormal(0.0, ESTIMATE_SIGMA, n), *ESTIMATE_RANGE)
    day = _workday(rng.integers(0, PUBLISHING_DAYS, n) + _days(FIRST_DAY))
    seconds = rng.integers(8 * 3600 + 1800, 17 * 3600 + 1800, n)
    published = np.sort(day * US_PER_DAY + seconds * US_PER_S)
    extra = np.minimum(rng.negative_binomial(3, 3 / (3 + EXTRA_BIDDERS_MEAN), n), 12)  # 3..15 bids
    bidders = np.where(invited, rng.integers(3, 8, n), 3 + extra)
    return _Tenders(
        region=region,
        category=category,
        template=template,
        town=town,
        buyer=buyer,
        invited=invited,
        award=rng.choice(len(AWARD_METHODS), n, p=AWARD_MIX),
        estimate=np.round(estimate * 100).astype(np.int64),
        published=published,
        bidders=bidders,
    )


# ------------------------------------------------------------------------------------ rings


@dataclass(frozen=True)
class _Rings:
    """The groups that rig tenders: rings of firms and, for the buyer schemes, a buyer (or the
    buyers a ring splits) with its firms."""

    scheme: Arr  # index into ALL_SCHEMES
    size: Arr
    start: Arr  # first member in ``members``
    members: Arr  # firm indices, group by group, the leader (or the buyer's firm) first
    offset: Arr  # rotation: whose turn comes first
    organiser: Arr  # the ring shares a shareholder between two members
    active: Arr  # the group rigged at least one tender
    label: pl.Series  # rotation-0001
    habit: Arr  # fabricated_bids: the fabricator's digit preferences, one row of 10 per group
    tender_ring: Arr  # per tender: its group, or -1 when clean
    tender_owner: Arr  # per tender: the member slot whose tender it is (market_allocation)
    tender_market: Arr  # per tender: the allocation ring whose market it is in, or -1
    category: Arr  # per group: the category of an allocation ring's market, or -1
    buyer_group: Arr  # per buyer: the group that holds it, or -1
    buyer_owner: Arr  # per buyer: the member slot it is allocated to, or the buyer's firm (0)

    def tender_scheme(self) -> Arr:
        return np.append(self.scheme, -1)[self.tender_ring]

    def activity(self, n_firms: int) -> Arr:
        """Per firm and category: the factor on its activity in tenders it enters on its own:
        a leader ring's covers COVER_ACTIVITY, a shell SHELL_ACTIVITY, an allocation member
        ALLOCATION_FOCUS outside its ring's category, everyone else 1."""
        ring = np.repeat(np.arange(self.scheme.size), self.size)
        slot = np.arange(ring.size) - self.start[ring]
        scheme = self.scheme[ring]
        factor = np.select(
            [
                _scheme_is(scheme, "cover_bidding", "round_covers") & (slot > 0),
                _scheme_is(scheme, "fabricated_bids") & (slot > 0),
            ],
            [COVER_ACTIVITY, SHELL_ACTIVITY],
            1.0,
        )[:, None] * np.where(
            (self.category[ring, None] >= 0)
            & (self.category[ring, None] != np.arange(len(CATEGORIES))),
            ALLOCATION_FOCUS,
            1.0,
        )
        kept = self.active[ring]
        out = np.ones((n_firms, len(CATEGORIES)))
        out[self.members[kept]] = factor[kept]
        return out

    def shells(self, n_firms: int) -> Arr:
        """Per firm: the fabricated_bids group whose shell it is, or -1."""
        ring = np.repeat(np.arange(self.scheme.size), self.size)
        slot = np.arange(ring.size) - self.start[ring]
        keep = self.active[ring] & (slot > 0) & _scheme_is(self.scheme[ring], "fabricated_bids")
        out = np.full(n_firms, -1, dtype=np.int64)
        out[self.members[keep]] = ring[keep]
        return out


def _scheme_is(scheme: Arr, *names: str) -> Arr:
    return np.isin(scheme, [ALL_SCHEMES.index(name) for name in names])


def _rings(rng: np.random.Generator, ten: _Tenders, firms: _Firms, places: _Places) -> _Rings:
    regions = places.code.size
    # A favour or sham tenders last a tenure at a busy township: size their groups by it.
    towns = places.town.len()
    town_count = np.bincount(ten.buyer[ten.buyer < towns], minlength=towns)
    top = np.sort(town_count)[-max(1, towns // 4) :]
    busy = float(top.mean()) if top.size else 1.0
    per_group = TENDERS_PER_GROUP | {
        name: max(2, round(busy * TENURE)) for name in ("favoured_bidder", "fabricated_bids")
    }
    schemes, wants, sizes = [], [], []
    for k, name in enumerate(ALL_SCHEMES):
        rigged = round(ten.n * COLLUSIVE_SHARE * SCHEME_MIX[name])
        if rigged < 2:
            continue
        count = max(1, round(rigged / per_group[name]))
        base = min(2, rigged // count)
        spread = 3.0 if name in RING_SCHEMES else 20.0  # rings vary more than a buyer's deals
        want = base + rng.multinomial(rigged - base * count, rng.dirichlet(np.full(count, spread)))
        size = rng.integers(RING_SIZE[name][0], RING_SIZE[name][1] + 1, count)
        if name == "market_allocation":  # a split needs volume, whatever the sample's size
            want = np.maximum(want, ALLOCATION_PER_MEMBER * size)
        schemes.append(np.full(count, k))
        wants.append(want)
        sizes.append(size)
    scheme = np.concatenate(schemes) if schemes else np.zeros(0, dtype=np.int64)
    want = np.concatenate(wants) if wants else np.zeros(0, dtype=np.int64)
    size = np.concatenate(sizes) if sizes else np.zeros(0, dtype=np.int64)
    # Shuffled, so that when counties run out of room the groups left out are of any scheme.
    shuffle = rng.permutation(scheme.size)
    scheme, want, size = scheme[shuffle], want[shuffle], size[shuffle]

    # Counties offer group slots by their number of firms, drawn by their share of tenders;
    # a group whose firms would exceed RING_FIRM_SHARE of its county's is left out.
    home_firms = np.bincount(firms.home, minlength=regions)
    room = (home_firms * RING_FIRM_SHARE).astype(np.int64)
    slots = np.maximum(1, room // SLOT_FIRMS)
    slot_region = np.repeat(np.arange(regions), slots)
    p = places.weight[slot_region]
    count = min(scheme.size, slot_region.size)
    region = slot_region[rng.choice(slot_region.size, count, replace=False, p=p / p.sum())]
    scheme, want, size = scheme[:count], want[:count], size[:count]
    fits = _offset_in_group(region, size) + size <= room[region]
    scheme, want, size, region = scheme[fits], want[fits], size[fits], region[fits]
    count = scheme.size

    # Members: the county's home firms in random order, each group taking the next ones.
    by_home = np.lexsort((rng.random(firms.n), firms.home))
    home_start = np.searchsorted(firms.home[by_home], np.arange(regions))
    first_member = home_start[region] + _offset_in_group(region, size)
    start = np.cumsum(size) - size
    ring_of = np.repeat(np.arange(count), size)
    members = by_home[first_member[ring_of] + np.arange(ring_of.size) - start[ring_of]]

    # Buyers: a favoured firm or sham tenders at a township government, a buy-in at any of
    # the county's other buyers.
    n_buyers = places.buyers
    buyer_count = np.bincount(ten.buyer, minlength=n_buyers)
    allocation = _scheme_is(scheme, "market_allocation")
    township = _scheme_is(scheme, "favoured_bidder", "fabricated_bids")
    buy_in = _scheme_is(scheme, "buy_in")
    buyer_group = np.full(n_buyers, -1, dtype=np.int64)
    buyer_owner = np.zeros(n_buyers, dtype=np.int64)
    towns_ = np.arange(n_buyers) < towns
    # A tenure covers about TENURE of the township's tenders: townships of about ``busy``
    # tenders first. A buy-in firm goes to busy buyers first.
    noise = rng.uniform(0.5, 1.0, n_buyers)
    near = -np.abs(buyer_count - busy) * noise
    for groups, pool, prefer in (
        (township, towns_, near),
        (buy_in, np.ones(n_buyers, dtype=bool), buyer_count * noise),
    ):
        _hold_buyers(
            held=groups.astype(np.int64),
            region=region,
            size=size,
            pool=pool & (buyer_group < 0) & (buyer_count > 0),
            prefer=prefer,
            buyer_region=places.buyer_region(),
            out=(buyer_group, buyer_owner),
        )

    # Their tenders. Favours and sham tenders: a run of ``want`` of the buyer's tenders in
    # publication order (an official's tenure); buy-ins: ``want`` of the buyer's tenders not
    # awarded by average bid (where a low bid cannot win).
    n = ten.n
    group = buyer_group[ten.buyer]
    g = np.where(group >= 0, group, count)  # ``count``: a padding group for the others
    held_count = np.bincount(
        buyer_group[buyer_group >= 0],
        weights=buyer_count[buyer_group >= 0],
        minlength=count,
    ).astype(np.int64)
    first = (rng.random(count) * (np.maximum(held_count - want, 0) + 1)).astype(np.int64)
    want_g = np.append(want, 0)[g]
    in_turn = rank_within(ten.buyer, np.arange(n))  # tenders are in publication order
    run = (in_turn >= np.append(first, 0)[g]) & (in_turn < np.append(first, 0)[g] + want_g)
    eligible = ten.award != AWARD_METHODS.index("average_bid")
    picked = eligible & (rank_within(ten.buyer, rng.random(n) + ~eligible) < want_g)
    take = (group >= 0) & np.where(np.append(buy_in, False)[g], picked, run)
    tender_ring = np.where(take, group, -1)
    tender_owner = np.zeros(n, dtype=np.int64)

    # Allocation rings: each takes a market of its county (one category of works, the one
    # whose size fits ``want`` at the ring's turnout), splits the market's buyers among its
    # members and keeps every member away from the others' buyers for the six years. The
    # owner of a buyer bids for most of its tenders (ALLOCATION_TURNOUT, sized to give about
    # ``want`` of them: the ring's tenders); no other member bids for it. Buyers held by a
    # buyer group stay out of the split: no member bids there either.
    market = ten.region * len(CATEGORIES) + ten.category
    splittable = (tender_ring < 0) & (buyer_group[ten.buyer] < 0)
    size_of = np.bincount(market[splittable], minlength=regions * len(CATEGORIES))
    markets = size_of.reshape(regions, len(CATEGORIES))[region]
    whole = np.bincount(market, minlength=regions * len(CATEGORIES)).reshape(
        regions, len(CATEGORIES)
    )[region]
    fit = np.abs(np.log(np.maximum(markets, 1) * np.mean(ALLOCATION_TURNOUT) / want[:, None]))
    # A ring splits a market it can hold: one where other schemes' buyers and tenders leave
    # most of the work to share out.
    fit += np.abs(np.log(np.maximum(markets, 1) / np.maximum(whole, 1)))
    category = np.argmin(fit + 0.1 * rng.random(fit.shape), axis=1)
    key = np.where(allocation, region * len(CATEGORIES) + category, -1)
    kept = allocation & (rank_within(key, np.arange(count)) == 0)  # one ring per market
    market_ring = np.full(regions * len(CATEGORIES), -1, dtype=np.int64)
    market_ring[key[kept]] = np.flatnonzero(kept)
    tender_market = market_ring[market]
    split = (tender_market >= 0) & splittable
    pair = _sorted_unique(tender_market[split] * n_buyers + ten.buyer[split])
    pair_ring, pair_buyer = pair // n_buyers, pair % n_buyers
    # A fair split: the market's buyers, busiest first, dealt to the members in snake order.
    in_split = np.bincount(ten.buyer[split], minlength=n_buyers)[pair_buyer]
    turn = rank_within(pair_ring, -in_split - rng.random(pair.size))
    members_ = size[pair_ring]
    lap, seat = turn // members_, turn % members_
    buyer_group[pair_buyer] = pair_ring
    buyer_owner[pair_buyer] = np.where(lap % 2 == 0, seat, members_ - 1 - seat)
    share = np.clip(want / np.maximum(size_of[np.maximum(key, 0)], 1), *ALLOCATION_TURNOUT)
    owned = split & (rng.random(n) < np.append(share, 0)[tender_market])
    tender_ring[owned] = tender_market[owned]
    tender_owner[owned] = buyer_owner[ten.buyer[owned]]

    # The ring groups' tenders: the county's other tenders in random order, each ring taking
    # the next ones, up to RIGGED_TENDER_SHARE of them.
    free = tender_ring < 0
    county = np.where(free, ten.region, regions)
    by_county = np.lexsort((rng.random(n), county))
    county_start = np.searchsorted(county[by_county], np.arange(regions))
    cap = (np.bincount(ten.region[free], minlength=regions) * RIGGED_TENDER_SHARE).astype(np.int64)
    ring_want = np.where(_scheme_is(scheme, *RING_SCHEMES), want, 0)
    slot_ring = np.repeat(np.arange(count), ring_want)
    pos = (_offset_in_group(region, ring_want) - (np.cumsum(ring_want) - ring_want))[
        slot_ring
    ] + np.arange(slot_ring.size)
    ok = pos < cap[region[slot_ring]]
    chosen = by_county[county_start[region[slot_ring[ok]]] + pos[ok]]
    tender_ring[chosen] = slot_ring[ok]

    active = np.bincount(tender_ring[tender_ring >= 0], minlength=count) > 0
    number = rank_within(np.where(active, scheme, -1), np.arange(count)) + 1
    label = (
        pl.Series(ALL_SCHEMES, dtype=pl.String).gather(scheme)
        + "-"
        + pl.Series(number).cast(pl.String).str.zfill(4)
    )
    taste = np.array(DIGIT_TASTE) / sum(DIGIT_TASTE)
    habit = rng.dirichlet(DIGIT_HABIT_CONCENTRATION * taste, count)
    return _Rings(
        scheme=scheme,
        size=size,
        start=start,
        members=members,
        offset=rng.integers(0, np.maximum(size, 1)),
        organiser=(rng.random(count) < SHARED_SHAREHOLDER) & active & (size >= 2),
        active=active,
        label=label,
        habit=habit.reshape(count, 10),
        tender_ring=tender_ring,
        tender_owner=tender_owner,
        tender_market=tender_market,
        category=np.where(kept, category, -1),
        buyer_group=buyer_group,
        buyer_owner=buyer_owner,
    )


def _hold_buyers(
    *,
    held: Arr,
    region: Arr,
    size: Arr,
    pool: Arr,
    prefer: Arr,
    buyer_region: Arr,
    out: tuple[Arr, Arr],
) -> None:
    """Give each group ``held`` buyers of its county from ``pool``: the county's buyers in
    the order of ``prefer`` (highest first), each group taking the next ones. Writes the
    group and the member slot each buyer goes to (in turn round the members) into ``out``."""
    buyer_group, buyer_owner = out
    regions = int(buyer_region.max(initial=-1)) + 1
    candidates = np.flatnonzero(pool)
    by_region = candidates[np.lexsort((-prefer[candidates], buyer_region[candidates]))]
    sorted_region = buyer_region[by_region]
    region_start = np.searchsorted(sorted_region, np.arange(regions), side="left")
    region_end = np.searchsorted(sorted_region, np.arange(regions), side="right")
    held_by = np.repeat(np.arange(held.size), held)
    j = np.arange(held_by.size) - np.repeat(np.cumsum(held) - held, held)
    pos = (region_start[region] + _offset_in_group(region, held))[held_by] + j
    ok = pos < region_end[region[held_by]]
    buyer = by_region[pos[ok]]
    buyer_group[buyer] = held_by[ok]
    buyer_owner[buyer] = j[ok] % size[held_by[ok]]


# ------------------------------------------------------------------------------------- bids


@dataclass(frozen=True)
class _Bids:
    tender: Arr  # sorted by tender, then submission time
    firm: Arr
    role: Arr
    cents: Arr
    status: Arr
    winner: Arr
    submitted: Arr  # microseconds
    trace_firm: dict[str, Arr]  # whose traces each bid carries, per trace column
    ip_variant: Arr
    deadline: Arr  # per tender
    awarded: Arr  # per tender


def _bids(
    rng: np.random.Generator, ten: _Tenders, rings: _Rings, firms: _Firms, market: _Market
) -> _Bids:
    n = ten.n
    sch_t = rings.tender_scheme()
    rigged = np.flatnonzero(rings.tender_ring >= 0)
    ring = rings.tender_ring[rigged]
    size = rings.size[ring]
    sch = rings.scheme[ring]

    # The designated winner of each rigged tender (or the member whose buyer it is), as a
    # slot of its group.
    turn = (rank_within(ring, rigged) + rings.offset[ring]) % size
    anyone = rng.integers(0, size)
    rotation = np.where(rng.random(rigged.size) < ROTATION_DISORDER, anyone, turn)
    leader = np.where(rng.random(rigged.size) < LEADER_WINS, 0, anyone)
    designated = np.select(
        [
            _scheme_is(sch, "rotation"),
            _scheme_is(sch, "cover_bidding", "round_covers"),
            _scheme_is(sch, "favoured_bidder", "fabricated_bids", "buy_in"),
            _scheme_is(sch, "market_allocation"),
        ],
        [rotation, leader, 0, rings.tender_owner[rigged]],
        anyone,
    )
    # Members who bid: the winner, the covers the scheme needs, the others by turnout. An
    # allocation member bids alone at its own buyers; the other members keep away.
    covers_needed = np.select(
        [
            _scheme_is(sch, "identical_bids", "arithmetic_bids", "fabricated_bids"),
            _scheme_is(sch, *RING_SCHEMES),
        ],
        [2, 1],
        0,
    )
    extras = _scheme_is(sch, *RING_SCHEMES, "fabricated_bids")
    pair_tender = np.repeat(rigged, size)
    pair_ring = np.repeat(ring, size)
    slot = np.arange(pair_tender.size) - np.repeat(np.cumsum(size) - size, size)
    order = (slot - np.repeat(designated, size)) % np.repeat(size, size)
    bids_ = (order <= np.repeat(covers_needed, size)) | (
        np.repeat(extras, size) & (rng.random(slot.size) < MEMBER_TURNOUT)
    )
    pair_firm = rings.members[rings.start[pair_ring] + slot]
    ring_tender = pair_tender[bids_]
    ring_firm = pair_firm[bids_]
    lead_role = np.select(
        [
            _scheme_is(sch, "favoured_bidder"),
            _scheme_is(sch, "buy_in"),
            _scheme_is(sch, "market_allocation"),
        ],
        [FAVOURED, BUY_IN, ALLOCATED],
        DESIGNATED,
    )
    other_role = np.where(_scheme_is(sch, "fabricated_bids"), SHAM, COVER)
    ring_role = np.where(
        order[bids_] == 0, np.repeat(lead_role, size)[bids_], np.repeat(other_role, size)[bids_]
    )
    # An allocation ring's members bid in its market only for their own buyers' tenders.
    in_market = np.flatnonzero(rings.tender_market >= 0)
    m_ring = rings.tender_market[in_market]
    m_size = rings.size[m_ring]
    m_tender = np.repeat(in_market, m_size)
    m_slot = np.arange(m_tender.size) - np.repeat(np.cumsum(m_size) - m_size, m_size)
    m_firm = rings.members[np.repeat(rings.start[m_ring], m_size) + m_slot]
    own = (rings.tender_ring[m_tender] == np.repeat(m_ring, m_size)) & (
        m_slot == rings.tender_owner[m_tender]
    )

    # Everyone else: honest bidders. A ring's tenders get a few outsiders, a sham tender none;
    # a favoured firm, a buy-in firm or an allocation member meets an ordinary field.
    on_ring = np.bincount(ring_tender, minlength=n)
    outsiders = np.where(rng.random(n) < OUTSIDER_SHARE, rng.integers(1, 4, n), 0)
    need = np.select(
        [
            sch_t < 0,
            _scheme_is(sch_t, *RING_SCHEMES),
            _scheme_is(sch_t, "fabricated_bids"),
        ],
        [ten.bidders, np.maximum(outsiders, 3 - on_ring), np.maximum(3 - on_ring, 0)],
        np.maximum(ten.bidders - on_ring, 2),
    )
    free_tender, free_firm = _draw_bidders(
        rng,
        need=need,
        ten=ten,
        market=market,
        taken=(ring_tender, ring_firm),
        barred=(m_tender[~own], m_firm[~own]),
        n_firms=firms.n,
    )

    tender = np.concatenate([ring_tender, free_tender])
    firm = np.concatenate([ring_firm, free_firm])
    role = np.concatenate([ring_role, np.zeros(free_tender.size, dtype=np.int64)])

    # Dates: a deadline 20-35 days out (fewer for some, more often when rigged), bids mostly
    # in the last days, the award a few days after the opening.
    short_rate = np.array(
        [
            SHORT_DEADLINE.get(s, SHORT_DEADLINE["rigged" if s in RING_SCHEMES else "clean"])
            for s in ALL_SCHEMES
        ]
        + [SHORT_DEADLINE["clean"]]
    )
    short = rng.random(n) < short_rate[sch_t]
    days = np.where(short, rng.integers(10, 20, n), rng.integers(20, 36, n))
    opening = rng.choice(np.array([9 * 3600, 9 * 3600 + 1800, 10 * 3600, 14 * 3600 + 1800]), n)
    deadline = _workday(ten.published // US_PER_DAY + days) * US_PER_DAY + opening * US_PER_S
    award_day = _workday(deadline // US_PER_DAY + rng.integers(3, 22, n))
    awarded = award_day * US_PER_DAY + rng.integers(9 * 3600, 18 * 3600, n) * US_PER_S
    submitted = _uploads(rng, deadline[tender], ten.published[tender], margin=300)
    # One preparer uploads the ring's bids in one sitting, minutes apart.
    session = _uploads(rng, deadline, ten.published, margin=1800)
    one_hand = (role != HONEST) & _scheme_is(sch_t[tender], "shared_traces")
    hand = np.flatnonzero(one_hand)
    k = rank_within(tender[hand], rng.random(hand.size))
    submitted[hand] = session[tender[hand]] + (k * 240 + rng.integers(0, 200, hand.size)) * US_PER_S
    # A favoured firm, told the others' prices, mostly uploads last, minutes before the
    # deadline.
    favoured = np.flatnonzero(role == FAVOURED)
    if favoured.size:
        rivals = np.flatnonzero(_scheme_is(sch_t[tender], "favoured_bidder") & (role == HONEST))
        last = np.zeros(n, dtype=np.int64)
        np.maximum.at(last, tender[rivals], submitted[rivals])
        ft = tender[favoured]
        minutes = rng.integers(LATE_MINUTES[0] * 60, LATE_MINUTES[1] * 60, favoured.size)
        late = np.maximum(
            deadline[ft] - minutes * US_PER_S,
            last[ft] + rng.integers(20, 600, favoured.size) * US_PER_S,
        )
        late = np.minimum(late, deadline[ft] - 20 * US_PER_S)
        use = rng.random(favoured.size) < FAVOURED_LATE
        submitted[favoured[use]] = late[use]
    submitted = submitted // US_PER_S * US_PER_S

    order_ = _sort_bids(tender, submitted - ten.published[tender], firm)
    tender, firm, role, submitted = tender[order_], firm[order_], role[order_], submitted[order_]
    one_hand = one_hand[order_]

    cents = _prices(rng, ten=ten, rings=rings, firms=firms, tender=tender, firm=firm, role=role)
    cents, status = _statuses(
        rng, ten=ten, rings=rings, firms=firms, tender=tender, firm=firm, role=role, cents=cents
    )
    cents, status = _favour(
        rng, ten=ten, firms=firms, tender=tender, firm=firm, role=role, cents=cents, status=status
    )
    winner = _award(
        rng, ten=ten, firms=firms, tender=tender, firm=firm, role=role, cents=cents, status=status
    )

    # Traces: each firm its own, except where one hand prepared the ring's bids.
    trace_firm = {name: firm for name in TRACES}
    ip_variant = np.where(
        rng.random(tender.size) < 0.7, 0, rng.integers(1, IP_VARIANTS, tender.size)
    )
    if one_hand.any():
        ring_of_bid = rings.tender_ring[tender[one_hand]]
        preparer = rings.members[rings.start[ring_of_bid]]
        for name in TRACES:
            shared = np.ones(n, dtype=bool)
            if name in SHARED_TRACE_RATES:
                shared = rng.random(n) < SHARED_TRACE_RATES[name]
            use = shared[tender[one_hand]]
            column = trace_firm[name].copy()
            column[np.flatnonzero(one_hand)[use]] = preparer[use]
            trace_firm[name] = column
            if name == "ip_address":
                ip_variant = ip_variant.copy()
                ip_variant[np.flatnonzero(one_hand)[use]] = 0
    return _Bids(
        tender=tender,
        firm=firm,
        role=role,
        cents=cents,
        status=status,
        winner=winner,
        submitted=submitted,
        trace_firm=trace_firm,
        ip_variant=ip_variant,
        deadline=deadline,
        awarded=awarded,
    )


def _uploads(rng: np.random.Generator, deadline: Arr, published: Arr, *, margin: int) -> Arr:
    """Upload times: mostly in the last days before the deadline, in waking hours (08-22),
    at least ``margin`` seconds before it and an hour after publication."""
    size = deadline.size
    back = np.floor(rng.exponential(1.5, size)).astype(np.int64) + (rng.random(size) > 0.15)
    day = deadline // US_PER_DAY - back
    second = rng.integers(8 * 3600, 22 * 3600, size)
    upload = day * US_PER_DAY + second * US_PER_S
    # On the deadline's own day, between 08:00 and the margin before the opening.
    latest = deadline - margin * US_PER_S
    early = (deadline // US_PER_DAY) * US_PER_DAY + 8 * 3600 * US_PER_S
    same_day = early + (rng.random(size) * np.maximum(latest - early, 0)).astype(np.int64)
    upload = np.where(upload > latest, same_day, upload)
    out: Arr = np.maximum(upload, published + 3600 * US_PER_S)
    return out


def _draw_bidders(
    rng: np.random.Generator,
    *,
    need: Arr,
    ten: _Tenders,
    market: _Market,
    taken: tuple[Arr, Arr],
    barred: tuple[Arr, Arr],
    n_firms: int,
) -> tuple[Arr, Arr]:
    """``need[t]`` more distinct bidders per tender, none already bidding in it and none
    ``barred`` from it.

    Draws with replacement, drops repeats, and draws again for the shortfall: a few vectorised
    rounds instead of a loop over tenders.
    """
    known = [
        np.sort(np.concatenate([taken[0] * n_firms + taken[1], barred[0] * n_firms + barred[1]])),
        np.zeros(0, dtype=np.int64),
    ]
    found: list[Arr] = []
    pending = need.astype(np.int64)
    for _ in range(1000):
        if not pending.any():
            break
        tender = np.repeat(np.arange(pending.size), pending)
        firm = market.draw(rng, ten.region[tender], ten.category[tender])
        new = _sorted_unique(tender * n_firms + firm)
        for keys in known:
            if keys.size:
                pos = np.minimum(np.searchsorted(keys, new), keys.size - 1)
                new = new[keys[pos] != new]
        found.append(new)
        # The first round's draws join the big sorted array once; later, smaller rounds
        # are kept apart so that the big one is not sorted again.
        if len(found) == 1:
            known[0] = np.sort(np.concatenate([known[0], new]))
        else:
            known[1] = np.sort(np.concatenate([known[1], new]))
        pending = pending - np.bincount(new // n_firms, minlength=pending.size)
    else:  # pragma: no cover - every county has more firms than a tender has bidders
        raise RuntimeError("could not draw distinct bidders")
    keys = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
    return keys // n_firms, keys % n_firms


def _prices(
    rng: np.random.Generator,
    *,
    ten: _Tenders,
    rings: _Rings,
    firms: _Firms,
    tender: Arr,
    firm: Arr,
    role: Arr,
) -> Arr:
    """Bid amounts in cents."""
    n, size = ten.n, tender.size
    estimate = ten.estimate / 100.0
    est = estimate[tender]
    cost = np.exp(rng.normal(np.log(HONEST_COST[0]), HONEST_COST[1], n))
    honest = (
        est
        * cost[tender]
        * firms.efficiency[firm]
        * np.exp(rng.normal(0.0, BID_NOISE_SD, size))
        * (1 + rng.uniform(*MARKUP, size))
    )
    cents = _round_habit(honest, firms.rounding[firm])

    sch_t = rings.tender_scheme()
    sch = sch_t[tender]
    cover = np.flatnonzero((role == COVER) | (role == SHAM))
    ct = tender[cover]
    rank = rank_within(ct, rng.random(cover.size)) + 1  # a cover's place in a progression
    covers = np.bincount(ct, minlength=n)

    def is_(name: str) -> Arr:
        return np.equal(sch_t, ALL_SCHEMES.index(name))

    # Cover price / winner price, per cover bid.
    band = rng.uniform(0.006, 0.03, n)
    width = rng.uniform(0.0008, 0.004, n)
    step = rng.uniform(0.004, 0.02, n)
    ratio = rng.uniform(1.004, 1.02, n)
    geometric = rng.random(n) < GEOMETRIC_SHARE
    loose = 1.003 + np.abs(rng.normal(0.02, 0.015, cover.size))
    c_sch = sch[cover]
    mult = np.select(
        [
            c_sch == ALL_SCHEMES.index("cover_bidding"),
            c_sch == ALL_SCHEMES.index("shared_traces"),
            c_sch == ALL_SCHEMES.index("arithmetic_bids"),
        ],
        [
            (1 + band[ct]) * (1 + np.abs(rng.normal(0.0, width[ct]))),
            1.004 + np.abs(rng.normal(0.0, 0.035, cover.size)),
            np.where(geometric[ct], ratio[ct] ** rank, 1 + step[ct] * rank),
        ],
        loose,
    )
    rule = ten.award[ct]
    steering = np.isin(sch_t[ct], [ALL_SCHEMES.index(s) for s in STEERING])
    low_s, high_s = WIDE_COVERS["scoring"]
    scored = steering & (rule == AWARD_METHODS.index("scoring"))
    averaged = steering & (rule == AWARD_METHODS.index("average_bid"))
    mult = np.where(scored, rng.uniform(low_s, high_s, cover.size), mult)
    sd = WIDE_COVERS["average_bid"][1]
    mult = np.where(averaged, np.exp(rng.normal(0.0, sd, cover.size)), mult)
    top = np.ones(n)
    np.maximum.at(top, ct, mult)

    # The designated winner's price: high, shaded when outsiders bid, covers under the ceiling.
    median = np.array([WINNER_RATIO[s][0] for s in ALL_SCHEMES])[np.maximum(sch_t, 0)]
    spread = np.array([WINNER_RATIO[s][1] for s in ALL_SCHEMES])[np.maximum(sch_t, 0)]
    target = np.exp(rng.normal(np.log(median), spread))
    outsiders = np.bincount(tender, weights=(role == HONEST), minlength=n) > 0
    target *= np.where(outsiders, rng.uniform(*OUTSIDER_SHADING, n), 1.0)
    won = np.minimum(target, COVER_CEILING / top) * estimate
    won_cents = _odd_cents(won * 100)

    cover_cents = _odd_cents(won_cents[ct] * mult)
    arithmetic = is_("arithmetic_bids")[ct]
    offset = _odd_cents(step * won_cents)
    cover_cents = np.where(
        arithmetic & ~geometric[ct],
        won_cents[ct] + rank * offset[ct],
        np.where(arithmetic, np.round(won_cents[ct] * ratio[ct] ** rank), cover_cents),
    ).astype(np.int64)
    # identical_bids: two or three covers copy one odd amount.
    same = np.where((covers >= 3) & (rng.random(n) < IDENTICAL_TRIPLE), 3, 2)
    first_cover = np.zeros(n, dtype=np.int64)
    first_cover[ct[rank == 1]] = cover_cents[rank == 1]
    copy = is_("identical_bids")[ct] & (rank <= same[ct])
    cover_cents = np.where(copy, first_cover[ct], cover_cents)
    # round_covers: covers written to three significant digits, the nearer round amount that
    # stays on the cover's side of the winner and under the ceiling.
    ceiling = np.floor(ten.estimate * COVER_CEILING).astype(np.int64)
    unit = 10 ** np.maximum(_magnitude(cover_cents) - (ROUND_DIGITS - 1), 0)
    up = -(-cover_cents // unit) * unit
    down = cover_cents // unit * unit
    above = cover_cents > won_cents[ct]
    up_ok = (up <= ceiling[ct]) & (above | (up < won_cents[ct]))
    down_ok = (down > 0) & (~above | (down > won_cents[ct]))
    nearer_up = up - cover_cents < cover_cents - down
    rounded = np.where(up_ok & (nearer_up | ~down_ok), up, np.where(down_ok, down, cover_cents))
    habit = rng.uniform(*ROUND_COVER_RATE, rings.scheme.size + 1)[rings.tender_ring[ct]]
    round_ = is_("round_covers")[ct] & (rng.random(cover.size) < habit)
    cover_cents = np.where(round_, rounded, cover_cents)

    cents = cents.copy()
    cents[cover] = cover_cents
    designated = role == DESIGNATED
    cents[designated] = won_cents[tender[designated]]
    # buy_in: far under the estimate, rounded by the firm's habit.
    buy = np.flatnonzero(role == BUY_IN)
    low, sd_buy = WINNER_RATIO["buy_in"]
    deep = np.clip(np.exp(rng.normal(np.log(low), sd_buy, buy.size)), 0.5, 0.9)
    cents[buy] = _round_habit(est[buy] * deep, firms.rounding[firm[buy]])

    # fabricated_bids: every amount of a sham tender and every bid of a shell firm is
    # invented; the sham winner's first, since the others are written around it.
    shell = rings.shells(firms.n)
    staged = np.flatnonzero(designated & is_("fabricated_bids")[tender])
    st = tender[staged]
    cents[staged] = _invent(
        rng, cents[staged] / 100.0, rings.habit[rings.tender_ring[st]], 0 * st, ceiling[st] / 100.0
    )
    planned = won_cents.copy()
    won_cents[st] = cents[staged]
    invented = np.flatnonzero((role == SHAM) | (shell[firm] >= 0))
    it = tender[invented]
    group = np.where(role[invented] == SHAM, rings.tender_ring[it], shell[firm[invented]])
    sham = role[invented] == SHAM
    below = sham & (cents[invented] < planned[it])
    floor = np.where(sham & ~below, won_cents[it] / 100.0, 0.0)
    top = np.where(below, (won_cents[it] - 100) / 100.0, ceiling[it] / 100.0)
    cents[invented] = _invent(rng, cents[invented] / 100.0, rings.habit[group], floor, top)
    return cents


def _magnitude(values: Arr) -> Arr:
    """Number of digits minus one of positive integers (exactly, without float rounding)."""
    v = np.asarray(values, dtype=np.int64)
    k = np.floor(np.log10(np.maximum(v, 1))).astype(np.int64)
    k = k - (10**k > v)
    out: Arr = k + (10 ** (k + 1) <= v)
    return out


def _invent(rng: np.random.Generator, intended: Arr, habit: Arr, floor: Arr, ceiling: Arr) -> Arr:
    """Invented amounts, as cents: whole yuan that keep the first digit of ``intended`` (yuan),
    a second digit near it and the others as the writer's ``habit`` (one row of 10 digit
    weights per amount) has them, digit by digit, above ``floor`` and at most ``ceiling``
    while any digit allows."""
    m = intended.size
    yuan = np.maximum(np.floor(intended), 100).astype(np.int64)
    k = _magnitude(yuan)
    prefix = yuan // 10**k
    low = np.floor(floor).astype(np.int64) + 1
    high = np.floor(np.minimum(ceiling, 1e15)).astype(np.int64)
    digit = np.arange(10)
    for r in range(1, int(k.max(initial=0)) + 1):
        place = 10 ** np.maximum(k - r, 0)[:, None]
        start = (prefix[:, None] * 10 + digit) * place
        fits = (start + place - 1 >= low[:, None]) & (start <= high[:, None])
        weight = habit
        if r == 1:
            middle = (start + place / 2) / intended[:, None]
            weight = weight * np.exp(-0.5 * (np.log(middle) / INVENTED_SD) ** 2)
        bounded = weight * fits
        weight = np.where((bounded.sum(axis=1) > 0)[:, None], bounded, weight)
        cum = np.cumsum(weight, axis=1)
        pick = np.minimum((cum < (rng.random(m) * cum[:, -1])[:, None]).sum(axis=1), 9)
        prefix = np.where(r <= k, prefix * 10 + pick, prefix)
    out: Arr = prefix * 100
    return out


def _statuses(
    rng: np.random.Generator,
    *,
    ten: _Tenders,
    rings: _Rings,
    firms: _Firms,
    tender: Arr,
    firm: Arr,
    role: Arr,
    cents: Arr,
) -> tuple[Arr, Arr]:
    """Competitive bids over the ceiling are pulled under it or disqualified; a few other
    competitive bids are disqualified or withdrawn; every tender keeps two valid bids, but a
    few clean tenders keep only one."""
    size = tender.size
    ceiling = ten.estimate[tender]
    competitive = (role == HONEST) | (role == ALLOCATED)
    u = rng.random(size)
    status = np.where(
        u < DISQUALIFIED, DISQ, np.where(u < DISQUALIFIED + WITHDRAWN, WITHDRAW, VALID)
    )
    status = np.where(competitive, status, VALID)
    # Shells write whole yuan even when they pull a bid under the ceiling.
    habit = np.maximum(firms.rounding[firm], rings.shells(firms.n)[firm] >= 0)
    under = _round_habit(ceiling / 100.0 * (1 - rng.uniform(0.001, 0.03, size)), habit, floor=True)
    over = competitive & (cents > ceiling)
    pull = over & (rng.random(size) < PULL_UNDER_CEILING)
    cents = np.where(pull, under, cents)
    status = np.where(over & ~pull, DISQ, status)
    valid = np.bincount(tender, weights=status == VALID, minlength=ten.n)
    first_two = np.arange(size) - np.searchsorted(tender, tender) < 2
    rescue = (valid[tender] < 2) & first_two
    cents = np.where(rescue & (cents > ceiling), under, cents)
    status = np.where(rescue, VALID, status)
    # Every bid but one of a few clean tenders fails the qualification review.
    sole = (rings.tender_ring < 0) & (rng.random(ten.n) < SOLE_VALID_CLEAN)
    bids = np.flatnonzero(sole[tender])
    keep = rank_within(tender[bids], rng.random(bids.size)) == 0
    survivor = bids[keep]
    cents[survivor] = np.where(
        cents[survivor] > ceiling[survivor], under[survivor], cents[survivor]
    )
    status[survivor] = VALID
    failed = bids[~keep]
    status[failed] = np.where(status[failed] == WITHDRAW, WITHDRAW, DISQ)
    return cents, status


def _favour(
    rng: np.random.Generator,
    *,
    ten: _Tenders,
    firms: _Firms,
    tender: Arr,
    firm: Arr,
    role: Arr,
    cents: Arr,
    status: Arr,
) -> tuple[Arr, Arr]:
    """The favoured firm's price and its rivals' disqualifications (FAVOUR_MIX)."""
    favoured = np.flatnonzero(role == FAVOURED)
    m = favoured.size
    if m == 0:
        return cents, status
    ft = tender[favoured]  # in order, one favoured bid per tender
    mine = np.zeros(ten.n, dtype=bool)
    mine[ft] = True
    bids = np.flatnonzero(mine[tender] & (role != FAVOURED))
    if bids.size == 0:  # pragma: no cover - a favoured firm meets two or more rivals
        return cents, status
    which = np.searchsorted(ft, tender[bids])
    rival = status[bids] == VALID
    amount = np.where(rival, cents[bids].astype(np.float64), np.inf)
    starts = np.searchsorted(which, np.arange(m))
    has = np.bincount(which, minlength=m) > 0
    low1 = np.where(has, np.minimum.reduceat(amount, np.minimum(starts, bids.size - 1)), np.inf)
    at_low = np.flatnonzero(amount == low1[which])
    lowest = at_low[np.r_[True, which[at_low][1:] != which[at_low][:-1]]] if at_low.size else at_low
    amount2 = amount.copy()
    amount2[lowest] = np.inf
    low2 = np.where(has, np.minimum.reduceat(amount2, np.minimum(starts, bids.size - 1)), np.inf)
    total = np.bincount(which, weights=np.where(rival, cents[bids], 0), minlength=m)
    count = np.bincount(which, weights=rival, minlength=m)

    mode = rng.choice(3, m, p=FAVOUR_MIX)  # 0 sole survivor, 1 lowest out, 2 told the prices
    mode = np.where(np.isfinite(low1), mode, 0)
    mean = np.where(
        mode == 1, (total - low1) / np.maximum(count - 1, 1), total / np.maximum(count, 1)
    )
    reference = np.where(mode == 1, low2, low1)
    averaged = ten.award[ft] == AWARD_METHODS.index("average_bid")
    reference = np.where(averaged, mean * (1 - np.mean(AVERAGE_BID_K)), reference)
    reference = np.where(averaged & (mode == 1) & (count < 2), np.inf, reference)
    median, spread = WINNER_RATIO["favoured_bidder"]
    high = ten.estimate[ft] * np.exp(rng.normal(np.log(median), spread, m))
    price = np.where(
        (mode != 0) & np.isfinite(reference),
        reference * (1 - rng.uniform(*FAVOUR_UNDERCUT, m)),
        high,
    )
    price = np.minimum(price, ten.estimate[ft] * COVER_CEILING)
    cents = cents.copy()
    cents[favoured] = _round_habit(price / 100.0, firms.rounding[firm[favoured]], floor=True)

    status = status.copy()
    out = np.zeros(bids.size, dtype=bool)
    out[lowest] = mode[which[lowest]] == 1
    out |= rival & (mode[which] == 0)
    status[bids[out]] = DISQ
    return cents, status


def _award(
    rng: np.random.Generator,
    *,
    ten: _Tenders,
    firms: _Firms,
    tender: Arr,
    firm: Arr,
    role: Arr,
    cents: Arr,
    status: Arr,
) -> Arr:
    """Exactly one winner per tender, by its award rule; covers and sham bids never win, and
    a favoured firm always does."""
    n, size = ten.n, tender.size
    amount = cents / 100.0
    valid = status == VALID
    starts = np.searchsorted(tender, np.arange(n))
    low = np.minimum.reduceat(np.where(valid, amount, np.inf), starts)
    mean = np.bincount(tender, weights=np.where(valid, amount, 0.0), minlength=n) / np.bincount(
        tender, weights=valid, minlength=n
    )
    benchmark = mean * (1 - rng.uniform(*AVERAGE_BID_K, n))
    tech = TECH_SD[0] * firms.quality[firm] + rng.normal(0.0, TECH_SD[1], size)
    scoring = tech - SCORING_POINTS_PER_PCT * 100 * (amount / low[tender] - 1)
    rule = ten.award[tender]
    score = np.select(
        [rule == AWARD_METHODS.index("lowest_price"), rule == AWARD_METHODS.index("average_bid")],
        [-amount, -np.abs(amount - benchmark[tender])],
        scoring,
    )
    score = np.where(valid & (role != COVER) & (role != SHAM), score, -np.inf)
    score = np.where(role == FAVOURED, np.inf, score)
    best = np.maximum.reduceat(score, starts)[tender]
    top = np.flatnonzero(score == best)
    first = top[np.r_[True, tender[top][1:] != tender[top][:-1]]]
    winner = np.zeros(size, dtype=bool)
    winner[first] = True
    return winner


# ------------------------------------------------------------------------ firm registry


def _firm_tables(
    rng: np.random.Generator, firms: _Firms, places: _Places, rings: _Rings
) -> tuple[pl.DataFrame, pl.Series, dict[str, pl.Series]]:
    """(registry, NAME_VARIANTS spellings per firm, per-firm values of each trace)."""
    n = firms.n
    home = firms.home
    # 字号: distinct within a county (an affine walk over the character pairs), so that
    # registered names are unique as the registration authority requires.
    pairs = _n_pairs(TRADE_CHARS)
    within = rank_within(home, np.arange(n))
    walk = _coprime(rng, pairs)
    trade = _pairs(
        TRADE_CHARS, (within * walk + rng.integers(0, pairs, places.code.size)[home]) % pairs
    )
    industry_choice = rng.integers(0, 3, n)
    industry = pl.Series([w for words in INDUSTRIES for w in words]).gather(
        firms.specialty * 3 + industry_choice
    )
    form_i = rng.choice(3, n, p=FORM_MIX)
    form = pl.Series(FORMS).gather(form_i)
    swapped = pl.Series(FORM_SWAPPED).gather(form_i)
    region = places.name.gather(home)
    short = places.short.gather(home)
    typo_at = rng.integers(0, 2, n)
    typo = _typos(trade, typo_at)
    english = _english(short, trade, industry, form_i)
    parts = pl.DataFrame(
        {
            "r": region,
            "s": short,
            "t": trade,
            "i": industry,
            "f": form,
            "w": swapped,
            "y": typo,
            "e": english,
        }
    )
    variants = parts.select(
        pl.concat_list(
            pl.concat_str("r", "t", "i", "f"),
            pl.concat_str("r", "t", "i", "w"),
            pl.concat_str("t", "i", "f"),
            pl.concat_str("t", pl.lit("（"), "s", pl.lit("）"), "i", "f"),
            pl.concat_str("t", pl.lit("("), "s", pl.lit(")"), "i", "f"),
            pl.concat_str("r", "t", "i", "f", pl.lit(" ")),
            pl.concat_str("r", "y", "i", "f"),
            pl.col("e"),
        ).alias("names")
    )
    names = variants.get_column("names").explode()

    founded = rng.integers(_days(FOUNDED_RANGE[0]), _days(FOUNDED_RANGE[1]) + 1, n)
    rep = _person_names(rng, n)
    others = _person_names(rng, 2 * n)
    more = rng.choice(3, n, p=(0.4, 0.45, 0.15))
    organiser_of = np.full(n, -1)
    for_ring = np.repeat(np.arange(rings.scheme.size), rings.size)
    slot = np.arange(for_ring.size) - rings.start[for_ring]
    marked = rings.organiser[for_ring] & (slot < 2)
    organiser_of[rings.members[marked]] = for_ring[marked]
    organisers = _person_names(rng, max(rings.scheme.size, 1))
    shareholders = pl.DataFrame(
        {
            "a": rep,
            "b": others.head(n).zip_with(
                pl.Series(more >= 1), pl.Series([None] * n, dtype=pl.String)
            ),
            "c": others.tail(n).zip_with(
                pl.Series(more >= 2), pl.Series([None] * n, dtype=pl.String)
            ),
            "d": organisers.gather(np.maximum(organiser_of, 0)).zip_with(
                pl.Series(organiser_of >= 0), pl.Series([None] * n, dtype=pl.String)
            ),
        }
    ).select(pl.concat_str("a", "b", "c", "d", separator=";", ignore_nulls=True))

    town = places.town_start[home] + rng.integers(0, places.town_count[home])
    address = (
        region
        + places.town.gather(town)
        + pl.Series(ROADS).gather(rng.integers(0, len(ROADS), n))
        + pl.Series(rng.integers(1, 300, n)).cast(pl.String)
        + "号"
    )
    landline = (
        "0"
        + pl.Series(places.area_code[home]).cast(pl.String)
        + "-"
        + pl.Series(rng.integers(2_000_000, 9_000_000, n)).cast(pl.String)
    )
    capital = CAPITAL_WAN[rng.choice(CAPITAL_WAN.size, n, p=CAPITAL_MIX / CAPITAL_MIX.sum())]
    width = max(6, len(str(n)))
    firm_id = "F" + pl.Series(np.arange(1, n + 1)).cast(pl.String).str.zfill(width)
    registry = pl.DataFrame(
        {
            "firm_id": firm_id,
            "name": names.gather(np.arange(n) * NAME_VARIANTS),
            "credit_code": _credit_codes(rng, places.code[home], founded),
            "legal_representative": rep,
            "shareholders": shareholders.to_series(),
            "address": address,
            "phone": landline,
            "founded_on": pl.Series(founded.astype(np.int32)).cast(pl.Date),
            "registered_capital": (capital * 10_000).astype(np.float64),
        }
    )
    return registry, names, _trace_values(rng, n)


def _typos(trade: pl.Series, at: Arr) -> pl.Series:
    """Each 字号 with the character at ``at`` (0 or 1) replaced by its homophone."""
    first, second = trade.str.slice(0, 1), trade.str.slice(1, 1)
    typo = {k: v for k, v in TYPO_OF.items()}
    return pl.select(
        pl.when(pl.Series(at) == 0)
        .then(pl.concat_str(first.replace_strict(typo), second))
        .otherwise(pl.concat_str(first, second.replace_strict(typo)))
    ).to_series()


def _english(short: pl.Series, trade: pl.Series, industry: pl.Series, form_i: Arr) -> pl.Series:
    """English names as Chinese firms register them: Yangxin Xinda Road and Bridge
    Construction Co., Ltd. (pinyin of region and 字号, English industry and form)."""
    from pypinyin import lazy_pinyin

    def spoken(texts: pl.Series) -> pl.Series:
        sounds = {t: "".join(lazy_pinyin(t)).capitalize() for t in texts.unique().to_list()}
        return texts.replace_strict(sounds, return_dtype=pl.String)

    form = pl.Series(["Co., Ltd.", "Co., Ltd.", "Company Limited"]).gather(form_i)
    return pl.select(
        pl.concat_str(
            spoken(short),
            spoken(trade),
            industry.replace_strict(INDUSTRY_ENGLISH, return_dtype=pl.String),
            form,
            separator=" ",
        )
    ).to_series()


def _trace_values(rng: np.random.Generator, n: int) -> dict[str, pl.Series]:
    """Per firm: IP_VARIANTS IP addresses and one value of each other trace, all distinct."""
    block = _scatter(rng, n, ISP_FIRST_OCTETS.size * 65_536)
    prefix = (
        pl.Series(ISP_FIRST_OCTETS[block // 65_536]).cast(pl.String)
        + "."
        + pl.Series((block // 256) % 256).cast(pl.String)
        + "."
        + pl.Series(block % 256).cast(pl.String)
        + "."
    )
    host = rng.integers(0, 248, n)
    ips = (
        pl.DataFrame(
            {
                f"v{v}": prefix + pl.Series(2 + (host + 37 * v) % 248).cast(pl.String)
                for v in range(IP_VARIANTS)
            }
        )
        .select(pl.concat_list(pl.all()))
        .to_series()
        .explode()
    )

    oui = np.array(MAC_OUIS)[rng.integers(0, len(MAC_OUIS), n)]
    mac_hex = _digits((oui << 24) + _scatter(rng, n, 1 << 24), 12, 16)
    mac = _grouped(mac_hex, 2)
    machine_hex = _digits(
        _scatter(rng, n, 1 << 48).astype(np.uint64)
        | (rng.integers(0, 1 << 16, n).astype(np.uint64) << np.uint64(48)),
        16,
        16,
    )
    machine = _grouped(machine_hex, 4)

    combos = len(SURNAMES) * len(GIVEN_CHARS) ** 2
    who = _scatter(rng, n, combos) if n <= combos else np.arange(n) % combos
    g = len(GIVEN_CHARS)
    author = (
        pl.Series(list(SURNAMES)).gather(who // (g * g))
        + pl.Series(list(GIVEN_CHARS)).gather((who // g) % g)
        + pl.Series(list(GIVEN_CHARS)).gather(who % g)
    )
    if n > combos:  # more firms than names: number the repeats, as user accounts do
        author = author + pl.Series(np.arange(n) // combos).cast(pl.String).replace("0", "")
    account = pl.Series(_digits(rng.integers(1000, 10_000, n), 4)) + pl.Series(
        _digits(_scatter(rng, n, 10**15), 15)
    )
    mobile_n = _scatter(rng, n, len(MOBILE_PREFIXES) * 10**8)
    mobile = pl.Series(MOBILE_PREFIXES).gather(mobile_n // 10**8) + pl.Series(
        _digits(mobile_n % 10**8, 8)
    )
    return {
        "ip_address": ips,
        "mac_address": mac,
        "machine_code": machine,
        "document_author": author,
        "deposit_account": account,
        "phone": mobile,
    }


def _credit_codes(rng: np.random.Generator, region_code: Arr, founded: Arr) -> pl.Series:
    """USCCs: 9 (registered by market regulation) 1 (enterprise), county code, organisation
    code with its GB 11714 check, GB 32100 check character."""
    n = region_code.size
    new = founded >= _days(NEW_CODES_FROM)
    old_body = _digit_matrix(_scatter(rng, n, 10**8), 8)
    new_body = _digit_matrix(_scatter(rng, n, 10**6), 8)  # "00" + 6 digits; "MA" below
    body = np.where(new[:, None], new_body, old_body)
    org_value = body.copy()  # GB 11714 values letters as A=10 .. Z=35
    org_value[new, 0], org_value[new, 1] = 22, 10
    uscc_value = body.copy()  # GB 32100 values characters by their place in its charset
    uscc_value[new, 0], uscc_value[new, 1] = USCC_CHARSET.index("M"), USCC_CHARSET.index("A")
    org_check = 11 - (org_value @ ORG_WEIGHTS) % 11
    org_check = np.where(org_check == 10, USCC_CHARSET.index("X"), org_check % 11)
    head = np.tile(np.array([9, 1]), (n, 1))
    first17 = np.column_stack([head, _digit_matrix(region_code, 6), uscc_value, org_check])
    check = (31 - (first17 @ USCC_WEIGHTS) % 31) % 31
    values = np.column_stack([first17, check])
    charset = np.frombuffer(USCC_CHARSET.encode(), dtype=np.uint8)
    return pl.Series(np.ascontiguousarray(charset[values]).view("S18").ravel().astype("U18"))


# ----------------------------------------------------------------------------- frames


def _tender_frame(
    rng: np.random.Generator, ten: _Tenders, bids: _Bids, places: _Places
) -> pl.DataFrame:
    n = ten.n
    template = ten.template
    has_town, has_village, has_year = (
        np.array([part in t[1] for t in TEMPLATES])[template] for part in "TVY"
    )
    year = (ten.published // US_PER_DAY).astype("datetime64[D]").astype("datetime64[Y]")
    village = pl.Series(list(VILLAGE_FIRST)).gather(
        rng.integers(0, len(VILLAGE_FIRST), n)
    ) + pl.Series(list(VILLAGE_SECOND)).gather(rng.integers(0, len(VILLAGE_SECOND), n))
    frame = pl.DataFrame(
        {
            "region": places.name.gather(ten.region),
            "town": places.town.gather(ten.town),
            "village": village,
            "year": pl.Series(year.astype(np.int64) + 1970).cast(pl.String) + "年",
            "ending": pl.Series([t[2] for t in TEMPLATES]).gather(template),
            "bureau": pl.Series(BUREAUS).gather(np.array([t[3] for t in TEMPLATES])[template]),
            "has_town": has_town,
            "has_village": has_village,
            "has_year": has_year,
            "township_buys": ten.buyer < places.town.len(),
            "code": pl.Series(places.code[ten.region]).cast(pl.String),
            "town_no": ten.town - places.town_start[ten.region] + 1,
            "bureau_no": np.array([t[3] for t in TEMPLATES])[template] + 1,
        }
    )
    empty = pl.lit("")
    title = pl.concat_str(
        "region",
        pl.when("has_town").then("town").otherwise(empty),
        pl.when("has_village").then("village").otherwise(empty),
        pl.when("has_year").then("year").otherwise(empty),
        "ending",
    )
    buyer = pl.when("township_buys")
    ids = pl.Series(np.arange(1, n + 1)).cast(pl.String).str.zfill(max(8, len(str(n))))
    return frame.select(
        ("ZB" + ids).alias("tender_id"),
        title.alias("title"),
        buyer.then(pl.format("{}-T{}", "code", pl.col("town_no").cast(pl.String).str.zfill(3)))
        .otherwise(pl.format("{}-B{}", "code", pl.col("bureau_no").cast(pl.String).str.zfill(2)))
        .alias("buyer_id"),
        buyer.then(pl.concat_str("region", "town", pl.lit("人民政府")))
        .otherwise(pl.concat_str("region", "bureau"))
        .alias("buyer_name"),
        "region",
        pl.Series(CATEGORIES).gather(ten.category).alias("category"),
        pl.Series(np.where(ten.invited, "invited", "open")).alias("procedure"),
        pl.Series(AWARD_METHODS).gather(ten.award).alias("award_method"),
        pl.Series(ten.estimate / 100.0).alias("estimate"),
        pl.lit("CNY").alias("currency"),
        _datetimes(ten.published).alias("published_at"),
        _datetimes(bids.deadline).alias("bid_deadline"),
        _datetimes(bids.awarded).alias("awarded_at"),
    )


def _bid_frame(
    rng: np.random.Generator,
    *,
    bids: _Bids,
    tender_id: pl.Series,
    firm_id: pl.Series,
    names: pl.Series,
    traces: dict[str, pl.Series],
) -> pl.DataFrame:
    size = bids.tender.size
    mix = np.asarray(VARIANT_MIX) / sum(VARIANT_MIX)
    variant = np.where(
        rng.random(size) < VARIANT_NAME_SHARE,
        rng.choice(np.arange(1, NAME_VARIANTS), size, p=mix),
        0,
    )
    amount = pl.Series(bids.cents / 100.0)
    withdrawn = pl.Series(bids.status == WITHDRAW)
    columns: dict[str, pl.Series] = {
        "tender_id": tender_id.gather(bids.tender),
        "bidder_id": firm_id.gather(bids.firm),
        "bidder_name": names.gather(bids.firm * NAME_VARIANTS + variant),
        "amount": amount.zip_with(~withdrawn, pl.Series([None] * size, dtype=pl.Float64)),
        "currency": pl.Series(["CNY"], dtype=pl.String).gather(np.zeros(size, dtype=np.int64)),
        "status": pl.Series(("valid", "disqualified", "withdrawn")).gather(bids.status),
        "is_winner": pl.Series(bids.winner),
        "submitted_at": _datetimes(bids.submitted),
    }
    for name in TRACES:
        index = bids.trace_firm[name]
        if name == "ip_address":
            index = index * IP_VARIANTS + bids.ip_variant
        columns[name] = traces[name].gather(index)
    return pl.DataFrame({k: v.alias(k) for k, v in columns.items()})


def _truth_tenders(tender_id: pl.Series, rings: _Rings) -> pl.DataFrame:
    ring = rings.tender_ring
    rigged = ring >= 0
    scheme = pl.Series(("", *ALL_SCHEMES), dtype=pl.String).gather(rings.tender_scheme() + 1)
    label = pl.concat([pl.Series([""], dtype=pl.String), rings.label])
    return pl.DataFrame(
        {
            "tender_id": tender_id,
            "collusive": pl.Series(rigged.astype(np.int8)),
            "scheme": scheme,
            "group": label.gather(np.where(rigged, ring + 1, 0)),
        }
    )


ROLES = (
    "honest",
    "ring_member",
    "designated_winner",
    "cover",
    "preparer_shared",
    "allocated",
    "favoured",
    "fabricator",
    "buy_in",
)
# Each member's role by scheme, and the first member's (the leader, the sham tenders' winner).
ROLE_OF_SCHEME = {
    "rotation": ("ring_member", "ring_member"),
    "cover_bidding": ("cover", "designated_winner"),
    "shared_traces": ("preparer_shared", "preparer_shared"),
    "identical_bids": ("ring_member", "ring_member"),
    "arithmetic_bids": ("ring_member", "ring_member"),
    "round_covers": ("cover", "designated_winner"),
    "market_allocation": ("allocated", "allocated"),
    "favoured_bidder": ("favoured", "favoured"),
    "fabricated_bids": ("fabricator", "designated_winner"),
    "buy_in": ("buy_in", "buy_in"),
}


def _truth_firms(firm_id: pl.Series, rings: _Rings) -> pl.DataFrame:
    n = firm_id.len()
    ring = np.repeat(np.arange(rings.scheme.size), rings.size)
    slot = np.arange(ring.size) - rings.start[ring]
    keep = rings.active[ring]
    ring, slot = ring[keep], slot[keep]
    members = rings.members[keep]
    role_of = np.array([[ROLES.index(r) for r in ROLE_OF_SCHEME[s]] for s in ALL_SCHEMES])
    role = role_of[rings.scheme[ring], (slot == 0).astype(np.int64)]
    firm_role = np.zeros(n, dtype=np.int64)
    firm_role[members] = role
    firm_group = np.zeros(n, dtype=np.int64)
    firm_group[members] = ring + 1
    label = pl.concat([pl.Series([""], dtype=pl.String), rings.label])
    return pl.DataFrame(
        {
            "bidder_id": firm_id,
            "group": label.gather(firm_group),
            "role": pl.Series(ROLES).gather(firm_role),
        }
    )


def _truth_buyers(
    buyer_id: pl.Series, buyer: Arr, firm_id: pl.Series, rings: _Rings
) -> pl.DataFrame:
    """Every buyer with the group that holds it: the buyer a favoured firm, a sham tender's
    winner or a buy-in firm deals with (the buyer is party), or a buyer that a market-
    allocation ring split off to a member (the buyer is not party); the firm is bidder_id."""
    first = np.unique(buyer, return_index=True)[1]
    index = buyer[first]
    group = rings.buyer_group[index]
    held = group >= 0
    held[held] = rings.active[group[held]]
    g = np.where(held, group, 0)
    scheme = np.full(index.size, -1)
    firm = np.zeros(index.size, dtype=np.int64)
    if held.any():
        scheme[held] = rings.scheme[g[held]]
        firm[held] = rings.members[rings.start[g[held]] + rings.buyer_owner[index[held]]]
    schemes = pl.Series(("", *ALL_SCHEMES), dtype=pl.String).gather(scheme + 1)
    label = pl.concat([pl.Series([""], dtype=pl.String), rings.label])
    empty = pl.Series([""] * index.size, dtype=pl.String)
    return pl.DataFrame(
        {
            "buyer_id": buyer_id.gather(first),
            "scheme": schemes,
            "group": label.gather(np.where(held, g + 1, 0)),
            "bidder_id": firm_id.gather(firm).zip_with(pl.Series(held), empty),
        }
    ).sort("buyer_id")


# ---------------------------------------------------------------------------- helpers


def _days(day: np.datetime64) -> int:
    return int(day.astype("datetime64[D]").astype(np.int64))


def _workday(days: Arr) -> Arr:
    """Saturdays and Sundays moved to the next Monday (day 0, 1970-01-01, was a Thursday)."""
    weekday = (days + 3) % 7
    return days + np.where(weekday >= 5, 7 - weekday, 0)


def _datetimes(us: Arr) -> pl.Series:
    return pl.Series(us.astype("datetime64[us]")).cast(pl.Datetime("us"))


def _choose(
    rng: np.random.Generator, words: tuple[str, ...], n: int, p: tuple[float, ...]
) -> pl.Series:
    return pl.Series(words, dtype=pl.String).gather(rng.choice(len(words), n, p=p))


def _n_pairs(chars: str) -> int:
    return len(chars) * (len(chars) - 1)


def _pairs(chars: str, index: Arr) -> pl.Series:
    """Two different characters of ``chars`` per index in [0, _n_pairs(chars))."""
    pool = pl.Series(list(chars), dtype=pl.String)
    first = index // (len(chars) - 1)
    second = index % (len(chars) - 1)
    second = second + (second >= first)
    return pool.gather(first) + pool.gather(second)


def _person_names(rng: np.random.Generator, n: int) -> pl.Series:
    weights = 1.0 / np.arange(1, len(SURNAMES) + 1) ** 0.8
    surname = pl.Series(list(SURNAMES)).gather(
        rng.choice(len(SURNAMES), n, p=weights / weights.sum())
    )
    given = pl.Series(list(GIVEN_CHARS))
    first = given.gather(rng.integers(0, len(GIVEN_CHARS), n))
    second = given.gather(rng.integers(0, len(GIVEN_CHARS), n))
    two = pl.Series(rng.random(n) < 0.7)
    return surname + first + second.zip_with(two, pl.Series([""] * n, dtype=pl.String))


def _sort_bids(tender: Arr, since: Arr, firm: Arr) -> Arr:
    """Order by tender, time since publication, firm: one int64 sort key when it fits."""
    seconds = since // US_PER_S
    bits = [max(int(x.max()).bit_length(), 1) if x.size else 1 for x in (tender, seconds, firm)]
    if sum(bits) > 62 or (seconds < 0).any():
        return np.lexsort((firm, seconds, tender))
    key = (tender << (bits[1] + bits[2])) | (seconds << bits[2]) | firm
    return np.argsort(key, kind="stable")


def _sorted_unique(keys: Arr) -> Arr:
    """np.unique by sorting: several times faster than its hash path on millions of int64."""
    keys = np.sort(keys)
    out: Arr = keys[np.r_[True, keys[1:] != keys[:-1]]] if keys.size else keys
    return out


def _offset_in_group(group: Arr, size: Arr) -> Arr:
    """Where each item starts when the items of a group are laid end to end, in index order."""
    order = np.argsort(group, kind="stable")
    g, s = group[order], size[order]
    end = np.cumsum(s)
    start = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1] if g.size else np.zeros(0, np.int64)
    base = np.repeat((end - s)[start], np.diff(np.r_[start, g.size]))
    out = np.empty(group.size, dtype=np.int64)
    out[order] = end - s - base
    return out


def _coprime(rng: np.random.Generator, modulus: int) -> int:
    while True:
        a = int(rng.integers(1, min(modulus, 1 << 31)))
        if math.gcd(a, modulus) == 1:
            return a


def _scatter(rng: np.random.Generator, n: int, modulus: int) -> Arr:
    """``n`` distinct random integers in [0, modulus)."""
    return rng.choice(modulus, n, replace=False)


def _grouped(text: Arr, every: int) -> pl.Series:
    """Fixed-width strings cut into groups joined by "-": A1B2C3 -> A1-B2-C3."""
    series = pl.Series(text)
    width = len(str(text[0])) if text.size else 0
    return (
        series.to_frame("s")
        .select(
            pl.concat_str(
                [pl.col("s").str.slice(i, every) for i in range(0, width, every)], separator="-"
            )
        )
        .to_series()
    )


def _digit_matrix(values: Arr, width: int, base: int = 10) -> Arr:
    v = np.asarray(values, dtype=np.uint64)
    powers = np.uint64(base) ** np.arange(width - 1, -1, -1, dtype=np.uint64)
    return ((v[:, None] // powers) % np.uint64(base)).astype(np.int64)


def _digits(values: Arr, width: int, base: int = 10) -> Arr:
    """Non-negative integers as zero-padded strings of ``width`` digits (upper-case hex)."""
    alphabet = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
    chars = np.ascontiguousarray(alphabet[_digit_matrix(values, width, base)])
    return chars.view(f"S{width}").ravel().astype(f"U{width}")


def _round_habit(yuan: Arr, habit: Arr, *, floor: bool = False) -> Arr:
    """Yuan -> cents, rounded to the cent, the yuan, the hundred or the thousand yuan by the
    firm's habit."""
    unit = np.array([1, 100, 10_000, 100_000])[habit]
    cents = yuan * 100 / unit
    cents = np.floor(cents) if floor else np.round(cents)
    out: Arr = (cents * unit).astype(np.int64)
    return out


def _odd_cents(cents: Arr) -> Arr:
    """Cents that do not end in 00: the odd amounts of prepared prices."""
    c = np.round(cents).astype(np.int64)
    return c + np.where(c % 100 == 0, 37, 0)
