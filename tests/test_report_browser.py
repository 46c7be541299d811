"""report.html in a real browser: headless Chromium opens the demo's report in English and in
Chinese, offline, and checks that the page raises no error, makes no request, shows the
top-ranked tender and renders its Chinese text with a font that has the characters.

Needs Debian's chromium and a Chinese font (.ci/run installs both when it can) and the
playwright package (the test extra); the module skips with the reason when any is absent.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest

import bidwatch

from .conftest import FIXTURES

INSTALL = "apt-get install chromium fonts-wqy-zenhei (see .ci/run)"

try:
    from playwright.sync_api import (
        Browser,
        CDPSession,
        ConsoleMessage,
        Page,
        expect,
        sync_playwright,
    )
except ImportError:
    pytest.skip(
        "playwright is not installed: python -m pip install -e '.[test]'", allow_module_level=True
    )

CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip(f"Chromium is not installed: {INSTALL}", allow_module_level=True)

# Headless as root on a closed network. Without the background-networking flags Chromium
# itself phones home, which is not the page's doing. Playwright gives every launch a fresh
# temporary profile, so --user-data-dir is not passed (it refuses it in launch()).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LANGS = ("en", "zh")
DEMO = FIXTURES / "demo"
# Part of the demo keeps the module quick: the whole demo's page (some 4 MB, 500 rows a
# table) takes about 30 s to scan, load, check and capture in both languages on two cores,
# these tenders about 20 s; the checks are the same.
DEMO_TENDERS = 60
# CJK Unified Ideographs, Extension A and the compatibility block: the characters of a
# Chinese label or name that only a Chinese font can draw.
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Elements whose Chinese text is checked per tag name: enough to cover headings, table
# cells, links and labels without asking for the fonts of thousands of cells.
FONT_SAMPLE_PER_TAG = 20


@dataclass
class Visit:
    """A report opened in the browser, with everything the page did since it was opened."""

    lang: str
    report: Path
    page: Page
    cdp: CDPSession
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo's first DEMO_TENDERS tenders (with their bids, contracts ... and every firm
    and reference price) scanned once and written once per language: the output folder of
    each."""
    tables = {path.stem: pl.read_csv(path, infer_schema=False) for path in DEMO.glob("*.csv")}
    keep = tables["tenders"].get_column("tender_id").head(DEMO_TENDERS).implode()
    result = bidwatch.scan(
        bidwatch.load(
            **{
                name: table.filter(pl.col("tender_id").is_in(keep))
                if "tender_id" in table.columns
                else table
                for name, table in tables.items()
            }
        )
    )
    outs = {}
    for lang in LANGS:
        out = tmp_path_factory.mktemp(f"scan-{lang}")
        result.write(out, lang=lang)
        outs[lang] = out
    return outs


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module", params=LANGS)
def visit(
    request: pytest.FixtureRequest, scanned: dict[str, Path], browser: Browser
) -> Iterator[Visit]:
    """The report in one language, opened offline, loaded and scrolled to its end."""
    lang: str = request.param
    report = scanned[lang] / "report.html"
    # Offline, so that a request the page should not make fails here instead of leaving
    # the machine; it is still seen and recorded.
    context = browser.new_context(offline=True)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    seen = Visit(lang=lang, report=report, page=page, cdp=cdp)
    # The DevTools Protocol sees data: URIs too, which Playwright's request events leave
    # out; the context's events see workers and other frames. Both are recorded.
    cdp.on("Network.requestWillBeSent", lambda event: seen.requests.append(event["request"]["url"]))
    cdp.send("Network.enable")
    context.on("request", lambda req: seen.requests.append(req.url))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location
            seen.console_errors.append(
                f"{message.text} (at {where.get('url')}:{where.get('lineNumber')})"
            )

    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.page_errors.append(str(error)))
    page.goto(report.as_uri(), wait_until="load")
    # Lazily loaded content asks for its resources when it comes into view.
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    page.wait_for_load_state("networkidle")
    page.evaluate("window.scrollTo(0, 0)")
    yield seen
    context.close()


def cjk_font_families() -> set[str]:
    """Every name (English and native) of the installed fonts that fontconfig says cover
    Chinese; Chromium on Linux picks its fonts through fontconfig, by these names."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return set()
    listing = subprocess.run(
        [fc_list, ":lang=zh", "family"], capture_output=True, text=True, check=True
    ).stdout
    return {name.strip() for line in listing.splitlines() for name in line.split(",")}


# Marks the elements drawn on the page whose own text has Chinese characters, at most
# `perTag` of each tag name, with a data attribute the DevTools Protocol can select (it
# finds them by selector without sending the whole document); returns their own text.
MARK_CHINESE_TEXT = """([attribute, perTag]) => {
    const han = /[\\u3400-\\u4dbf\\u4e00-\\u9fff\\uf900-\\ufaff]/;
    const counts = {};
    const texts = [];
    for (const element of document.body.querySelectorAll("*")) {
        const tag = element.localName;
        if ((counts[tag] || 0) >= perTag || element.getClientRects().length === 0) continue;
        const own = Array.from(element.childNodes)
            .filter((node) => node.nodeType === Node.TEXT_NODE)
            .map((node) => node.data)
            .join("");
        if (!han.test(own)) continue;
        counts[tag] = (counts[tag] || 0) + 1;
        element.setAttribute(attribute, "");
        texts.push(own);
    }
    return texts;
}"""
PROBE = "data-font-probe"


def tofu(page: Page, cdp: CDPSession, cjk_families: set[str]) -> tuple[int, list[str]]:
    """How many elements with Chinese text were checked, and those drawn partly without a
    Chinese font.

    Chromium reports, per element, the platform fonts its text was drawn with and how many
    glyphs each drew. A character no installed font has is drawn as a box from the
    element's first font, which is counted for that font; so every Chinese character has
    been drawn for real only if the fonts that cover Chinese drew at least that many glyphs.
    Of the elements drawn, FONT_SAMPLE_PER_TAG of each tag name are checked.
    """
    texts: list[str] = page.evaluate(MARK_CHINESE_TEXT, [PROBE, FONT_SAMPLE_PER_TAG])
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        nodes = cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": f"[{PROBE}]"})
    finally:
        page.evaluate(
            f"document.querySelectorAll('[{PROBE}]').forEach(e => e.removeAttribute('{PROBE}'))"
        )
    assert len(nodes["nodeIds"]) == len(texts)
    bad = []
    for node, own in zip(nodes["nodeIds"], texts, strict=True):
        text = " ".join(own.split())
        han = len(HAN.findall(text))
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
        drawn = sum(font["glyphCount"] for font in fonts if font["familyName"] in cjk_families)
        if drawn < han:
            tag = cdp.send("DOM.describeNode", {"nodeId": node})["node"]["localName"]
            used = ", ".join(f"{f['familyName']} ({f['glyphCount']} glyphs)" for f in fonts)
            bad.append(
                f"<{tag}> {text[:60]!r}: {han} Chinese characters, {drawn} drawn by a "
                f"Chinese font; fonts used: {used or 'none'}"
            )
    return len(texts), bad


def test_screenshot_of_the_whole_page(visit: Visit, tmp_path: Path) -> None:
    shot = tmp_path / f"report-{visit.lang}.png"
    visit.page.screenshot(path=shot, full_page=True)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n", f"{shot} is not a PNG"
    size = struct.unpack(">II", png[16:24])
    page_size = visit.page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    assert size == tuple(page_size), f"{shot}: {size} pixels, the page is {page_size}"
    assert len(png) > 20_000, f"{shot}: {len(png)} bytes, an empty page?"


def test_page_fits_the_window_width(visit: Visit) -> None:
    """Nothing pushes the page wider than the window (a wide table may scroll in a box of
    its own): an analyst should not have to scroll the whole page sideways."""
    # Each element that lets its content stick out past the window's edge, with how far.
    overflowing = visit.page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            const reach = new Map();
            for (const element of document.body.querySelectorAll("*")) {
                const right = element.getBoundingClientRect().right + window.scrollX;
                const box = element.parentElement;
                if (right > width && box.getBoundingClientRect().right + window.scrollX <= width) {
                    reach.set(box, Math.max(reach.get(box) || 0, Math.round(right)));
                }
            }
            return Array.from(reach, ([box, right]) =>
                `<${box.localName} class="${box.className}" id="${box.id}">: ${right}px`);
        }"""
    )
    width = visit.page.evaluate("document.documentElement.clientWidth")
    assert not overflowing, f"content wider than the {width}px window: {overflowing[:10]}"


def test_top_ranked_tender_is_shown(visit: Visit) -> None:
    tenders = pl.read_csv(visit.report.parent / "tenders.csv", infer_schema=False)
    top = tenders.filter(pl.col("rank") == "1").get_column("tender_id").to_list()
    assert len(top) == 1, f"tenders.csv: {len(top)} tenders of rank 1"
    expect(visit.page.get_by_text(top[0]).first).to_be_visible()


def test_labels_are_in_the_report_language(visit: Visit) -> None:
    html_lang = visit.page.evaluate("document.documentElement.lang")
    headings = visit.page.locator("h1, h2").all_inner_texts()
    assert headings, "the page has no h1 or h2 heading"
    if visit.lang == "zh":
        assert html_lang.startswith("zh"), f'<html lang="{html_lang}">, expected zh-CN'
        english = [heading for heading in headings if not HAN.search(heading)]
        assert not english, f"headings without Chinese in the zh report: {english}"
    else:
        assert html_lang.startswith("en"), f'<html lang="{html_lang}">, expected en'
        chinese = [heading for heading in headings if HAN.search(heading)]
        assert not chinese, f"headings in Chinese in the en report: {chinese}"


def test_chinese_text_is_drawn_with_a_chinese_font(visit: Visit) -> None:
    cjk_families = cjk_font_families()
    if not cjk_families:
        pytest.skip(f"no Chinese font installed (fc-list :lang=zh lists none): {INSTALL}")
    # Evidence folded away in <details> is part of what an analyst reads.
    visit.page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    checked, bad = tofu(visit.page, visit.cdp, cjk_families)
    # The demo's tender titles and firm names are Chinese in either language.
    assert checked > 0, "no element with Chinese text on the page"
    assert not bad, "Chinese characters drawn as boxes (tofu):\n" + "\n".join(bad)


def test_no_console_error_and_no_page_error(visit: Visit) -> None:
    assert not visit.console_errors, f"console errors: {visit.console_errors}"
    assert not visit.page_errors, f"uncaught errors: {visit.page_errors}"


def test_no_request_but_the_page_itself(visit: Visit) -> None:
    """Everything the page needs is in the file: no CDN, no font, no image, not even a data:
    URI (it would show as a request here); whatever the page did since it opened, the
    whole-page screenshot included, is recorded."""
    others = sorted(url[:120] for url in set(visit.requests) - {visit.report.as_uri()})
    assert not others, f"requests besides the page itself: {others}"
    assert visit.report.as_uri() in visit.requests, "the page's own load was not recorded"


def test_lists_sort_and_filter_and_open_a_case(scanned: dict[str, Path], browser: Browser) -> None:
    """The page's script at work, in a page of its own so the other checks see it as opened:
    a click on a column sorts, a filter hides the rows outside it and counts those left, a
    click on a tender opens its case."""
    report = scanned["en"] / "report.html"
    tenders = pl.read_csv(report.parent / "tenders.csv")
    context = browser.new_context(offline=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(report.as_uri(), wait_until="load")
    rows = page.locator("#tender-table tbody tr")
    assert rows.count() == tenders.height

    risk = page.locator("#tender-table thead th", has_text="risk").first
    risk.click()
    assert risk.get_attribute("aria-sort") == "descending"
    risk.click()
    assert risk.get_attribute("aria-sort") == "ascending"
    shown = [
        float(v)
        for v in page.eval_on_selector_all(
            "#tender-table tbody tr td:nth-child(3)", "cells => cells.map(c => c.dataset.v)"
        )
    ]
    assert shown == sorted(shown), "ascending by risk"

    region = tenders.get_column("region").drop_nulls().mode().sort()[0]
    page.select_option('select[data-filter-for="tender-table"][data-key="region"]', region)
    visible = page.eval_on_selector_all(
        "#tender-table tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.region)"
    )
    assert visible, f"no tender shown for region {region}"
    assert set(visible) == {region}
    assert len(visible) == tenders.filter(pl.col("region") == region).height
    count = page.locator('[data-count-for="tender-table"]').inner_text()
    assert count == str(len(visible))
    page.select_option('select[data-filter-for="tender-table"][data-key="region"]', "")
    assert page.locator("#tender-table tbody tr:not([hidden])").count() == tenders.height

    top = tenders.row(0, named=True)["tender_id"]
    case = page.locator(f'[id="t-{top}"]')
    expect(case).to_be_hidden()
    page.locator(f'#tender-table a[href="#t-{top}"]').click()
    expect(case).to_be_visible()
    expect(case.locator("svg").first).to_be_visible()
    assert not errors, errors
    context.close()
