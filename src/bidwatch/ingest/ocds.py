"""OCDS JSON and JSON Lines: tenders, bids, tenderers, contracts and their amendments from
Open Contracting data.

Accepted files
--------------

- a release (``{"ocid": ..., "tender": ..., "bids": ...}``), a release package
  (``{"releases": [...]}``), a record (``{"compiledRelease": ...}``) or a record package
  (``{"records": [...]}``), as one JSON document;
- JSON Lines (``.jsonl`` / ``.ndjson``): one release, record or package per line; blank lines
  are skipped, a line that is not JSON stops the read with its line number.

Records are read through their ``compiledRelease`` (a record without one is an error: its
releases would have to be merged first). When several releases share an ``ocid`` only the
newest is read (latest ``date``, then the later one in the file) and the source notes say how
many were set aside. Releases are not merged, so incremental releases (a tender release,
then an award release that repeats nothing) lose what the newest one leaves out: give
compiled releases or records for such data. The history of a contract is the exception
(see Contracts and change orders): its amendments and its values before and after them are
looked up in every release of the ocid in the file, in the releases a record embeds and in
its versioned release.

Bids are read from ``bids.details[]`` (OCDS 1.1 bids extension, and ProZorro) or from a
``bids`` array (1.0-era publishers). Every bid object becomes one bids row, also when its
values are bad: ``bidwatch.normalise`` rejects such rows with a reason and the location below.

Tenders and lots
----------------

A tender is split into lots when ``tender.lots`` is given and at least one bid names a lot
(``relatedLots``, or ProZorro's ``relatedLot``), or when there are no bids at all. Each lot
is then a tender of its own, ``tender_id = "{ocid}/{lot id}"``; a bid naming several lots
gives one bids row per lot. In a tender with a single lot a bid that names none belongs to
that lot; in one with several lots such a bid stays with the whole tender
(``tender_id = ocid``), which then also gets a tenders row. Otherwise ``tender_id = ocid``.

=============  ============================================================================
tenders        OCDS
=============  ============================================================================
tender_id      ``ocid``, or ``{ocid}/{lot.id}``
title          ``tender.title`` (a lot: ``lot.title``, else ``tender.title``)
buyer_id       id of the buyer: release ``buyer``, else the party with role ``buyer``,
               else the party with role ``procuringEntity``, else
               ``tender.procuringEntity``; its ``id``, else
               ``identifier.scheme-identifier.id``
buyer_name     that organisation's ``name`` (or its party's), else ``identifier.legalName``
region         the buyer's (party's) ``address.region``, else ``address.locality``
category       ``tender.mainProcurementCategory``
procedure      ``tender.procurementMethod``
award_method   ``tender.awardCriteria``
estimate       ``tender.value.amount`` (a lot: ``lot.value.amount``)
currency       ``tender.value.currency`` (a lot: ``lot.value.currency``, else the tender's)
published_at   ``tender.tenderPeriod.startDate``, else ``tender.datePublished``, else
               the release ``date``
bid_deadline   ``tender.tenderPeriod.endDate``
awarded_at     earliest ``date`` of the awards that count (see is_winner) for the tender
               or lot; unsuccessful and cancelled awards are not awards of the tender
lot_id         ``lot.id``
=============  ============================================================================

=============  ============================================================================
bids           OCDS (one bid object of ``bids.details[]`` or ``bids[]``)
=============  ============================================================================
tender_id      as above, from the bid's ``relatedLots`` / ``relatedLot``
bidder_id      the tenderer's ``id``, else ``identifier.scheme-identifier.id``
bidder_name    the tenderer's ``name``, else its party's, else ``identifier.legalName``
credit_code    the tenderer's (or its party's) ``identifier.id`` or
               ``additionalIdentifiers[].id`` when the scheme is ``CN-USCC``, or another
               ``CN-`` scheme and the id has the 18-character USCC shape
amount         ``value.amount``
currency       ``value.currency``
status         ``status`` as written (invited/pending/valid/disqualified/withdrawn, or
               ProZorro's active/invalid/unsuccessful/deleted); normalise maps it
is_winner      true when every tenderer of the bid is among the ``suppliers`` of one award
               whose ``status`` is not ``cancelled`` or ``unsuccessful`` and, with lots,
               whose ``relatedLots`` / ``lotID`` include the bid's lot (an award naming no
               lot covers every lot); false otherwise when the release has awards; null
               when it has none
submitted_at   ``date``
phone, email   ``contactPoint.telephone`` / ``contactPoint.email`` of the tenderer's party
               (matched by ``id``), else of the tenderer object embedded in the bid
address        that party's ``address`` as one string: street, locality, region, postal
               code, country
=============  ============================================================================

A bid by several tenderers (a consortium) is one row: ``bidder_id`` joins their ids with
``+`` (null when one of them has none), ``bidder_name`` joins their names with `` + ``,
``credit_code`` is left empty and the traces are the first tenderer's.

=============  ============================================================================
firms          OCDS (each distinct organisation, first mention first)
=============  ============================================================================
firm_id        same rule as bidder_id
name           ``name``, else ``identifier.legalName``
credit_code    same rule as for bids
address        ``address`` as one string
phone          ``contactPoint.telephone``
=============  ============================================================================

Firms are the parties with role ``tenderer`` or ``supplier``, and the organisations embedded
in ``bids[].tenderers``, ``awards[].suppliers``, ``contracts[].suppliers`` and
``tender.tenderers`` (1.0-style files have no ``parties``). An organisation with neither
``id`` nor ``identifier`` cannot be a firm row; the notes count them (their bids keep the
name).

Contracts and change orders
---------------------------

Every object of ``contracts[]`` is one contracts row, except a contract with status
``cancelled`` (cancelled before it was signed, in the OCDS contractStatus codelist), which is
not read, nor its amendments; the notes count both. The contracts table holds one contract
per tender: the loader keeps the first contract of a tender and rejects any other as a
duplicate, with its location; the amendments of such another contract are not read (they
would be taken for the first one's), and the notes count them.

==================  =========================================================================
contracts           OCDS (one object of ``contracts[]``)
==================  =========================================================================
tender_id           the tender or lot of the award the contract's ``awardID`` names, by the
                    rule of bids: ``{ocid}/{lot}`` when the tender is split into lots and the
                    award names one lot (or the tender has a single lot), else ``ocid``. The
                    contract of an award for several lots cannot be split between them: it
                    stays with the whole tender (``ocid``), and the notes say so.
contractor_id       the award's ``suppliers``, named as bidders are: ``id``, else
contractor_name     ``identifier.scheme-identifier.id``; ``name``, else its party's, else
                    ``identifier.legalName``; a consortium joined with ``+`` and `` + ``. A
                    contractor thus resolves to the firm of its winning bid. When the award
                    names no supplier, or is not in the release: the contract's own
                    ``suppliers`` (ProZorro gives them), else empty (counted).
contract_amount     ``value.amount`` as signed. For a contract with amendments, its value
                    before the first one: in the release that amendment amends
                    (``amendsReleaseID``), else 1.0's ``changes[].former_value`` of
                    ``value.amount``, else in the last release dated before the amendment.
                    When the file gives none, the value as last published, which may include
                    the amendments (counted). The change orders carry the amendments:
                    contract_amount plus their amounts is the value as amended.
final_amount        ``implementation.finalValue.amount`` (contract completion extension) when
                    given. Else, for a contract whose ``status`` is ``terminated`` (or 1.2's
                    ``terminatedSuccessfully``), the sum of its
                    ``implementation.transactions[]`` (``value.amount``; 1.0: ``amount``):
                    the amount paid as published, which is the final amount only once the
                    contract has come to a close. The payments of a contract still active
                    are what was paid so far: final_amount stays empty (counted). Empty as
                    well when a transaction has no numeric amount, or they mix currencies,
                    or sum to zero or less (counted).
signed_at           ``dateSigned``
planned_completion  ``period.endDate`` as last published, so with the extensions of time that
                    amendments granted (change orders carry amounts, not time)
actual_completion   ``implementation.endDate`` (contract completion extension), which is given
                    only once implementation is complete. Never ``period.endDate``: that is
                    the end agreed in the contract, often left as it was when the works
                    finish, and reading it as the completion would make every closed
                    contract finish on time. Empty for a ``pending`` contract.
==================  =========================================================================

A contract ``terminatedEarly`` (OCDS 1.2) was not completed: neither its final_amount nor
its actual_completion is read. Amounts are kept as published, in the contract's currency,
never converted (bids keep theirs beside their amounts; contracts have no currency column):
the notes count contracts valued in another currency than their tender.

The change orders of a contract read are its ``amendments[]`` and its deprecated
``amendment``, in the newest release and in the earlier releases of its ocid (a 1.0 release
carries only its latest amendment), each read once (same ``id``, or same date, rationale and
description); and each release tagged ``contractAmendment`` whose contract gives no
amendment object: the release is the amendment.

=============  ==============================================================================
change_orders  OCDS (one amendment)
=============  ==============================================================================
tender_id      the contract's tender_id
approved_at    ``date`` (a release tagged contractAmendment: the release ``date``)
reason         ``rationale``, else ``description``
amount         the change in the contract's value, only where the file gives it, from the
               first of: ``amendsAmount.amount`` (an extension Paraguay's DNCP publishes, the
               amount the amendment adds); the contract's ``value.amount`` in the release
               after the amendment (``releaseID``) less that in the release before
               (``amendsReleaseID``); 1.0's ``changes[]`` former value of ``value.amount``,
               to the former value of the contract's next such amendment, else to its
               value; for a release tagged contractAmendment, its value less the value in
               the release before. Otherwise empty: an amendment that does not say what it
               did to the value is not taken as zero. Values before and after in different
               currencies give no amount.
=============  ==============================================================================

Each row's location (``RawTable.locations``) reads like
``releases[3] ocid=ocds-xyz bids.details[1]`` or ``line 7 ocid=ocds-xyz bids.details[0]``.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from bidwatch.errors import InputError
from bidwatch.ingest import ROW, RawTable
from bidwatch.schema import TABLES

Obj = dict[str, Any]

JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
RELEASE_KEYS = frozenset(("ocid", "tender", "bids", "awards", "tag", "parties", "buyer"))
EXPECTED = (
    'expected OCDS: a release (an object with "ocid" and "tender" / "bids" / "awards"), '
    'a release package ({"releases": [...]}), a record ({"compiledRelease": {...}}), '
    'a record package ({"records": [...]}), or a .jsonl file with one of those per line'
)
NOT_AWARDED = frozenset(("cancelled", "unsuccessful"))
OUT_TABLES = ("tenders", "bids", "firms", "contracts", "change_orders")
# Contract statuses (case-folded) of a contract that has come to a close: OCDS 1.1
# "terminated", and the 1.2 "terminatedSuccessfully". "terminatedEarly" (1.2) is not a
# completion.
CLOSED = frozenset(("terminated", "terminatedsuccessfully"))
ENDED_EARLY = "terminatedearly"
AMOUNT = ("value", "amount")
CURRENCY = ("value", "currency")
FIRM_ROLES = frozenset(("tenderer", "supplier"))
CREDIT_SCHEMES = frozenset(("CN-USCC",))
# GB 32100-2015: 2 registration chars, 6-digit region code, 9-char org code, check char.
USCC_SHAPE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")
_OLDEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Release:
    """One release to read, and where it sits in the file."""

    data: Obj
    at: str  # "releases[3]", "line 7", "records[2]", or "" for a lone release
    inner: str = ""  # "compiledRelease." inside a record
    record: Obj | None = None  # the record a compiled release comes from

    @property
    def ocid(self) -> str | None:
        return text_of(self.data.get("ocid"))

    def where(self, path: str) -> str:
        ocid = self.ocid
        parts = (self.at, f"ocid={ocid}" if ocid else "", f"{self.inner}{path}")
        return " ".join(p for p in parts if p)


# ------------------------------------------------------------------------------ reading


def read(path: Path) -> list[RawTable]:
    """Read one OCDS file into canonical raw tables: tenders, bids, firms, contracts and
    change_orders (those present)."""
    if not path.exists():
        raise InputError(f"{path}: file not found. Check the path given for --ocds.")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give an OCDS .json or .jsonl file for --ocds.")
    text = _text(path)
    if path.name.lower().endswith(JSON_LINES_SUFFIXES):
        releases = list(_json_lines(path, text))
    else:
        releases = list(_document(path, text))
    kept, superseded = newest(releases)
    out = _Tables(path, _History(releases))
    for release in kept:
        out.add_release(release)
    common = []
    if superseded:
        common.append(
            f"{superseded} release(s) set aside: a newer release of the same ocid is in the "
            "file (by date, then position); releases are not merged, so give compiled "
            "releases or records if the releases are incremental"
        )
    return out.tables(common)


def _text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({exc.strerror}).") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text (bad byte at offset {exc.start}); OCDS JSON is UTF-8. "
            "Re-save the file as UTF-8."
        ) from None


def _document(path: Path, text: str) -> Iterator[Release]:
    if not text.strip():
        raise InputError(f"{path}: the file is empty; {EXPECTED}.")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = (
            " It holds several JSON values one after another: if it is JSON Lines (one "
            "release per line), name it .jsonl."
            if exc.msg == "Extra data"
            else ""
        )
        raise InputError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            f"{EXPECTED}.{hint}"
        ) from None
    yield from _unpack(path, obj, "")


def _json_lines(path: Path, text: str) -> Iterator[Release]:
    # Not splitlines(): U+2028 and friends are legal inside JSON strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path}: line {number} is not valid JSON ({exc.msg} at column {exc.colno}); "
                "each line of a JSON Lines file must be one complete JSON object (a release, "
                "record or package). Fix or remove that line."
            ) from None
        yield from _unpack(path, obj, f"line {number}")


def _unpack(path: Path, obj: Any, at: str) -> Iterator[Release]:
    """The releases of a release, record or package found at ``at``."""
    if isinstance(obj, dict):
        if "records" in obj:
            for i, record in enumerate(_array(path, obj["records"], _join(at, "records"))):
                yield _compiled(path, record, _join(at, f"records[{i}]"))
            return
        if (
            "compiledRelease" in obj
            or "versionedRelease" in obj
            or ("ocid" in obj and "releases" in obj)
        ):
            yield _compiled(path, obj, at)
            return
        if "releases" in obj:
            for i, release in enumerate(_array(path, obj["releases"], _join(at, "releases"))):
                where = _join(at, f"releases[{i}]")
                if not isinstance(release, dict):
                    raise InputError(
                        f"{path}: {where} is {_kind(release)}, not a release object; {EXPECTED}."
                    )
                yield Release(release, where)
            return
        if RELEASE_KEYS & obj.keys():
            yield Release(obj, at)
            return
    raise InputError(f"{path}{' ' + at if at else ''}: found {_found(obj)}; {EXPECTED}.")


def _compiled(path: Path, record: Any, at: str) -> Release:
    label = f"the record at {at}" if at else "the record"
    if not isinstance(record, dict):
        raise InputError(f"{path}: {label} is {_kind(record)}, not a record object; {EXPECTED}.")
    compiled = record.get("compiledRelease")
    if not isinstance(compiled, dict):
        ocid = text_of(record.get("ocid"))
        raise InputError(
            f"{path}: {label}{f' (ocid={ocid})' if ocid else ''} has no compiledRelease; "
            "bidwatch reads each record's compiled release. Ask the publisher for records "
            "with compiledRelease, or compile the record's releases (e.g. `ocdskit compile`) "
            "and pass the output."
        )
    return Release(compiled, at, "compiledRelease.", record)


def _array(path: Path, value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InputError(f"{path}: {where} is {_kind(value)}, expected an array; {EXPECTED}.")
    return value


def _join(at: str, step: str) -> str:
    return f"{at} {step}" if at else step


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, int | float):
        return "a number"
    return "null"


def _found(obj: Any) -> str:
    if isinstance(obj, dict):
        if not obj:
            return "an empty JSON object"
        keys = sorted(obj)
        shown = ", ".join(repr(k) for k in keys[:12]) + (", ..." if len(keys) > 12 else "")
        return f"a JSON object with keys {shown}"
    if isinstance(obj, list):
        return (
            f"a JSON array of {len(obj)} item(s) (wrap releases as "
            '{"releases": [...]}, records as {"records": [...]})'
        )
    return f"{_kind(obj)} at the top level"


def newest(releases: list[Release]) -> tuple[list[Release], int]:
    """The newest release of each ocid (by date, then position), in file order."""
    best: dict[str, tuple[bool, datetime, int]] = {}
    keys: list[tuple[bool, datetime, int]] = []
    for position, release in enumerate(releases):
        instant = instant_of(release.data.get("date"))
        key = (instant is not None, instant or _OLDEST, position)
        keys.append(key)
        ocid = release.ocid
        if ocid is not None and (ocid not in best or key > best[ocid]):
            best[ocid] = key
    kept = [
        r for r, key in zip(releases, keys, strict=True) if r.ocid is None or best[r.ocid] == key
    ]
    return kept, len(releases) - len(kept)


# ---------------------------------------------------------------------------- values


def text_of(value: Any) -> str | None:
    """An identifier or name as text; None when absent or blank."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return str(value)
    return None


def instant_of(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def obj(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def objects(value: Any) -> list[Obj]:
    if isinstance(value, dict):
        return [value]
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def first(*values: Any) -> Any:
    for value in values:
        if value is not None and not (isinstance(value, str) and not value.strip()):
            return value
    return None


def identifier_key(org: Obj) -> str | None:
    ident = obj(org.get("identifier"))
    number = text_of(ident.get("id"))
    if number is None:
        return None
    scheme = text_of(ident.get("scheme"))
    return f"{scheme}-{number}" if scheme else number


def org_id(org: Obj) -> str | None:
    """An organisation's id: its ``id``, else ``identifier.scheme-identifier.id``."""
    return text_of(org.get("id")) or identifier_key(org)


def address_text(address: Any) -> str | None:
    parts: list[str] = []
    for key in ("streetAddress", "locality", "region", "postalCode", "countryName"):
        part = text_of(obj(address).get(key))
        if part and part not in parts:
            parts.append(part)
    return ", ".join(parts) or None


def credit_code(*orgs: Obj) -> str | None:
    for org in orgs:
        for ident in [obj(org.get("identifier")), *objects(org.get("additionalIdentifiers"))]:
            scheme = (text_of(ident.get("scheme")) or "").upper()
            number = text_of(ident.get("id"))
            if number is None:
                continue
            if scheme in CREDIT_SCHEMES or (
                scheme.startswith("CN-") and USCC_SHAPE.match(number.upper())
            ):
                return number
    return None


def lot_ids(item: Obj, many: str, one: str) -> list[str]:
    """Lot ids named by a bid or award: the OCDS array, or ProZorro's single id."""
    found: list[str] = []
    listed = item.get(many)
    for value in listed if isinstance(listed, list) else [listed]:
        lot = text_of(value)
        if lot is not None and lot not in found:
            found.append(lot)
    single = text_of(item.get(one))
    if single is not None and single not in found:
        found.append(single)
    return found


def earliest(dates: list[Any]) -> Any:
    present = [d for d in dates if first(d) is not None]
    readable = [(instant_of(d), d) for d in present]
    timed = [(t, d) for t, d in readable if t is not None]
    if timed:
        return min(timed, key=lambda pair: pair[0])[1]
    # An unreadable date is passed on so that normalise names it, rather than dropped.
    return present[0] if present else None


def number(value: Any) -> float | None:
    """A JSON number as a float; None for anything else (text is never guessed at)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def value_parts(value: Any) -> tuple[Any, str | None]:
    """(amount, currency) of an OCDS Value object; a bare value is its own amount."""
    if isinstance(value, dict):
        return value.get("amount"), text_of(value.get("currency"))
    return value, None


def dig(node: Any, path: tuple[str, ...]) -> Any:
    for step in path:
        node = obj(node).get(step)
    return node


def former_value(amendment: Obj) -> tuple[Any, str | None] | None:
    """The contract value before an OCDS 1.0 amendment, from its ``changes[]``."""
    for change in objects(amendment.get("changes")):
        prop = (text_of(change.get("property")) or "").replace("/", ".").strip(".")
        if prop == "value.amount":
            return change.get("former_value"), None
        if prop == "value":
            return value_parts(change.get("former_value"))
    return None


def paid(transactions: list[Obj], currency: str | None) -> tuple[float | None, str | None]:
    """Sum of the transactions' values (``value``, or 1.0's ``amount``), or why there is none."""
    amounts: list[float] = []
    seen = {currency} if currency else set()
    for transaction in transactions:
        raw = transaction.get("value")
        amount, paid_in = value_parts(raw if raw is not None else transaction.get("amount"))
        value = number(amount)
        if value is None:
            return None, "not_number"
        if paid_in:
            seen.add(paid_in)
        amounts.append(value)
    if len(seen) > 1:
        return None, "currency"
    total = round(math.fsum(amounts), 6)  # float noise off, nothing rounded that was given
    return (total, None) if total > 0 else (None, "not_positive")


def _difference(
    before: tuple[Any, str | None], after: tuple[Any, str | None], how: str
) -> tuple[float | None, str]:
    b, f = number(before[0]), number(after[0])
    if b is None or f is None:
        return None, "none"
    if before[1] and after[1] and before[1] != after[1]:
        return None, "currency"
    return round(f - b, 6), how


def amendment_keys(amendment: Obj) -> tuple[str | None, str]:
    """(id key, content key): the same amendment repeated by several releases, or given both
    in ``amendments`` and the deprecated ``amendment``, is read once."""
    ident = text_of(amendment.get("id"))
    content = json.dumps(
        [amendment.get(k) for k in ("date", "rationale", "description")],
        ensure_ascii=False,
        default=str,
    )
    return (f"id:{ident}" if ident else None), f"at:{content}"


# ------------------------------------------------------------------------ one release


@dataclass
class _Parties:
    by_id: dict[str, Obj]
    by_identifier: dict[str, Obj]
    listed: list[Obj]

    @classmethod
    def of(cls, release: Obj) -> _Parties:
        listed = objects(release.get("parties"))
        by_id: dict[str, Obj] = {}
        by_identifier: dict[str, Obj] = {}
        for party in listed:
            pid = text_of(party.get("id"))
            if pid is not None:
                by_id.setdefault(pid, party)
            key = identifier_key(party)
            if key is not None:
                by_identifier.setdefault(key, party)
        return cls(by_id, by_identifier, listed)

    def of_org(self, org: Obj) -> Obj:
        """The party an organisation reference points to; {} when none."""
        pid = org_id(org)
        if pid is not None and pid in self.by_id:
            return self.by_id[pid]
        key = identifier_key(org)
        return self.by_identifier.get(key, {}) if key is not None else {}

    def with_role(self, role: str) -> Obj:
        for party in self.listed:
            roles = party.get("roles")
            if isinstance(roles, list) and role in (text_of(r) for r in roles):
                return party
        return {}


def org_name(org: Obj, party: Obj) -> str | None:
    return text_of(
        first(
            org.get("name"),
            party.get("name"),
            obj(org.get("identifier")).get("legalName"),
            obj(party.get("identifier")).get("legalName"),
        )
    )


def match_keys(org: Obj, party: Obj) -> set[str]:
    """Keys under which a tenderer and an award supplier are the same organisation."""
    keys = {k for k in (org_id(org), identifier_key(org), identifier_key(party)) if k}
    if not keys:
        name = org_name(org, party)
        if name:
            keys.add(f"name:{name}")
    return keys


@dataclass(frozen=True)
class _Version:
    """One release of a contracting process, kept for the history of its contracts."""

    release: Release
    order: tuple[bool, datetime, int, int]  # as newest(): dated, date, position in the file
    compiled: bool

    def contracts(self, contract_id: str) -> list[tuple[int, Obj]]:
        listed = self.release.data.get("contracts")
        return [
            (k, c)
            for k, c in enumerate(listed if isinstance(listed, list) else [])
            if isinstance(c, dict) and text_of(c.get("id")) == contract_id
        ]


class _History:
    """Every release of each ocid in the file (set aside or not, and the releases embedded in
    records), and records' versioned releases: where the value of a contract before and after
    an amendment is found."""

    def __init__(self, releases: list[Release]) -> None:
        self.by_ocid: dict[str, list[_Version]] = {}
        self.versioned: dict[str, list[Obj]] = {}
        self.dates: dict[tuple[str, str], datetime] = {}  # read from versioned releases ...
        self.dated: set[str] = set()  # ... of these ocids, when first needed
        for position, release in enumerate(releases):
            ocid = release.ocid
            if ocid is None:
                continue
            self._add(ocid, release, position, 0, compiled=bool(release.inner))
            record = release.record or {}
            embedded = record.get("releases")
            for i, data in enumerate(embedded if isinstance(embedded, list) else []):
                # Linked releases ({url, date, tag}) carry no data.
                if isinstance(data, dict) and ("id" in data or "ocid" in data):
                    own = Release(data, _join(release.at, f"releases[{i}]"))
                    self._add(own.ocid or ocid, own, position, i + 1, compiled=False)
            versioned = record.get("versionedRelease")
            if isinstance(versioned, dict):
                self.versioned.setdefault(ocid, []).append(versioned)
        for versions in self.by_ocid.values():
            versions.sort(key=lambda v: v.order, reverse=True)

    def _add(self, ocid: str, release: Release, position: int, sub: int, compiled: bool) -> None:
        instant = instant_of(release.data.get("date"))
        order = (instant is not None, instant or _OLDEST, position, sub)
        self.by_ocid.setdefault(ocid, []).append(_Version(release, order, compiled))

    def _release_dates(self, ocid: str, node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                self._release_dates(ocid, item)
        elif isinstance(node, dict):
            rid, instant = text_of(node.get("releaseID")), instant_of(node.get("releaseDate"))
            if rid is not None and instant is not None:
                self.dates.setdefault((ocid, rid), instant)
            for value in node.values():
                if isinstance(value, dict | list):
                    self._release_dates(ocid, value)

    def versions(self, ocid: str | None) -> list[_Version]:
        """Newest first."""
        return self.by_ocid.get(ocid, []) if ocid else []

    def at_release(
        self, ocid: str, release_id: str, contract_id: str, path: tuple[str, ...]
    ) -> Any:
        """A contract field as the release ``release_id`` gave it."""
        for version in sorted(self.versions(ocid), key=lambda v: v.compiled):
            if text_of(version.release.data.get("id")) == release_id:
                for _, contract in version.contracts(contract_id):
                    if (value := dig(contract, path)) is not None:
                        return value
        if ocid not in self.dated and ocid in self.versioned:
            self.dated.add(ocid)
            self._release_dates(ocid, self.versioned[ocid])
        when = self.dates.get((ocid, release_id))
        for entries in self._versioned(ocid, contract_id, path):
            exact = [e for e in entries if text_of(e.get("releaseID")) == release_id]
            if exact:
                return exact[-1].get("value")
            if when is not None:
                value = _latest(entries, lambda t: t <= when)
                if value is not None:
                    return value
        return None

    def before(self, ocid: str, contract_id: str, instant: datetime, path: tuple[str, ...]) -> Any:
        """A contract field as the last release dated before ``instant`` gave it."""
        for version in self.versions(ocid):
            dated = instant_of(version.release.data.get("date"))
            if version.compiled or dated is None or dated >= instant:
                continue
            for _, contract in version.contracts(contract_id):
                if (value := dig(contract, path)) is not None:
                    return value
        for entries in self._versioned(ocid, contract_id, path):
            value = _latest(entries, lambda t: t < instant)
            if value is not None:
                return value
        return None

    def _versioned(self, ocid: str, contract_id: str, path: tuple[str, ...]) -> Iterator[list[Obj]]:
        for versioned in self.versioned.get(ocid, []):
            for contract in objects(versioned.get("contracts")):
                if text_of(contract.get("id")) == contract_id:
                    yield objects(dig(contract, path))


def _latest(entries: list[Obj], keep: Callable[[datetime], bool]) -> Any:
    """The value of the latest versioned entry whose release date passes ``keep``."""
    dated = [(instant_of(e.get("releaseDate")), e) for e in entries]
    kept = [(t, e) for t, e in dated if t is not None and keep(t)]
    return max(kept, key=lambda pair: pair[0])[1].get("value") if kept else None


@dataclass(frozen=True)
class _Change:
    """One amendment of a contract, or a release tagged contractAmendment that gives none."""

    amendment: Obj
    where: str
    before: Obj | None = None  # a release-level amendment: the contract in the release before
    after: Obj | None = None  # ... and in the amending release
    release_level: bool = False


@dataclass
class _Award:
    lots: set[str]
    suppliers: list[set[str]]
    date: Any


@dataclass(frozen=True)
class _Context:
    """What every row of one release needs: its parties and the awards that count."""

    release: Release
    parties: _Parties
    tender: Obj
    awards: list[_Award]  # not cancelled or unsuccessful
    has_awards: bool  # any award at all, whatever its status

    @classmethod
    def of(cls, release: Release) -> _Context:
        data = release.data
        parties = _Parties.of(data)
        listed = objects(data.get("awards"))
        awards = [
            _Award(
                set(lot_ids(a, "relatedLots", "lotID")),
                [match_keys(s, parties.of_org(s)) for s in objects(a.get("suppliers"))],
                a.get("date"),
            )
            for a in listed
            if (text_of(a.get("status")) or "").casefold() not in NOT_AWARDED
        ]
        return cls(release, parties, obj(data.get("tender")), awards, bool(listed))


@dataclass
class _Tables:
    """Rows of the five tables, gathered release by release."""

    path: Path
    history: _History
    rows: dict[str, list[Obj]] = field(default_factory=lambda: {t: [] for t in OUT_TABLES})
    where: dict[str, list[str]] = field(default_factory=lambda: {t: [] for t in OUT_TABLES})
    firm_at: dict[str, int] = field(default_factory=dict)
    unnamed_firms: set[str] = field(default_factory=set)
    multi_lot_bids: int = 0
    multi_lot_rows: int = 0
    consortium_bids: int = 0
    only_lot_bids: int = 0
    whole_tender_bids: int = 0
    # After the award: what was counted, the first place it was seen, details (currencies).
    counts: Counter[str] = field(default_factory=Counter)
    contracted: set[str] = field(default_factory=set)  # tenders with a contract row
    first_at: dict[str, str] = field(default_factory=dict)
    details: dict[str, set[str]] = field(default_factory=dict)

    def add_release(self, release: Release) -> None:
        ctx = _Context.of(release)
        lots = objects(ctx.tender.get("lots"))
        bids = self._bid_objects(release)
        lot_mode = bool(lots) and (
            not bids or any(lot_ids(b, "relatedLots", "relatedLot") for b, _ in bids)
        )
        only_lot = text_of(lots[0].get("id")) if lot_mode and len(lots) == 1 else None
        whole_tender = False
        for bid, at in bids:
            named = lot_ids(bid, "relatedLots", "relatedLot") if lot_mode else []
            if lot_mode and not named:
                if only_lot is not None:
                    named = [only_lot]
                    self.only_lot_bids += 1
                else:
                    whole_tender = True
                    self.whole_tender_bids += 1
            if len(named) > 1:
                self.multi_lot_bids += 1
                self.multi_lot_rows += len(named)
            lots_of_bid: list[str | None] = list(named) or [None]
            for lot in lots_of_bid:
                where = release.where(at if len(named) < 2 else f"{at} lot={lot}")
                self._add("bids", self._bid_row(ctx, bid, lot), where)
        if ctx.tender:
            self._add_tenders(ctx, lots if lot_mode else [], whole_tender)
        self._add_contracts(ctx, lots, lot_mode)
        self._add_firms(ctx, bids)

    def _bid_objects(self, release: Release) -> list[tuple[Obj, str]]:
        section = release.data.get("bids")
        if section is None:
            return []
        items: list[Any]
        if isinstance(section, list):
            items, base = section, "bids"
        elif isinstance(section, dict):
            details, base = section.get("details"), "bids.details"
            if details is None:
                return []
            if not isinstance(details, list):
                raise InputError(
                    f"{self.path}: {release.where(base)} is {_kind(details)}; OCDS expects an "
                    "array of bid objects there."
                )
            items = details
        else:
            raise InputError(
                f"{self.path}: {release.where('bids')} is {_kind(section)}; OCDS expects an "
                'object with "details": [bid, ...] (or a 1.0-style array of bids).'
            )
        out: list[tuple[Obj, str]] = []
        for i, bid in enumerate(items):
            if not isinstance(bid, dict):
                raise InputError(
                    f"{self.path}: {release.where(f'{base}[{i}]')} is {_kind(bid)}, not a bid "
                    "object."
                )
            out.append((bid, f"{base}[{i}]"))
        return out

    def _bid_row(self, ctx: _Context, bid: Obj, lot: str | None) -> Obj:
        members = [(t, ctx.parties.of_org(t)) for t in objects(bid.get("tenderers"))]
        ids = [org_id(t) for t, _ in members]
        names = [n for n in (org_name(t, p) for t, p in members) if n]
        if len(members) > 1:
            self.consortium_bids += 1
        lead, lead_party = members[0] if members else ({}, {})
        contact = {**obj(lead.get("contactPoint")), **obj(lead_party.get("contactPoint"))}
        value = bid.get("value")
        amount, currency = (
            (value.get("amount"), value.get("currency"))
            if isinstance(value, dict)
            else (value, None)
        )
        return {
            "tender_id": _tender_id(ctx.release.ocid, lot),
            "bidder_id": "+".join(i for i in ids if i) if ids and all(ids) else None,
            "bidder_name": " + ".join(names) or None,
            "credit_code": credit_code(lead_party, lead) if len(members) == 1 else None,
            "amount": amount,
            "currency": currency,
            "status": bid.get("status"),
            "is_winner": _won(members, lot, ctx.awards) if ctx.has_awards else None,
            "submitted_at": bid.get("date"),
            "phone": first(contact.get("telephone")),
            "email": first(contact.get("email")),
            "address": address_text(lead_party.get("address")) or address_text(lead.get("address")),
        }

    def _add_tenders(self, ctx: _Context, lots: list[Obj], whole_tender: bool) -> None:
        data, tender, parties = ctx.release.data, ctx.tender, ctx.parties
        buyer = next(
            (
                org
                for org in (
                    obj(data.get("buyer")),
                    parties.with_role("buyer"),
                    parties.with_role("procuringEntity"),
                    obj(tender.get("procuringEntity")),
                )
                if org
            ),
            {},
        )
        buyer_party = parties.of_org(buyer) if buyer else {}
        address = obj(buyer_party.get("address")) or obj(buyer.get("address"))
        period = obj(tender.get("tenderPeriod"))
        value = obj(tender.get("value"))
        common = {
            "buyer_id": org_id(buyer),
            "buyer_name": org_name(buyer, buyer_party),
            "region": first(address.get("region"), address.get("locality")),
            "category": tender.get("mainProcurementCategory"),
            "procedure": tender.get("procurementMethod"),
            "award_method": tender.get("awardCriteria"),
            "published_at": first(
                period.get("startDate"), tender.get("datePublished"), data.get("date")
            ),
            "bid_deadline": period.get("endDate"),
        }
        ocid = ctx.release.ocid
        if not lots or whole_tender:
            row = {
                "tender_id": ocid,
                "title": tender.get("title"),
                "estimate": value.get("amount"),
                "currency": value.get("currency"),
                "awarded_at": earliest([a.date for a in ctx.awards]),
                **common,
            }
            self._add("tenders", row, ctx.release.where("tender"))
        for i, lot in enumerate(lots):
            lot_id = text_of(lot.get("id"))
            lot_value = obj(lot.get("value"))
            row = {
                "tender_id": _tender_id(ocid, lot_id) if lot_id else None,
                "title": first(lot.get("title"), tender.get("title")),
                "estimate": lot_value.get("amount"),
                "currency": first(lot_value.get("currency"), value.get("currency")),
                "awarded_at": earliest(
                    [a.date for a in ctx.awards if not a.lots or lot_id in a.lots]
                ),
                "lot_id": lot_id,
                **common,
            }
            self._add("tenders", row, ctx.release.where(f"tender.lots[{i}]"))

    # -------------------------------------------------------------- after the award

    def _count(self, what: str, where: str, n: int = 1, detail: str | None = None) -> None:
        self.counts[what] += n
        self.first_at.setdefault(what, where)
        if detail is not None:
            self.details.setdefault(what, set()).add(detail)

    def _add_contracts(self, ctx: _Context, lots: list[Obj], lot_mode: bool) -> None:
        release = ctx.release
        section = release.data.get("contracts")
        if section is None:
            return
        if not isinstance(section, list):
            self._count("contracts_not_array", release.where("contracts"))
            return
        awards: dict[str, Obj] = {}
        for listed in objects(release.data.get("awards")):
            listed_id = text_of(listed.get("id"))
            if listed_id is not None:
                awards.setdefault(listed_id, listed)
        tender_currency = text_of(obj(ctx.tender.get("value")).get("currency"))
        lot_currency = {
            text_of(lot.get("id")): text_of(obj(lot.get("value")).get("currency"))
            or tender_currency
            for lot in lots
        }
        only_lot = text_of(lots[0].get("id")) if lot_mode and len(lots) == 1 else None
        for k, contract in enumerate(section):
            where = release.where(f"contracts[{k}]")
            if not isinstance(contract, dict):
                self._count("contract_not_object", where)
                continue
            status = (text_of(contract.get("status")) or "").casefold()
            if status == "cancelled":
                self._count("contract_cancelled", where)
                dropped = len(objects(contract.get("amendments"))) + bool(
                    obj(contract.get("amendment"))
                )
                self.counts["contract_cancelled_amendments"] += dropped
                continue
            award_id = text_of(contract.get("awardID"))
            award = awards.get(award_id) if award_id is not None else None
            if award is None:
                self._count("contract_no_award", where)
            lot: str | None = None
            if lot_mode:
                named = lot_ids(award, "relatedLots", "lotID") if award else []
                if len(named) == 1:
                    lot = named[0]
                elif not named and only_lot is not None:
                    lot = only_lot
                elif named:
                    self._count("contract_several_lots", where)
                else:
                    self._count("contract_no_lot", where)
            amount, currency = value_parts(contract.get("value"))
            expected = lot_currency.get(lot, tender_currency) if lot else tender_currency
            if currency and expected and currency != expected:
                self._count("contract_currency", where, detail=f"{currency} in a {expected} tender")
            tender_id = _tender_id(release.ocid, lot)
            changes = self._changes(ctx, k, contract)
            if tender_id is not None and tender_id in self.contracted:
                # The loader keeps a tender's first contract (this row is rejected unless
                # that one is): the change orders of this one would be read as the first's.
                # Without them, its value is the value as last published.
                if changes:
                    self._count("amendments_of_repeat", changes[0].where, n=len(changes))
                changes = []
            elif tender_id is not None:
                self.contracted.add(tender_id)
            signed = amount
            if changes:
                before = self._value_before(release.ocid, contract, changes)
                if before is not None:
                    signed = before
                    self._count("signed_before_amendments", where)
                else:
                    self._count("signed_as_published", where)
            final_amount, completed = self._closing(contract, status, currency, where)
            row = {
                "tender_id": tender_id,
                **self._contractor(ctx, award, contract, where),
                "contract_amount": signed,
                "final_amount": final_amount,
                "signed_at": contract.get("dateSigned"),
                "planned_completion": obj(contract.get("period")).get("endDate"),
                "actual_completion": completed,
            }
            self._add("contracts", row, where)
            amounts = self._change_amounts(release.ocid, contract, changes, currency)
            for change, (change_amount, how) in zip(changes, amounts, strict=True):
                self._count(f"change_{how}", change.where)
                a = change.amendment
                order = {
                    "tender_id": tender_id,
                    "amount": change_amount,
                    "reason": first(a.get("rationale"), a.get("description")),
                    "approved_at": a.get("date"),
                }
                self._add("change_orders", order, change.where)
        self._count_orphan_amendments(ctx, section)

    def _contractor(self, ctx: _Context, award: Obj | None, contract: Obj, where: str) -> Obj:
        """contractor_id / contractor_name from the award's suppliers, named as bidders are."""
        suppliers = objects(award.get("suppliers")) if award else []
        if not suppliers:
            suppliers = objects(contract.get("suppliers"))
            self._count("contractor_from_contract" if suppliers else "no_contractor", where)
        members = [(s, ctx.parties.of_org(s)) for s in suppliers]
        ids = [org_id(s) for s, _ in members]
        names = [n for n in (org_name(s, p) for s, p in members) if n]
        if len(members) > 1:
            self._count("contract_consortium", where)
        return {
            "contractor_id": "+".join(i for i in ids if i) if ids and all(ids) else None,
            "contractor_name": " + ".join(names) or None,
        }

    def _closing(
        self, contract: Obj, status: str, currency: str | None, where: str
    ) -> tuple[Any, Any]:
        """(final_amount, actual_completion) of a contract that has come to a close."""
        implementation = obj(contract.get("implementation"))
        transactions = objects(implementation.get("transactions"))
        final_value = implementation.get("finalValue")
        end = implementation.get("endDate")
        if status == ENDED_EARLY:
            if transactions or final_value is not None or end is not None:
                self._count("ended_early", where)
            return None, None
        if end is not None and status == "pending":
            self._count("pending_end", where)
            end = None
        if final_value is not None:
            amount, paid_in = value_parts(final_value)
            if paid_in and currency and paid_in != currency:
                self._count("final_currency", where)
                return None, end
            if amount is not None:
                self._count("final_value", where)
                return amount, end
        if not transactions:
            return None, end
        if status not in CLOSED:
            self._count("paid_so_far", where)
            return None, end
        total, problem = paid(transactions, currency)
        self._count(f"paid_{problem}" if problem else "final_paid", where)
        return total, end

    def _changes(self, ctx: _Context, k: int, contract: Obj) -> list[_Change]:
        """The contract's amendments: those of this release, then those only earlier releases
        of the ocid give, then releases tagged contractAmendment that give no amendment."""
        release = ctx.release
        contract_id = text_of(contract.get("id"))
        found: list[_Change] = []
        seen: set[str] = set()

        def keep(amendment: Obj, where: str) -> None:
            ident, content = amendment_keys(amendment)
            if (ident or content) in seen:
                return
            seen.update(key for key in (ident, content) if key)
            found.append(_Change(amendment, where))

        def take(source: Release, index: int, of: Obj) -> None:
            listed = of.get("amendments")
            for j, amendment in enumerate(listed if isinstance(listed, list) else []):
                if isinstance(amendment, dict) and amendment:
                    keep(amendment, source.where(f"contracts[{index}].amendments[{j}]"))
            single = of.get("amendment")
            if isinstance(single, dict) and single:
                keep(single, source.where(f"contracts[{index}].amendment"))

        take(release, k, contract)
        if contract_id is None:
            return found
        own = len(found)
        versions = self.history.versions(release.ocid)
        for version in versions:
            if version.release is not release:
                for index, listed in version.contracts(contract_id):
                    take(version.release, index, listed)
        if len(found) > own:
            self._count("amendments_elsewhere", found[own].where, n=len(found) - own)
        amended = {text_of(c.amendment.get("releaseID")) for c in found} - {None}
        previous: Obj | None = None
        for version in reversed(versions):  # oldest first
            listed_here = version.contracts(contract_id)
            if version.compiled or not listed_here:
                continue
            index, here = listed_here[0]
            data = version.release.data
            tags = data.get("tag")
            rid = text_of(data.get("id"))
            if (
                isinstance(tags, list)
                and "contractAmendment" in tags
                and not objects(here.get("amendments"))
                and not obj(here.get("amendment"))
                and rid not in amended
                and (rid is None or f"release:{rid}" not in seen)
            ):
                if rid is not None:
                    seen.add(f"release:{rid}")
                where = version.release.where(f"contracts[{index}]")
                self._count("release_level", where)
                change = _Change({"date": data.get("date")}, where, previous, here, True)
                found.append(change)
            previous = here
        return found

    def _count_orphan_amendments(self, ctx: _Context, section: list[Any]) -> None:
        """Amendments that earlier releases give for contracts the newest release drops."""
        release = ctx.release
        listed = {text_of(c.get("id")) for c in section if isinstance(c, dict)} - {None}
        orphans: set[tuple[str, str]] = set()
        for version in self.history.versions(release.ocid):
            if version.release is release:
                continue
            contracts = version.release.data.get("contracts")
            for index, contract in enumerate(contracts if isinstance(contracts, list) else []):
                contract_id = text_of(obj(contract).get("id"))
                if contract_id is None or contract_id in listed:
                    continue
                amendments = [*objects(contract.get("amendments")), obj(contract.get("amendment"))]
                for amendment in amendments:
                    if amendment:
                        key = (contract_id, amendment_keys(amendment)[1])
                        if key not in orphans:
                            orphans.add(key)
                            self._count(
                                "amendments_orphan", version.release.where(f"contracts[{index}]")
                            )

    def _chain(self, changes: list[_Change]) -> list[int]:
        """Indices of the changes in date order (undated last, in reading order)."""

        def key(i: int) -> tuple[bool, datetime, int]:
            instant = instant_of(changes[i].amendment.get("date"))
            return (instant is None, instant or _OLDEST, i)

        return sorted(range(len(changes)), key=key)

    def _value_before(self, ocid: str | None, contract: Obj, changes: list[_Change]) -> Any:
        """The contract's value before its first amendment, when the file gives it."""
        first_change = changes[self._chain(changes)[0]]
        if first_change.release_level:
            return dig(first_change.before, AMOUNT) if first_change.before else None
        amendment = first_change.amendment
        contract_id = text_of(contract.get("id"))
        amends = text_of(amendment.get("amendsReleaseID"))
        if ocid and contract_id and amends:
            value = self.history.at_release(ocid, amends, contract_id, AMOUNT)
            if value is not None:
                return value
        former = former_value(amendment)
        if former is not None and former[0] is not None:
            return former[0]
        instant = instant_of(amendment.get("date"))
        if ocid and contract_id and instant is not None:
            return self.history.before(ocid, contract_id, instant, AMOUNT)
        return None

    def _change_amounts(
        self, ocid: str | None, contract: Obj, changes: list[_Change], currency: str | None
    ) -> list[tuple[Any, str]]:
        """(amount, how it was found) of each change; None where the file does not say."""
        contract_id = text_of(contract.get("id"))
        chain = self._chain(changes)
        formers = {
            i: f
            for i in chain
            if not changes[i].release_level and (f := former_value(changes[i].amendment))
        }
        # OCDS 1.0: the value after one change is the value the next one changed from.
        valued = [i for i in chain if i in formers]
        after_former: dict[int, tuple[Any, str | None]] = {}
        for n, i in enumerate(valued):
            after_former[i] = (
                formers[valued[n + 1]]
                if n + 1 < len(valued)
                else value_parts(contract.get("value"))
            )
        out: list[tuple[Any, str]] = []
        for i, change in enumerate(changes):
            if change.release_level:
                out.append(
                    _difference(
                        value_parts(obj(change.before).get("value")),
                        value_parts(obj(change.after).get("value")),
                        "releases",
                    )
                )
                continue
            amendment = change.amendment
            explicit = amendment.get("amendsAmount")
            if explicit is not None and value_parts(explicit)[0] is not None:
                amount, given_in = value_parts(explicit)
                if given_in and currency and given_in != currency:
                    out.append((None, "currency"))
                else:
                    out.append((amount, "amendsAmount"))
                continue
            amends = text_of(amendment.get("amendsReleaseID"))
            makes = text_of(amendment.get("releaseID"))
            if ocid and contract_id and amends and makes:
                found = _difference(
                    self._value_at(ocid, amends, contract_id),
                    self._value_at(ocid, makes, contract_id),
                    "releases",
                )
                if found[1] != "none":
                    out.append(found)
                    continue
            if i in formers:
                out.append(_difference(formers[i], after_former[i], "former"))
                continue
            out.append((None, "none"))
        return out

    def _value_at(self, ocid: str, release_id: str, contract_id: str) -> tuple[Any, str | None]:
        return (
            self.history.at_release(ocid, release_id, contract_id, AMOUNT),
            text_of(self.history.at_release(ocid, release_id, contract_id, CURRENCY)),
        )

    def _add_firms(self, ctx: _Context, bids: list[tuple[Obj, str]]) -> None:
        data, parties, where = ctx.release.data, ctx.parties, ctx.release.where
        for i, party in enumerate(parties.listed):
            roles = party.get("roles")
            if isinstance(roles, list) and FIRM_ROLES & {text_of(r) for r in roles}:
                self._add_firm(party, party, where(f"parties[{i}]"))
        for bid, at in bids:
            for j, org in enumerate(objects(bid.get("tenderers"))):
                self._add_firm(org, parties.of_org(org), where(f"{at}.tenderers[{j}]"))
        for a, award in enumerate(objects(data.get("awards"))):
            for s, org in enumerate(objects(award.get("suppliers"))):
                self._add_firm(org, parties.of_org(org), where(f"awards[{a}].suppliers[{s}]"))
        for j, org in enumerate(objects(ctx.tender.get("tenderers"))):
            self._add_firm(org, parties.of_org(org), where(f"tender.tenderers[{j}]"))
        contracts = data.get("contracts")
        for k, contract in enumerate(contracts if isinstance(contracts, list) else []):
            for s, org in enumerate(objects(obj(contract).get("suppliers"))):
                self._add_firm(org, parties.of_org(org), where(f"contracts[{k}].suppliers[{s}]"))

    def _add_firm(self, org: Obj, party: Obj, where: str) -> None:
        firm_id = org_id(org)
        name = org_name(org, party)
        if firm_id is None:
            if name:
                self.unnamed_firms.add(name)
            return
        row = {
            "firm_id": firm_id,
            "name": name,
            "credit_code": credit_code(party, org),
            "address": address_text(party.get("address")) or address_text(org.get("address")),
            "phone": first(
                obj(party.get("contactPoint")).get("telephone"),
                obj(org.get("contactPoint")).get("telephone"),
            ),
        }
        at = self.firm_at.get(firm_id)
        if at is None:
            self.firm_at[firm_id] = len(self.rows["firms"])
            self._add("firms", row, where)
            return
        known = self.rows["firms"][at]
        for key, value in row.items():
            if known.get(key) is None:
                known[key] = value

    def _add(self, table: str, row: Obj, where: str) -> None:
        self.rows[table].append(row)
        self.where[table].append(where)

    def tables(self, common: list[str]) -> list[RawTable]:
        notes: dict[str, list[str]] = {t: list(common) for t in self.rows}
        if self.multi_lot_bids:
            notes["bids"].append(
                f"{self.multi_lot_bids} bid(s) name several lots: one bids row per lot "
                f"({self.multi_lot_rows} rows)"
            )
        if self.only_lot_bids:
            notes["bids"].append(
                f"{self.only_lot_bids} bid(s) name no lot in a tender with a single lot: "
                "read as bids for that lot"
            )
        if self.whole_tender_bids:
            note = (
                f"{self.whole_tender_bids} bid(s) name no lot in a tender with several lots: "
                "kept under the whole tender (tender_id = ocid)"
            )
            notes["bids"].append(note)
            notes["tenders"].append(note)
        if self.consortium_bids:
            notes["bids"].append(
                f"{self.consortium_bids} consortium bid row(s) with several tenderers: ids "
                "joined with '+', names with ' + ', traces of the first tenderer"
            )
        if self.unnamed_firms:
            notes["firms"].append(
                f"{len(self.unnamed_firms)} organisation(s) have neither id nor identifier and "
                "are not listed as firms; their bids keep the name"
            )
        for table, messages in AFTER_NOTES.items():
            for what, message in messages.items():
                n = self.counts[what]
                if n:
                    text = message.format(
                        n=n,
                        amendments=self.counts["contract_cancelled_amendments"],
                        details=", ".join(sorted(self.details.get(what, ()))),
                    )
                    notes[table].append(f"{text} (e.g. {self.first_at[what]})")
        out = []
        for table, rows in self.rows.items():
            if rows:
                out.append(_raw_table(self.path, table, rows, self.where[table], notes[table]))
        # What was said of a table no row reached is said on the contracts, else on the
        # first table read.
        unsaid = [
            f"{table}: {note}"
            for table, rows in self.rows.items()
            if not rows
            for note in notes[table][len(common) :]
        ]
        if unsaid and out:
            host = next((i for i, raw in enumerate(out) if raw.table == "contracts"), 0)
            out[host] = replace(out[host], notes=(*out[host].notes, *unsaid))
        return out


# Notes on what the file gave after the award: counter -> message ({n}: how many).
AFTER_NOTES: dict[str, dict[str, str]] = {
    "contracts": {
        "contracts_not_array": (
            "{n} release(s) have a contracts section that is not an array: not read"
        ),
        "contract_not_object": "{n} contracts entr(ies) are not contract objects: not read",
        "contract_cancelled": (
            "{n} contract(s) with status cancelled (cancelled before signature) are not read, "
            "nor their {amendments} amendment(s)"
        ),
        "contract_no_award": (
            "{n} contract(s) name no award of their release (awardID missing or unknown): "
            "neither lot nor contractor can come from the award"
        ),
        "contract_several_lots": (
            "{n} contract(s) come from an award for several lots: the value cannot be split "
            "between them, so they are kept under the whole tender (tender_id = ocid)"
        ),
        "contract_no_lot": (
            "{n} contract(s) name no lot in a tender with several lots: kept under the whole "
            "tender (tender_id = ocid)"
        ),
        "contractor_from_contract": (
            "{n} contract(s) whose award names no supplier: contractor taken from the "
            "contract's own suppliers"
        ),
        "no_contractor": (
            "{n} contract(s) name no supplier, in their award or themselves: contractor left empty"
        ),
        "contract_consortium": (
            "{n} contract(s) with several suppliers (a consortium): ids joined with '+', "
            "names with ' + ', as for bids"
        ),
        "contract_currency": (
            "{n} contract(s) are valued in another currency than their tender ({details}): "
            "amounts are kept as published, not converted"
        ),
        "signed_before_amendments": (
            "{n} amended contract(s): contract_amount is the value before the first amendment "
            "(as signed); the change orders carry the amendments"
        ),
        "signed_as_published": (
            "{n} amended contract(s) whose value before the amendments the file does not give: "
            "contract_amount is the value as last published and may include the amendments"
        ),
        "final_value": "{n} contract(s): final_amount is implementation.finalValue",
        "final_paid": (
            "{n} terminated contract(s): final_amount is the sum of their implementation "
            "transactions, the amount paid as published"
        ),
        "paid_so_far": (
            "{n} contract(s) not terminated have payments published: what was paid so far is "
            "not a final amount, final_amount left empty"
        ),
        "paid_not_number": (
            "{n} terminated contract(s) have a transaction without a numeric amount: the "
            "payments cannot be summed, final_amount left empty"
        ),
        "paid_currency": (
            "{n} terminated contract(s) have transactions in several currencies: final_amount "
            "left empty"
        ),
        "paid_not_positive": (
            "{n} terminated contract(s) whose transactions sum to zero or less: final_amount "
            "left empty"
        ),
        "final_currency": (
            "{n} contract(s) whose implementation.finalValue is in another currency than the "
            "contract: final_amount left empty"
        ),
        "ended_early": (
            "{n} contract(s) terminated early (terminatedEarly): the works were not completed, "
            "final_amount and actual_completion left empty"
        ),
        "pending_end": (
            "{n} pending contract(s) give implementation.endDate: a contract not yet in force "
            "has not been completed, actual_completion left empty"
        ),
    },
    "change_orders": {
        "amendments_elsewhere": (
            "{n} amendment(s) come from earlier releases of their ocid (which are otherwise "
            "set aside) that the newest release no longer lists"
        ),
        "amendments_of_repeat": (
            "{n} amendment(s) of a contract whose tender already has one are not read: the "
            "contracts table keeps a tender's first contract, and its change orders are that "
            "contract's"
        ),
        "amendments_orphan": (
            "{n} amendment(s) in earlier releases belong to contracts the newest release of "
            "their ocid does not list: not read"
        ),
        "release_level": (
            "{n} release(s) tagged contractAmendment give no amendment object: each is read as "
            "a change order dated by the release"
        ),
        "change_amendsAmount": (
            "{n} change order amount(s) are the amendment's amendsAmount (the amount it adds)"
        ),
        "change_releases": (
            "{n} change order amount(s) are the change in contract value from the release "
            "before the amendment to the release after it"
        ),
        "change_former": (
            "{n} change order amount(s) come from the former value in the amendment's changes "
            "(OCDS 1.0): to the next amendment's former value, else to the contract's value"
        ),
        "change_none": (
            "{n} change order(s) whose change in contract value the file does not give: amount "
            "left empty"
        ),
        "change_currency": (
            "{n} change order(s) whose values before and after are in different currencies: "
            "amount left empty"
        ),
    },
}


def _tender_id(ocid: str | None, lot: str | None) -> str | None:
    if lot is None:
        return ocid
    return f"{ocid}/{lot}" if ocid else None


def _won(members: list[tuple[Obj, Obj]], lot: str | None, awards: list[_Award]) -> bool:
    bidder = [match_keys(t, p) for t, p in members]
    if not bidder or not all(bidder):
        return False
    for award in awards:
        if lot is not None and award.lots and lot not in award.lots:
            continue
        supplied = set().union(*award.suppliers) if award.suppliers else set()
        if all(keys & supplied for keys in bidder):
            return True
    return False


# ----------------------------------------------------------------------------- frames


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        # Kept visible so that normalise rejects it with the value in the reason.
        return json.dumps(value, ensure_ascii=False)
    return value


def _series(name: str, kind: str, values: list[Any]) -> pl.Series:
    cells = [_cell(v) for v in values]
    present = [c for c in cells if c is not None]
    if kind in ("amount", "signed", "number") and all(
        isinstance(c, int | float) and not isinstance(c, bool) for c in present
    ):
        return pl.Series(name, [None if c is None else float(c) for c in cells], dtype=pl.Float64)
    if kind == "bool" and all(isinstance(c, bool) for c in present):
        return pl.Series(name, cells, dtype=pl.Boolean)
    return pl.Series(
        name,
        [c if c is None or isinstance(c, str) else json.dumps(c) for c in cells],
        dtype=pl.String,
    )


def _raw_table(
    path: Path, table: str, rows: list[Obj], where: list[str], notes: list[str]
) -> RawTable:
    schema = TABLES[table]
    unknown = {k for row in rows for k in row} - set(schema.names)
    if unknown:
        raise AssertionError(f"not {table} columns: {sorted(unknown)}")
    # Columns no row fills are left out, so the source report lists only what the file gave.
    columns = [
        c for c in schema.columns if c.required or any(r.get(c.name) is not None for r in rows)
    ]
    numbers = pl.Series(ROW, range(1, len(rows) + 1), dtype=pl.Int64)
    frame = pl.DataFrame(
        [*(_series(c.name, c.kind, [r.get(c.name) for r in rows]) for c in columns), numbers]
    )
    return RawTable(
        path=str(path),
        table=table,
        frame=frame,
        headers=tuple(c.name for c in columns),
        canonical=True,
        notes=tuple(notes),
        locations=pl.DataFrame({ROW: numbers, "where": pl.Series(where, dtype=pl.String)}),
    )
