"""User files that steer a scan: the header mapping and the scan configuration.

Both are TOML. Every key is checked against what bidwatch knows, and a mistake names the
file, the key and the keys that are valid, so that a typo never silently changes a scan.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bidwatch.errors import InputError
from bidwatch.ingest import ReadOptions
from bidwatch.schema import TABLES
from bidwatch.units import BY_SYMBOL, parse_unit


def _read_toml(path: str | Path, what: str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {what} file not found.")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc}).") from None


@dataclass(frozen=True)
class Mapping:
    """Source header -> canonical column, per table; raw value -> canonical value, per column."""

    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    encoding: str | None = None
    sheet: str | None = None
    delimiter: str | None = None
    date_format: str | None = None

    @classmethod
    def load(cls, path: str | Path) -> Mapping:
        return cls.from_dict(_read_toml(path, "mapping"), str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "mapping") -> Mapping:
        options = {"encoding", "sheet", "delimiter", "date_format"}
        columns: dict[str, dict[str, str]] = {}
        values: dict[str, dict[str, str]] = {}
        opts: dict[str, str] = {}
        for section, body in data.items():
            if not isinstance(body, dict):
                raise InputError(f"{origin}: [{section}] must be a table of entries.")
            if section == "options":
                for key, val in body.items():
                    if key not in options:
                        raise InputError(
                            f"{origin}: unknown option {key!r} in [options]; "
                            f"known: {', '.join(sorted(options))}."
                        )
                    opts[key] = str(val)
            elif section == "values":
                values = _value_maps(body, origin)
            elif section in TABLES:
                table = TABLES[section]
                for header, target in body.items():
                    if target not in table.names:
                        raise InputError(
                            f"{origin}: [{section}] maps {header!r} to {target!r}, which is not a "
                            f"{section} column; columns are: {', '.join(table.names)}."
                        )
                columns[section] = {str(k): str(v) for k, v in body.items()}
            else:
                raise InputError(
                    f"{origin}: unknown section [{section}]; use [options], [values.<column>] "
                    f"or a table: {', '.join(TABLES)}."
                )
        return cls(columns=columns, values=values, **opts)

    def read_options(self, table: str) -> ReadOptions:
        return ReadOptions(
            encoding=self.encoding,
            sheet=self.sheet,
            delimiter=self.delimiter,
            known_headers=frozenset(self.columns.get(table, {})),
        )


def _value_maps(body: dict[str, Any], origin: str) -> dict[str, dict[str, str]]:
    enums = {c.name: c for t in TABLES.values() for c in t.columns if c.kind in ("enum", "unit")}
    out: dict[str, dict[str, str]] = {}
    for column, words in body.items():
        if column not in enums:
            raise InputError(
                f"{origin}: [values.{column}]: only these columns take value maps: "
                f"{', '.join(sorted(enums))}."
            )
        for raw, target in words.items():
            if enums[column].kind == "unit":
                if parse_unit(str(target))[1] is not None:
                    raise InputError(
                        f"{origin}: [values.unit] maps {raw!r} to {target!r}, which is not a "
                        f"unit bidwatch knows; use one of {', '.join(BY_SYMBOL)}."
                    )
                continue
            if target not in enums[column].values:
                raise InputError(
                    f"{origin}: [values.{column}] maps {raw!r} to {target!r}; "
                    f"use one of {', '.join(enums[column].values)}."
                )
        out[column] = {str(k): str(v) for k, v in words.items()}
    return out


# ------------------------------------------------------------------------------ scan config


@dataclass(frozen=True)
class RiskConfig:
    """How findings become 0-100 risk (see ``bidwatch.risk``)."""

    scale: float = 1.0
    firm_min_tenders: int = 1
    firm_sharpness: int = 4
    top_reasons: int = 3
    group_share: float = 0.5
    buyer_share: float = 0.5
    history_share: float = 0.5

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")
        if self.firm_min_tenders < 1:
            raise ValueError(f"firm_min_tenders must be >= 1, got {self.firm_min_tenders}")
        if self.firm_sharpness < 1:
            raise ValueError(f"firm_sharpness must be >= 1, got {self.firm_sharpness}")
        if self.top_reasons < 1:
            raise ValueError(f"top_reasons must be >= 1, got {self.top_reasons}")
        if self.group_share < 0:
            raise ValueError(f"group_share must be >= 0, got {self.group_share}")
        if self.buyer_share < 0:
            raise ValueError(f"buyer_share must be >= 0, got {self.buyer_share}")
        if self.history_share < 0:
            raise ValueError(f"history_share must be >= 0, got {self.history_share}")


@dataclass(frozen=True)
class EntityConfig:
    """How bidders are resolved into firms (see ``bidwatch.entities``). Similarities are
    rapidfuzz ratios, 0-100."""

    fuzzy: float = 90.0
    chars_per_edit: int = 10
    supported: float = 75.0
    cluster: float = 70.0
    max_block: int = 200
    links: str | None = None

    def __post_init__(self) -> None:
        if self.chars_per_edit < 1:
            raise ValueError(f"chars_per_edit must be >= 1, got {self.chars_per_edit}")
        for name in ("fuzzy", "supported", "cluster"):
            value = getattr(self, name)
            if not 0 <= value <= 100:
                raise ValueError(f"{name} must be between 0 and 100, got {value}")
        if self.max_block < 2:
            raise ValueError(f"max_block must be >= 2, got {self.max_block}")


@dataclass(frozen=True)
class Config:
    """A scan's configuration: which detectors run, their parameters and weights."""

    select: tuple[str, ...] = ("ALL",)
    ignore: tuple[str, ...] = ()
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    risk: RiskConfig = field(default_factory=RiskConfig)
    source: str | None = None
    entities: EntityConfig = field(default_factory=EntityConfig)

    @classmethod
    def load(cls, path: str | Path) -> Config:
        return cls.from_dict(_read_toml(path, "config"), str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "config") -> Config:
        from bidwatch.detectors import REGISTRY

        known = {d.name: d for d in REGISTRY}
        for section in data:
            if section not in ("detectors", "risk", "entities"):
                raise InputError(
                    f"{origin}: unknown section [{section}]; use [detectors], "
                    "[detectors.<name>], [risk] and [entities]."
                )
        det = dict(data.get("detectors", {}))
        for key in ("select", "ignore"):
            if key in det and not isinstance(det[key], list):
                raise InputError(
                    f"{origin}: [detectors] {key} must be a list of detector names, e.g. "
                    f'{key} = ["bid-cv"]; got {det[key]!r}.'
                )
        select = tuple(det.pop("select", ("ALL",)))
        ignore = tuple(det.pop("ignore", ()))
        for name in (*select, *ignore):
            if name != "ALL" and name not in known:
                names = ", ".join(sorted(known))
                raise InputError(f"{origin}: unknown detector {name!r}; detectors are: {names}.")
        params: dict[str, dict[str, Any]] = {}
        weights: dict[str, float] = {}
        for name, body in det.items():
            if name not in known:
                raise InputError(
                    f"{origin}: [detectors.{name}]: unknown detector or key; keys are select, "
                    f"ignore and detector names: {', '.join(sorted(known))}."
                )
            if not isinstance(body, dict):
                raise InputError(f"{origin}: [detectors.{name}] must be a table of parameters.")
            settings = dict(body)
            if "weight" in settings:
                weights[name] = _number(
                    settings.pop("weight"), f"{origin}: [detectors.{name}] weight"
                )
            params[name] = _check_params(known[name], settings, f"{origin}: [detectors.{name}]")
        risk_body = dict(data.get("risk", {}))
        risk = _build(RiskConfig, risk_body, f"{origin}: [risk]")
        entity_body = dict(data.get("entities", {}))
        if isinstance(entity_body.get("links"), str) and origin.endswith(".toml"):
            links = Path(entity_body["links"])
            if not links.is_absolute():
                entity_body["links"] = str(Path(origin).parent / links)
        entity = _build(EntityConfig, entity_body, f"{origin}: [entities]")
        return cls(select, ignore, params, weights, risk, origin, entity)

    def detectors(self) -> list[Any]:
        """The selected detectors, constructed with this config's parameters, registry order."""
        from bidwatch.detectors import REGISTRY

        chosen = []
        for cls_ in REGISTRY:
            selected = "ALL" in self.select or cls_.name in self.select
            if selected and cls_.name not in self.ignore:
                chosen.append(cls_(**self.params.get(cls_.name, {})))
        return chosen

    def weight(self, detector: Any) -> float:
        return self.weights.get(detector.name, float(detector.default_weight))

    def resolved(self) -> dict[str, Any]:
        """Every setting in effect, defaults filled in: written to scan.json."""
        from bidwatch.detectors import REGISTRY

        return {
            "source": self.source,
            "detectors": {
                d.name: {
                    "selected": d.name in {x.name for x in self.detectors()},
                    "weight": self.weight(d),
                    "params": dataclasses.asdict(d(**self.params.get(d.name, {}))),
                }
                for d in REGISTRY
            },
            "risk": dataclasses.asdict(self.risk),
            "entities": dataclasses.asdict(self.entities),
        }


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where} must be a number, got {value!r}.")
    if value < 0:
        raise InputError(f"{where} must not be negative, got {value!r}.")
    return float(value)


def _check_params(cls_: type, body: dict[str, Any], where: str) -> dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(cls_)}
    hints = typing.get_type_hints(cls_)
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key not in fields:
            raise InputError(
                f"{where}: unknown parameter {key!r}; parameters are: "
                f"{', '.join(sorted(fields)) or 'none'}, and weight."
            )
        out[key] = _coerce(value, hints[key], f"{where} {key}")
    try:
        cls_(**out)
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None
    return out


def _build(cls_: type, body: dict[str, Any], where: str) -> Any:
    checked = _check_params(cls_, body, where)
    return cls_(**checked)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check a TOML value against a parameter's annotation (int, float, str, bool, X | None)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        if option is type(None):
            continue
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if option is str and isinstance(value, str):
            return value
        if typing.get_origin(option) is tuple and isinstance(value, list):
            return tuple(value)
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options if o is not type(None))
    raise InputError(f"{where} must be {names}, got {value!r}.")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def default_toml() -> str:
    """A bidwatch.toml with every detector, parameter and weight at its default."""
    from bidwatch.catalogue import sections
    from bidwatch.detectors import REGISTRY

    lines = [
        "# bidwatch scan configuration. Every value shown is the default.",
        "",
        "[detectors]",
        'select = ["ALL"]   # detector names, or "ALL"',
        "ignore = []",
        "",
    ]
    for detector in REGISTRY:
        summary, _ = sections(detector)
        lines += [
            f"# {summary}",
            f"[detectors.{detector.name}]",
            f"weight = {detector.default_weight}",
        ]
        for f in dataclasses.fields(detector):
            if f.default is None:
                lines.append(f"# {f.name} = ...   (unset: data-driven)")
            else:
                lines.append(f"{f.name} = {_toml_value(f.default)}")
        lines.append("")
    lines += ["[risk]"]
    lines += [f"{f.name} = {_toml_value(f.default)}" for f in dataclasses.fields(RiskConfig)]
    lines += ["", "[entities]"]
    for f in dataclasses.fields(EntityConfig):
        if f.default is None:
            lines.append(f"# {f.name} = ...   (unset)")
        else:
            lines.append(f"{f.name} = {_toml_value(f.default)}")
    return "\n".join(lines) + "\n"
