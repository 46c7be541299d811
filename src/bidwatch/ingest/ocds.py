"""OCDS JSON and JSON Lines: tenders, bids and tenderers from Open Contracting data.

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
compiled releases or records for such data.

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
in ``bids[].tenderers``, ``awards[].suppliers`` and ``tender.tenderers`` (1.0-style files have
no ``parties``). An organisation with neither ``id`` nor ``identifier`` cannot be a firm row;
the notes count them (their bids keep the name).

Each row's location (``RawTable.locations``) reads like
``releases[3] ocid=ocds-xyz bids.details[1]`` or ``line 7 ocid=ocds-xyz bids.details[0]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
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

    @property
    def ocid(self) -> str | None:
        return text_of(self.data.get("ocid"))

    def where(self, path: str) -> str:
        ocid = self.ocid
        parts = (self.at, f"ocid={ocid}" if ocid else "", f"{self.inner}{path}")
        return " ".join(p for p in parts if p)


# ------------------------------------------------------------------------------ reading


def read(path: Path) -> list[RawTable]:
    """Read one OCDS file into canonical raw tables: tenders, bids and firms (those present)."""
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
    out = _Tables(path)
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
    return Release(compiled, at, "compiledRelease.")


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
    """Rows of the three tables, gathered release by release."""

    path: Path
    rows: dict[str, list[Obj]] = field(
        default_factory=lambda: {"tenders": [], "bids": [], "firms": []}
    )
    where: dict[str, list[str]] = field(
        default_factory=lambda: {"tenders": [], "bids": [], "firms": []}
    )
    firm_at: dict[str, int] = field(default_factory=dict)
    unnamed_firms: set[str] = field(default_factory=set)
    multi_lot_bids: int = 0
    multi_lot_rows: int = 0
    consortium_bids: int = 0
    only_lot_bids: int = 0
    whole_tender_bids: int = 0

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
        out = []
        for table, rows in self.rows.items():
            if rows:
                out.append(_raw_table(self.path, table, rows, self.where[table], notes[table]))
        return out


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
    if kind in ("amount", "number") and all(
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
