"""Firm names taken apart: region, trade name (字号), industry words, legal form, branch.

A Chinese firm name is region + 字号 + industry + legal form: 大冶市 路通 公路工程 有限公司.
Spellings of one firm differ in everything but the 字号: the region is dropped or moved into
brackets, 有限公司 becomes 有限责任公司, full-width characters become half-width. So matching
compares the 字号 strictly and the rest loosely. Latin names are taken apart the same way
(legal forms such as Co., Ltd., GmbH, S.p.A.; industry words such as Engineering). Everything
here is vectorised polars on a column of names.
"""

from __future__ import annotations

import re

import polars as pl

# Legal forms, longest first so that 股份有限公司 is not read as 有限公司 plus 股份.
CN_FORMS = (
    "集团股份有限公司",
    "股份有限公司",
    "有限责任公司",
    "集团有限公司",
    "有限公司",
    "集团公司",
    "股份公司",
    "总公司",
    "公司",
    "合伙企业",
    "普通合伙",
    "有限合伙",
    "个体工商户",
    "经营部",
    "工程处",
    "工程队",
    "集团",
)
BRANCH_MARKERS = ("分公司", "分厂", "项目经理部", "项目部", "办事处")
# Region suffixes of the administrative levels, longest first.
REGION_SUFFIXES = (
    "特别行政区",
    "自治区",
    "自治州",
    "自治县",
    "地区",
    "街道",
    "省",
    "市",
    "州",
    "盟",
    "县",
    "区",
    "旗",
    "镇",
    "乡",
)
# Words that start a firm's industry part: they say what a firm does, not which firm it is.
CN_INDUSTRY = (
    "水利水电", "建筑安装", "土石方", "钢结构", "给排水", "房地产", "混凝土",
    "工程", "建设", "建筑", "建工", "路桥", "交通", "市政", "公路", "道路", "桥梁", "隧道",
    "水利", "水务", "水电", "电力", "园林", "绿化", "装饰", "装修", "安装", "劳务", "机械",
    "设备", "材料", "建材", "沥青", "环境", "环保", "科技", "技术", "实业", "发展", "投资",
    "开发", "置业", "地产", "工贸", "贸易", "商贸", "基础", "岩土", "勘察", "设计", "咨询",
    "监理", "信息", "网络", "电子", "照明", "亮化", "消防", "防水", "管道", "农业", "林业",
    "生态", "城建", "城市", "路政", "养护", "运输", "物流", "服务", "管理", "规划", "测绘",
    "检测", "能源", "石化", "矿业", "冶金", "通信", "智能", "制造", "钢构", "净化",
)  # fmt: skip
LATIN_FORMS = (
    r"s\.?\s?p\.?\s?a\.?",
    r"s\.?\s?r\.?\s?l\.?",
    r"s\.?\s?a\.?\s?s\.?",
    r"l\.?\s?l\.?\s?c\.?",
    r"l\.?\s?l\.?\s?p\.?",
    r"p\.?\s?l\.?\s?c\.?",
    r"co\.?,?\s?ltd\.?",
    r"company\s+limited",
    r"pty\.?\s?ltd\.?",
    r"pte\.?\s?ltd\.?",
    r"sdn\.?\s?bhd\.?",
    r"gmbh",
    r"ltd\.?",
    r"limited",
    r"inc\.?",
    r"incorporated",
    r"corp\.?",
    r"corporation",
    r"company",
    r"co\.?",
    r"ag",
    r"sa",
    r"bv",
    r"nv",
    r"oy",
    r"ab",
    r"kk",
)
LATIN_INDUSTRY = frozenset(
    [
        "engineering",
        "construction",
        "constructions",
        "building",
        "buildings",
        "builders",
        "road",
        "roads",
        "bridge",
        "bridges",
        "highway",
        "highways",
        "traffic",
        "transport",
        "transportation",
        "municipal",
        "water",
        "conservancy",
        "hydraulic",
        "hydropower",
        "electric",
        "electrical",
        "power",
        "installation",
        "decoration",
        "landscape",
        "landscaping",
        "civil",
        "infrastructure",
        "development",
        "developments",
        "investment",
        "industrial",
        "industry",
        "industries",
        "trading",
        "trade",
        "technology",
        "technologies",
        "tech",
        "services",
        "service",
        "materials",
        "material",
        "machinery",
        "equipment",
        "environmental",
        "environment",
        "consulting",
        "consultants",
        "design",
        "survey",
        "surveying",
        "real",
        "estate",
        "property",
        "properties",
        "holdings",
        "holding",
        "international",
        "general",
        "contracting",
        "contractors",
        "contractor",
        "works",
        "public",
        "utility",
        "utilities",
        "railway",
        "tunnel",
        "tunnels",
        "steel",
        "structure",
        "structures",
        "concrete",
        "asphalt",
        "paving",
        "group",
        "and",
        "of",
        "the",
        "enterprise",
        "enterprises",
        "project",
        "projects",
        "management",
        "maintenance",
    ]
)
NAME_LIMIT = 200

_HAN = r"\p{Han}"
_BRACKETS = r"[(\[{【〔](?P<inside>[^()\[\]{}【】〔〕]*)[)\]}】〕]"


def _alternation(words: tuple[str, ...]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def clean(names: pl.Expr) -> pl.Expr:
    """NFKC, no control or format characters, single spaces, lower case, at most 200 chars."""
    return (
        names.str.normalize("NFKC")
        .str.replace_all(r"[\p{Cc}\p{Cf}]", "")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
        .str.to_lowercase()
        .str.slice(0, NAME_LIMIT)
    )


def region_key(token: pl.Expr) -> pl.Expr:
    """A region without its level: 大冶市 -> 大冶, 湖北省 -> 湖北 (kept whole if that leaves
    fewer than two characters)."""
    stripped = token.str.replace(f"({_alternation(REGION_SUFFIXES)})$", "")
    return pl.when(stripped.str.len_chars() >= 2).then(stripped).otherwise(token)


def parse(names: pl.Series) -> pl.DataFrame:
    """One row per name: name, norm, han, branch, parent, regions, trade, industry, core.

    - norm: the cleaned full name (see ``clean``); empty when nothing is left.
    - han: the name is written in Chinese characters.
    - branch / parent: for a branch (…分公司), the branch part and the parent's full name.
    - regions: region keys from the front of the name and from brackets (大冶, 湖北).
    - trade: the distinctive part, the 字号 (路通) or the Latin words that are not legal forms
      or industry words; empty for names such as 大冶市公路工程有限公司 that have none.
    - industry: the industry words (公路工程, engineering).
    - core: trade and industry together, what two spellings of one firm share.
    """
    frame = pl.DataFrame({"name": names.cast(pl.String)}).with_columns(
        clean(pl.col("name")).fill_null("").alias("norm")
    )
    frame = frame.with_columns(pl.col("norm").str.contains(_HAN).alias("han"))
    branch = (
        r"^(?P<parent>.*(?:公司|集团|厂))(?P<branch>[^()]*?)(?:"
        + _alternation(BRANCH_MARKERS)
        + r")$"
    )
    frame = frame.with_columns(
        pl.col("norm").str.extract(branch, 1).alias("parent"),
        pl.col("norm").str.extract(branch, 2).fill_null("").alias("branch"),
    ).with_columns(pl.when(pl.col("parent").is_not_null()).then(pl.col("branch")).alias("branch"))
    body = pl.coalesce(pl.col("parent"), pl.col("norm"))
    frame = frame.with_columns(
        body.str.extract_all(_BRACKETS)
        .list.eval(pl.element().str.slice(1, pl.element().str.len_chars() - 2))
        .alias("_inside"),
        body.str.replace_all(_BRACKETS, " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
        .alias("_rest"),
    ).with_row_index("_i")
    parts = pl.concat(
        [_parse_han(frame.filter(pl.col("han"))), _parse_latin(frame.filter(~pl.col("han")))]
    ).sort("_i")
    bracket_regions = pl.col("_inside").list.eval(
        pl.when(
            pl.element().str.contains(f"^{_HAN}{{2,8}}$") & ~pl.element().is_in(list(CN_FORMS))
        ).then(region_key(pl.element()))
    )
    return parts.select(
        "name",
        "norm",
        "han",
        "branch",
        "parent",
        pl.concat_list("_front", bracket_regions.list.drop_nulls())
        .list.unique()
        .list.sort()
        .alias("regions"),
        "trade",
        "industry",
        pl.concat_str("trade", "industry", separator=" ").str.strip_chars().alias("core"),
    )


def _parse_han(frame: pl.DataFrame) -> pl.DataFrame:
    forms = f"(?:{_alternation(CN_FORMS)})+$"
    # Spaces carry nothing in Chinese names; "大冶 路通" is "大冶路通".
    frame = frame.with_columns(
        pl.col("_rest").str.replace_all(" ", "").str.replace(forms, "").alias("_text"),
        pl.lit([], dtype=pl.List(pl.String)).alias("_front"),
    )
    suffix = f"(?:{_alternation(REGION_SUFFIXES)})"
    for _ in range(3):
        token = pl.col("_text").str.extract(f"^({_HAN}{{1,7}}?{suffix})", 1)
        frame = frame.with_columns(token.alias("_token"))
        # 黄石市政工程: the 市 belongs to 市政, and 黄石 may be a region or a 字号; it is
        # left in the text, to be recognised as a region only if the input names it so
        # elsewhere (see ``bidwatch.entities``).
        municipal = pl.col("_token").str.ends_with("市") & pl.col("_text").str.slice(
            pl.col("_token").str.len_chars()
        ).str.starts_with("政")
        frame = frame.with_columns(
            pl.when(municipal).then(None).otherwise(pl.col("_token")).alias("_token")
        )
        ok = (
            pl.col("_token").is_not_null()
            & (pl.col("_token").str.len_chars() >= 2)
            & (pl.col("_text").str.len_chars() > pl.col("_token").str.len_chars())
        )
        frame = frame.with_columns(
            pl.when(ok)
            .then(pl.concat_list("_front", region_key(pl.col("_token"))))
            .otherwise(pl.col("_front"))
            .alias("_front"),
            pl.when(ok)
            .then(pl.col("_text").str.slice(pl.col("_token").str.len_chars()))
            .otherwise(pl.col("_text"))
            .alias("_text"),
        )
    industry = f"(?:{_alternation(CN_INDUSTRY)})"
    frame = frame.with_columns(
        pl.col("_text").str.extract_groups(f"^(?P<t>.+?)(?P<i>{industry}.*)$").alias("_split"),
        pl.col("_text").str.contains(f"^{industry}").alias("_bare"),
    )
    return frame.with_columns(
        pl.when("_bare")
        .then(pl.lit(""))
        .otherwise(pl.coalesce(pl.col("_split").struct.field("t"), pl.col("_text")))
        .alias("trade"),
        pl.when("_bare")
        .then(pl.col("_text"))
        .otherwise(pl.col("_split").struct.field("i").fill_null(""))
        .alias("industry"),
    ).select(
        "_i", "name", "norm", "han", "branch", "parent", "_inside", "_front", "trade", "industry"
    )


def _parse_latin(frame: pl.DataFrame) -> pl.DataFrame:
    forms = r"(?:^|[\s,.&-])(?:" + "|".join(LATIN_FORMS) + r")(?:$|[\s,.&-])"
    for _ in range(3):
        frame = frame.with_columns(pl.col("_rest").str.replace_all(forms, " "))
    weak = list(LATIN_INDUSTRY)
    frame = frame.with_columns(
        pl.col("_rest")
        .str.replace_all(r"[^\p{L}\p{N}]+", " ")
        .str.strip_chars()
        .str.split(" ")
        .list.eval(pl.element().filter(pl.element() != ""))
        .alias("_words")
    )
    return frame.select(
        "_i",
        "name",
        "norm",
        "han",
        "branch",
        "parent",
        "_inside",
        pl.lit([], dtype=pl.List(pl.String)).alias("_front"),
        pl.col("_words")
        .list.eval(pl.element().filter(~pl.element().is_in(weak)))
        .list.join(" ")
        .alias("trade"),
        pl.col("_words")
        .list.eval(pl.element().filter(pl.element().is_in(weak)))
        .list.join(" ")
        .alias("industry"),
    )
