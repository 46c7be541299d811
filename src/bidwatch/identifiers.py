"""Identifiers and traces: unified social credit codes, and trace values written many ways."""

from __future__ import annotations

import re

import polars as pl

# Values that stand for "nothing": never a trace shared by two bidders.
PLACEHOLDERS = ("", "-", "--", "/", "0", "none", "null", "n/a", "na", "unknown", "无", "未知", "空")


def trace_key(trace: str, value: pl.Expr) -> pl.Expr:
    """Comparable form of a trace value: the same value written differently becomes equal.

    Phones keep their digits (a leading 86 or 0086 of a mobile number dropped), MAC addresses
    their hex digits; names and addresses lose spaces and punctuation; all are NFKC and lower
    case.
    """
    value = value.str.normalize("NFKC").str.strip_chars().str.to_lowercase()
    if trace == "phone":
        digits = value.str.replace_all(r"\D", "")
        return digits.str.replace(r"^(0086|86)(1\d{10})$", "${2}")
    if trace == "mac_address":
        return value.str.replace_all(r"[^0-9a-f]", "")
    if trace in ("address", "legal_representative", "project_manager", "agent", "document_author"):
        return value.str.replace_all(r"[\s\p{P}]", "")
    return value.str.replace_all(r"\s", "")


_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC = re.compile(r"^[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}$")


def credit_code_valid(code: str | None) -> bool:
    """Whether an 18-character unified social credit code (GB 32100-2015) is well formed and
    its last character is the right check character."""
    if code is None:
        return False
    code = code.strip().upper()
    if not _USCC.match(code):
        return False
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(code[:17], _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31] == code[17]
