"""The detector catalogue, generated from the detectors' own docstrings.

Each detector's docstring is its documentation (DESIGN.md section 4); this module renders
it to markdown for ``bidwatch detectors NAME`` and for the checked-in ``detectors/``
folder, which ``bidwatch catalogue --check`` keeps in step with the code.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path
from typing import Any

from bidwatch.detectors import REGISTRY
from bidwatch.detectors._base import DOC_HEADINGS, Detector

_HEADING = re.compile(r"^## (.+)$", re.MULTILINE)


def sections(detector: type[Detector]) -> tuple[str, dict[str, str]]:
    """(summary, {heading: body}) of a detector's docstring."""
    doc = inspect.cleandoc(detector.__doc__ or "")
    parts = _HEADING.split(doc)
    summary = " ".join(parts[0].split())
    found = {parts[i].strip(): parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    return summary, found


def problems(detector: type[Detector]) -> list[str]:
    """What is missing from a detector's documentation; empty when complete."""
    summary, found = sections(detector)
    out = []
    if not summary:
        out.append("no summary line")
    out += [f"missing heading '## {h}'" for h in DOC_HEADINGS if h not in found]
    out += [f"unexpected heading '## {h}'" for h in found if h not in DOC_HEADINGS]
    params = found.get("Parameters", "")
    for field in dataclasses.fields(detector):
        if f"`{field.name}`" not in params:
            out.append(f"parameter `{field.name}` not described under '## Parameters'")
    return out


def _default(field: dataclasses.Field[Any]) -> str:
    if field.default is not dataclasses.MISSING:
        return repr(field.default)
    if field.default_factory is not dataclasses.MISSING:
        return repr(field.default_factory())
    return "required"


def markdown(detector: type[Detector]) -> str:
    summary, found = sections(detector)
    lines = [
        f"# {detector.name}",
        "",
        summary,
        "",
        f"- Subject: {detector.subject}",
        f"- Needs: {', '.join(sorted(detector.requires))}",
        f"- Default weight: {detector.default_weight}",
        f"- Code: `{detector.__module__}.{detector.__qualname__}`",
        "",
    ]
    for heading in DOC_HEADINGS:
        lines += [f"## {heading}", "", found.get(heading, "").strip(), ""]
        if heading == "Parameters":
            fields = dataclasses.fields(detector)
            if fields:
                lines += ["| parameter | default |", "|---|---|"]
                lines += [f"| `{f.name}` | `{_default(f)}` |" for f in fields]
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def index() -> str:
    lines = [
        "# Detector catalogue",
        "",
        "Generated from the detectors' docstrings by `bidwatch catalogue`; do not edit by hand.",
        "",
        "| detector | subject | default weight | what it flags |",
        "|---|---|---|---|",
    ]
    for detector in REGISTRY:
        summary, _ = sections(detector)
        lines.append(
            f"| [{detector.name}]({detector.name}.md) | {detector.subject} | "
            f"{detector.default_weight} | {summary} |"
        )
    return "\n".join(lines) + "\n"


def render() -> dict[str, str]:
    """File name -> content of the whole catalogue."""
    files = {"README.md": index()}
    files.update({f"{d.name}.md": markdown(d) for d in REGISTRY})
    return files


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def check(folder: Path) -> list[str]:
    """Differences between the catalogue on disk and the code; empty when in step."""
    expected = render()
    out = []
    for name, text in expected.items():
        path = folder / name
        if not path.exists():
            out.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            out.append(f"{path}: out of date")
    if folder.exists():
        out += [
            f"{p}: no such detector" for p in sorted(folder.glob("*.md")) if p.name not in expected
        ]
    for detector in REGISTRY:
        out += [f"{detector.name}: {p}" for p in problems(detector)]
    return out
