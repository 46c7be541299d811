"""Canonical tables: every column bidwatch understands, declared once.

A source file's headers are mapped onto these names (built-in aliases below, plus the user's
mapping file); ``normalise`` parses each column by its ``kind``. Nothing else in bidwatch
decides what a column is called or how it is typed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

import polars as pl

Kind = Literal["id", "text", "amount", "signed", "number", "date", "bool", "enum", "unit", "period"]

DTYPES: dict[Kind, pl.DataType] = {
    "id": pl.String(),
    "text": pl.String(),
    "amount": pl.Float64(),
    "signed": pl.Float64(),
    "number": pl.Float64(),
    "date": pl.Datetime("us"),
    "bool": pl.Boolean(),
    "enum": pl.String(),
    "unit": pl.String(),
    "period": pl.String(),
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    meaning: str
    required: bool = False
    aliases: tuple[str, ...] = ()
    values: tuple[str, ...] = ()

    @property
    def dtype(self) -> pl.DataType:
        return DTYPES[self.kind]


@dataclass(frozen=True)
class Table:
    name: str
    meaning: str
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)


AWARD_METHODS = ("lowest_price", "average_bid", "scoring")
BID_STATUSES = ("valid", "disqualified", "withdrawn")
PROCEDURES = ("open", "invited", "negotiated", "competitive_consultation", "single_source")

# Shared traces of the bid preparation. Bidding Law implementing regulations (招标投标法实施条例)
# art. 40 deems bids collusive when they share these.
TRACE_COLUMNS = (
    "ip_address",
    "mac_address",
    "machine_code",
    "document_author",
    "document_hash",
    "deposit_account",
    "phone",
    "email",
    "address",
    "legal_representative",
    "project_manager",
    "agent",
)

_TRACE_META: dict[str, tuple[str, tuple[str, ...]]] = {
    "ip_address": ("IP address the bid was uploaded from", ("ip", "IP地址", "投标IP", "上传IP")),
    "mac_address": ("MAC address of the machine that uploaded the bid", ("mac", "MAC地址")),
    "machine_code": (
        "hardware id recorded in the bid file (文件制作机器码)",
        ("机器码", "硬件特征码", "文件制作机器码", "硬盘序列号", "CPU序列号"),
    ),
    "document_author": ("author recorded in the bid document", ("author", "文件作者", "编制人")),
    "document_hash": (
        "hash of the bid document",
        ("file_hash", "文件哈希", "文件MD5", "文件校验码"),
    ),
    "deposit_account": (
        "account the bid deposit was paid from",
        ("保证金账户", "保证金账号", "保证金缴纳账户", "缴款账号", "缴款账户"),
    ),
    "phone": ("contact phone given in the bid", ("telephone", "tel", "电话", "联系电话", "手机")),
    "email": ("contact email given in the bid", ("e-mail", "邮箱", "电子邮箱")),
    "address": ("address given in the bid", ("地址", "联系地址", "办公地址")),
    "legal_representative": (
        "legal representative named in the bid",
        ("法定代表人", "法人", "法人代表"),
    ),
    "project_manager": ("project manager named in the bid", ("项目经理", "项目负责人")),
    "agent": ("authorised agent who submitted the bid", ("委托代理人", "授权代表", "代理人")),
}

TENDERS = Table(
    "tenders",
    "One row per tender (or lot): what was bought, by whom, under which rule.",
    (
        Column(
            "tender_id",
            "id",
            "identifier of the tender or lot; bids refer to it",
            required=True,
            aliases=(
                "tender",
                "tender_no",
                "tender number",
                "project_id",
                "project_code",
                "ocid",
                "项目编号",
                "招标编号",
                "标段编号",
                "标段(包)编号",
                "项目代码",
                "招标项目编号",
                "采购项目编号",
                "标段号",
            ),
        ),
        Column(
            "title",
            "text",
            "title of the tender",
            aliases=("name", "项目名称", "标段名称", "工程名称", "采购项目名称"),
        ),
        Column(
            "buyer_id",
            "id",
            "identifier of the buying body",
            aliases=("招标人编号", "采购人编号", "招标人代码"),
        ),
        Column(
            "buyer_name",
            "text",
            "name of the buying body",
            aliases=(
                "buyer",
                "procuring_entity",
                "招标人",
                "采购人",
                "建设单位",
                "招标单位",
                "采购单位",
            ),
        ),
        Column(
            "region",
            "text",
            "region, county or township of the works",
            aliases=("地区", "区域", "行政区划", "所在地区", "项目地点"),
        ),
        Column(
            "category",
            "text",
            "kind of works (road, bridge, building, water, ...)",
            aliases=("项目类型", "工程类别", "项目类别", "行业类别", "工程类型"),
        ),
        Column(
            "procedure",
            "enum",
            "procurement procedure",
            aliases=("procurement_method", "招标方式", "采购方式"),
            values=PROCEDURES,
        ),
        Column(
            "award_method",
            "enum",
            "award rule: lowest_price, average_bid or scoring",
            aliases=("award_criteria", "评标办法", "评标方法", "评审方法", "评标方式", "定标方法"),
            values=AWARD_METHODS,
        ),
        Column(
            "estimate",
            "amount",
            "ceiling or pre-tender estimate",
            aliases=(
                "pte",
                "pre-tender estimate",
                "pre-tender estimate (pte)",
                "budget",
                "ceiling",
                "reserve_price",
                "招标控制价",
                "最高限价",
                "最高投标限价",
                "控制价",
                "预算金额",
                "拦标价",
                "预算价",
            ),
        ),
        Column("currency", "text", "currency code of estimate", aliases=("币种",)),
        Column(
            "published_at",
            "date",
            "date the tender was published",
            aliases=("publication_date", "发布时间", "公告时间", "发布日期"),
        ),
        Column(
            "bid_deadline",
            "date",
            "deadline for bids (bid opening)",
            aliases=("deadline", "投标截止时间", "开标时间", "递交截止时间"),
        ),
        Column(
            "awarded_at",
            "date",
            "date of the award",
            aliases=("award_date", "中标时间", "定标时间", "中标日期"),
        ),
        Column("lot_id", "id", "lot of a multi-lot tender", aliases=("lot",)),
    ),
)

BIDS = Table(
    "bids",
    "One row per bid: who bid how much in which tender.",
    (
        Column(
            "tender_id",
            "id",
            "the tender the bid was made in",
            required=True,
            aliases=TENDERS.column("tender_id").aliases,
        ),
        Column(
            "bidder_id",
            "id",
            "identifier of the bidder as the source gives it",
            aliases=(
                "firm_id",
                "company_id",
                "supplier_id",
                "competitors",
                "competitor",
                "投标人编号",
                "投标人代码",
                "投标单位编号",
                "供应商编号",
            ),
        ),
        Column(
            "bidder_name",
            "text",
            "name of the bidder as written in the source",
            aliases=(
                "bidder",
                "company",
                "company_name",
                "firm",
                "firm_name",
                "supplier",
                "supplier_name",
                "name competitors",
                "投标人",
                "投标单位",
                "投标人名称",
                "投标单位名称",
                "供应商",
                "供应商名称",
                "企业名称",
            ),
        ),
        Column(
            "credit_code",
            "id",
            "bidder's unified social credit code (统一社会信用代码)",
            aliases=("uscc", "统一社会信用代码", "信用代码", "社会信用代码"),
        ),
        Column(
            "amount",
            "amount",
            "bid price",
            required=True,
            aliases=(
                "bid",
                "bid_value",
                "bid_amount",
                "bid_price",
                "price",
                "value",
                "投标报价",
                "报价",
                "投标价",
                "投标总价",
                "投标金额",
                "报价金额",
                "投标总报价",
            ),
        ),
        Column("currency", "text", "currency code of the bid", aliases=("币种",)),
        Column(
            "status",
            "enum",
            "valid, disqualified or withdrawn",
            aliases=("bid_status", "状态", "投标状态", "是否有效", "评审结果"),
            values=BID_STATUSES,
        ),
        Column(
            "is_winner",
            "bool",
            "the bid won the tender",
            aliases=("winner", "won", "awarded", "中标", "是否中标"),
        ),
        Column(
            "submitted_at",
            "date",
            "time the bid was submitted",
            aliases=("submission_date", "bid_date", "投标时间", "递交时间", "提交时间", "上传时间"),
        ),
        *(
            Column(name, "text", meaning, aliases=aliases)
            for name, (meaning, aliases) in _TRACE_META.items()
        ),
    ),
)

FIRMS = Table(
    "firms",
    "Company registry: one row per firm.",
    (
        Column(
            "firm_id",
            "id",
            "identifier of the firm; bids' bidder_id refer to it",
            required=True,
            aliases=("id", "company_id", "bidder_id", "企业编号", "单位编号"),
        ),
        Column(
            "name",
            "text",
            "registered name",
            aliases=("firm_name", "company_name", "企业名称", "单位名称", "名称"),
        ),
        Column(
            "credit_code",
            "id",
            "unified social credit code",
            aliases=BIDS.column("credit_code").aliases,
        ),
        Column(
            "legal_representative",
            "text",
            "legal representative",
            aliases=("法定代表人", "法人", "法人代表"),
        ),
        Column("shareholders", "text", "shareholders, ';'-separated", aliases=("股东", "股东信息")),
        Column("address", "text", "registered address", aliases=("注册地址", "地址", "住所")),
        Column("phone", "text", "registered phone", aliases=("电话", "联系电话")),
        Column(
            "founded_on",
            "date",
            "date of incorporation",
            aliases=("established", "成立日期", "成立时间"),
        ),
        Column(
            "registered_capital", "amount", "registered capital", aliases=("注册资本", "注册资金")
        ),
    ),
)

_CONTRACTOR_ID = ("承包人编号", "施工单位编号", "中标人编号", "supplier_id", "contractor")
_CONTRACTOR_NAME = (
    "contractor_name",
    "supplier",
    "supplier_name",
    "承包人",
    "施工单位",
    "中标人",
    "中标单位",
    "承包单位",
    "中标供应商",
)

CONTRACTS = Table(
    "contracts",
    "One row per awarded contract: what was signed, what was finally paid, when it was built.",
    (
        Column(
            "tender_id",
            "id",
            "the tender the contract was awarded in",
            required=True,
            aliases=TENDERS.column("tender_id").aliases,
        ),
        Column("contractor_id", "id", "identifier of the contractor", aliases=_CONTRACTOR_ID),
        Column(
            "contractor_name",
            "text",
            "name of the contractor, resolved into firms like bidders",
            aliases=_CONTRACTOR_NAME,
        ),
        Column(
            "contract_amount",
            "amount",
            "amount of the signed contract",
            aliases=("contract_value", "合同金额", "合同价", "签约合同价", "中标金额", "中标价"),
        ),
        Column(
            "final_amount",
            "amount",
            "settled amount (结算价) once the works are done",
            aliases=(
                "settlement",
                "settlement_amount",
                "结算价",
                "结算金额",
                "决算金额",
                "审定金额",
            ),
        ),
        Column(
            "signed_at",
            "date",
            "date the contract was signed",
            aliases=("contract_date", "签订日期", "合同签订日期", "签约日期"),
        ),
        Column(
            "planned_completion",
            "date",
            "completion date in the contract",
            aliases=("planned_end", "计划竣工日期", "合同竣工日期", "约定竣工日期"),
        ),
        Column(
            "actual_completion",
            "date",
            "date the works were completed (accepted)",
            aliases=("actual_end", "completed_at", "实际竣工日期", "竣工日期", "竣工验收日期"),
        ),
    ),
)

CHANGE_ORDERS = Table(
    "change_orders",
    "One row per change order (变更, 签证) of a contract: amount added (or taken off) and why.",
    (
        Column(
            "tender_id",
            "id",
            "the tender whose contract the change order amends",
            required=True,
            aliases=TENDERS.column("tender_id").aliases,
        ),
        Column(
            "amount",
            "signed",
            "amount the change adds to the contract (negative when it takes some off)",
            aliases=("change_amount", "变更金额", "签证金额", "增减金额", "变更费用"),
        ),
        Column(
            "reason",
            "text",
            "reason given for the change",
            aliases=("rationale", "变更原因", "变更理由", "变更事由", "原因"),
        ),
        Column(
            "approved_at",
            "date",
            "date the change was approved",
            aliases=("date", "change_date", "批准日期", "变更日期", "审批日期", "签证日期"),
        ),
    ),
)

ITEMS = Table(
    "items",
    "Bill of quantities (工程量清单) of each bid: one row per priced item.",
    (
        Column(
            "tender_id",
            "id",
            "the tender the bid was made in",
            required=True,
            aliases=TENDERS.column("tender_id").aliases,
        ),
        Column(
            "bidder_id",
            "id",
            "identifier of the bidder, as in bids",
            aliases=BIDS.column("bidder_id").aliases,
        ),
        Column(
            "bidder_name",
            "text",
            "name of the bidder, as in bids",
            aliases=BIDS.column("bidder_name").aliases,
        ),
        Column(
            "item_code", "id", "code of the item", aliases=("code", "项目编码", "清单编码", "编码")
        ),
        Column(
            "material",
            "text",
            "material the item is priced for (asphalt, cement, steel, aggregate, concrete, ...)",
            aliases=("材料", "材料名称", "主材", "材料名称及规格"),
        ),
        Column(
            "description",
            "text",
            "description of the item",
            aliases=("item", "item_name", "项目名称", "清单项目名称", "项目特征", "项目特征描述"),
        ),
        Column("unit", "unit", "unit of measure of the quantity", aliases=("计量单位", "单位")),
        Column(
            "quantity",
            "number",
            "quantity of the item, in its unit",
            aliases=("qty", "工程量", "数量", "工程数量"),
        ),
        Column(
            "unit_price",
            "amount",
            "price per unit of the item",
            aliases=("rate", "price", "综合单价", "单价", "材料单价"),
        ),
    ),
)

REFERENCE_PRICES = Table(
    "reference_prices",
    "The region's published material prices (信息价), one row per material, region and month.",
    (
        Column(
            "material",
            "text",
            "material, named as in the bills of quantities",
            required=True,
            aliases=ITEMS.column("material").aliases,
        ),
        Column(
            "region",
            "text",
            "region the price is published for (empty: the whole input)",
            aliases=TENDERS.column("region").aliases,
        ),
        Column(
            "period",
            "period",
            "month the price holds for, YYYY-MM",
            aliases=("month", "期", "期数", "发布期", "月份", "价格期"),
        ),
        Column("unit", "unit", "unit the price is per", aliases=("计量单位", "单位")),
        Column(
            "unit_price",
            "amount",
            "reference price per unit",
            aliases=("price", "信息价", "参考价", "指导价", "除税价", "含税价", "单价"),
        ),
    ),
)

INSPECTION_RESULTS = ("pass", "fail")
INSPECTIONS = Table(
    "inspections",
    "Quality inspections of the works (质量检测): one row per measured item.",
    (
        Column(
            "tender_id",
            "id",
            "the tender whose works were inspected",
            required=True,
            aliases=TENDERS.column("tender_id").aliases,
        ),
        Column("contractor_id", "id", "identifier of the contractor", aliases=_CONTRACTOR_ID),
        Column("contractor_name", "text", "name of the contractor", aliases=_CONTRACTOR_NAME),
        Column(
            "inspected_at",
            "date",
            "date of the inspection",
            aliases=("date", "检测日期", "检验日期", "抽检日期"),
        ),
        Column(
            "item",
            "text",
            "what was measured: pavement thickness, compaction, concrete strength, rebar, ...",
            aliases=("检测项目", "检验项目", "抽检项目", "检测内容"),
        ),
        Column(
            "measured",
            "signed",
            "measured value, in unit",
            aliases=("value", "实测值", "检测值", "测定值", "实测"),
        ),
        Column(
            "required",
            "signed",
            "value the specification requires, in unit",
            aliases=("spec", "design_value", "设计值", "规定值", "标准值", "要求值"),
        ),
        Column("unit", "unit", "unit of measured and required", aliases=("计量单位", "单位")),
        Column(
            "limit",
            "enum",
            "min when measured must reach required (thickness, strength), max when it must "
            "stay under it (deflection, roughness); empty: from the item",
            aliases=("限值类型", "direction"),
            values=("min", "max"),
        ),
        Column(
            "result",
            "enum",
            "pass or fail",
            aliases=("检测结果", "检验结论", "结论", "判定", "是否合格"),
            values=INSPECTION_RESULTS,
        ),
    ),
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (TENDERS, BIDS, FIRMS, CONTRACTS, CHANGE_ORDERS, ITEMS, REFERENCE_PRICES, INSPECTIONS)
}
# Tables of what happens after the award; each is optional.
AFTER_AWARD = ("contracts", "change_orders", "items", "reference_prices", "inspections")

# Headers carry units in brackets: "投标报价(万元)". The unit scales every amount in the column.
UNIT_SCALES: dict[str, float] = {
    "元": 1.0,
    "yuan": 1.0,
    "rmb": 1.0,
    "cny": 1.0,
    "千元": 1e3,
    "万元": 1e4,
    "万": 1e4,
    "百万元": 1e6,
    "百万": 1e6,
    "亿元": 1e8,
    "亿": 1e8,
}


def buyer() -> pl.Expr:
    """A tender's buyer, as every buyer-level test and ranking names it: its buyer_id, else
    its buyer_name."""
    return pl.coalesce("buyer_id", "buyer_name")


def material_key(material: pl.Expr) -> pl.Expr:
    """A material's name as items and reference prices are matched on: NFKC, case-folded,
    without spaces and brackets ("C30 混凝土" and "c30混凝土" are one material)."""
    return (
        material.str.normalize("NFKC")
        .str.to_lowercase()
        .str.replace_all(r"[\s()\[\]（）【】]+", "")
    )


_HEADER_UNIT = re.compile(r"^(?P<base>.*?)[(\[{](?P<unit>[^()\[\]{}]*)[)\]}]\s*$")
_HEADER_NOISE = re.compile(r"[\s_\-.:/]+")


def header_key(header: str) -> str:
    """Comparable form of a header: NFKC, case-folded, without spaces and separators."""
    text = unicodedata.normalize("NFKC", header).strip().casefold()
    return _HEADER_NOISE.sub("", text)


def split_unit(header: str) -> tuple[str, float | None]:
    """Split a trailing unit bracket off a header: "投标报价（万元）" -> ("投标报价", 10000.0).

    Brackets that are not a known unit stay part of the header.
    """
    text = unicodedata.normalize("NFKC", header).strip()
    match = _HEADER_UNIT.match(text)
    if match:
        unit = match.group("unit").strip().casefold()
        if unit in UNIT_SCALES:
            return match.group("base").strip(), UNIT_SCALES[unit]
    return text, None


def alias_index(table: Table) -> dict[str, str]:
    """header_key -> canonical column for a table's names and built-in aliases."""
    index: dict[str, str] = {}
    for col in table.columns:
        for alias in (col.name, *col.aliases):
            key = header_key(alias)
            if index.setdefault(key, col.name) != col.name:
                raise AssertionError(f"alias {alias!r} claimed by two columns of {table.name}")
    return index
