"""Declaring a setting once.

A setting is a field of a :class:`Group` dataclass, declared with :func:`setting`: its
name (the field name, which is also the TOML key), its type (the annotation, or ``kind``),
its default, its range or choices and its help. From that one declaration come the
command-line flag (``--some-name``), the environment variable (``IIOT_SOME_NAME``), the
TOML key, the parsing and range checks, the ``--help`` text with the default, and the
options table of docs/bridge.md. A group's :meth:`Group.check` holds the rules that
involve several settings (a key file needs a certificate, ...).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

KINDS = ("str", "int", "float", "bool", "duration", "path", "choice", "secret", "list")


class ConfigError(ValueError):
    """A setting is invalid; the message is one line meant for the operator."""


@dataclass(frozen=True)
class Spec:
    """What a setting's declaration says besides its name and default."""

    help: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    flag: bool = True  # has a command-line flag (secrets may be environment-only)
    toml: bool = True  # may be set in the TOML file (secrets may not)
    shown: str | None = None  # the default as --help and the docs show it, if not its value
    check: Callable[[Any], Any] | None = None  # normalise or raise ValueError(reason)


def setting(
    default: Any,
    help: str,  # noqa: A002 - argparse's word for it
    *,
    kind: str | None = None,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] = (),
    flag: bool = True,
    toml: bool = True,
    shown: str | None = None,
    check: Callable[[Any], Any] | None = None,
) -> Any:
    """A dataclass field that is a setting (see the module docstring)."""
    if kind is None:
        if choices:
            kind = "choice"
        elif isinstance(default, bool):
            kind = "bool"
        elif isinstance(default, int):
            kind = "int"
        elif isinstance(default, float):
            kind = "float"
        elif isinstance(default, str):
            kind = "str"
        elif isinstance(default, tuple):
            kind = "list"  # [gateways] a repeatable flag: --serial A --serial B
        else:
            raise TypeError("setting(): give kind= for a default of None")
    if kind not in KINDS:
        raise TypeError(f"setting(): unknown kind {kind!r}")
    secret = kind == "secret"
    spec = Spec(help, kind, low, high, choices, flag, toml and not secret, shown, check)
    return field(default=default, repr=not secret, metadata={"setting": spec})


@dataclass(frozen=True)
class Option:
    """One declared setting, as the parser and the docs see it."""

    key: str  # field name = TOML key
    default: Any
    spec: Spec
    group: str

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")

    @property
    def env(self) -> str:
        return "IIOT_" + self.key.upper()

    def shown_default(self) -> str:
        """The default as a person reads it: ``60s``, ``off``, ``(none)``."""
        spec = self.spec
        if spec.shown is not None:
            return spec.shown
        value = self.default
        if spec.kind == "bool":
            return "on" if value else "off"
        if value is None or value == "" or value == ():
            return "(none)"
        if spec.kind == "list":
            return ",".join(str(v) for v in value)
        if spec.kind == "duration":
            return format_duration(float(value))
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    def range_text(self) -> str:
        """The allowed values: ``1..65535``, ``at least 5``, ``text | json``."""
        spec = self.spec
        if spec.choices:
            return " | ".join(spec.choices)
        show = format_duration if spec.kind == "duration" else _number
        if spec.low is not None and spec.high is not None:
            return f"{show(spec.low)}..{show(spec.high)}"
        if spec.low is not None:
            return f"at least {show(spec.low)}"
        if spec.high is not None:
            return f"at most {show(spec.high)}"
        return ""


class Group:
    """A set of related settings; subclasses are dataclasses whose fields use setting()."""

    title: ClassVar[str] = "Settings"

    def check(self) -> None:
        """Rules across settings and derived values; raise ConfigError. After __init__."""

    @classmethod
    def options(cls) -> list[Option]:
        out = []
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            spec = f.metadata.get("setting")
            if spec is not None:
                out.append(Option(f.name, f.default, spec, cls.title))
        return out


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_SCALE = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> float:
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (like 500ms, 30s, 10m, 12h, 7d)")
    return float(match.group(1)) * _SCALE.get(match.group(2) or "s", 1.0)


def format_duration(seconds: float) -> str:
    """The shortest exact text: 0.2 -> 200ms, 60 -> 60s, 2592000 -> 30d."""
    for unit, scale, least in (("d", 86400, 1), ("h", 3600, 1), ("m", 60, 2)):
        if seconds >= scale * least and (seconds / scale).is_integer():
            return f"{int(seconds // scale)}{unit}"
    if seconds < 1:
        return f"{_number(round(seconds * 1000, 3))}ms"
    return f"{_number(seconds)}s"


def where(opt: Option, origin: str) -> str:
    """How an error names the setting: the flag, the variable, or the file's key."""
    if origin == "flag":
        return opt.flag
    if origin == "env":
        return opt.env
    return f"{origin}: {opt.key}"


def convert(opt: Option, raw: Any, origin: str) -> Any:
    """``raw`` (text from a flag or the environment, a TOML value) as the setting's type,
    range-checked; ConfigError naming where it came from."""
    spec = opt.spec
    try:
        value = _typed(spec, raw)
        if spec.low is not None and value < spec.low or spec.high is not None and value > spec.high:
            raise ValueError(f"must be {opt.range_text()}, got {raw!r}")
        if spec.check is not None and value is not None:
            value = spec.check(value)
        return value
    except ValueError as err:
        raise ConfigError(f"{where(opt, origin)}: {err}") from err


def _typed(spec: Spec, raw: Any) -> Any:
    kind = spec.kind
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"{raw!r} is not a boolean (true/false)")
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a {kind}")
    if kind == "list":
        # [gateways] a flag given several times, a comma-separated variable, a TOML array
        items = raw if isinstance(raw, (list, tuple)) else [raw]
        out: list[str] = []
        for item in items:
            if not isinstance(item, str):
                raise ValueError(f"{item!r} is not a string")
            out += [part.strip() for part in item.split(",") if part.strip()]
        return tuple(out)
    if kind == "int":
        try:
            return int(str(raw), 10)
        except ValueError:
            raise ValueError(f"{raw!r} is not an integer") from None
    if kind == "float":
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{raw!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{raw!r} is not a finite number")
        return value
    if kind == "duration":
        return float(raw) if isinstance(raw, (int, float)) else parse_duration(str(raw))
    if kind == "choice":
        text = str(raw).strip().lower()
        if text not in spec.choices:
            raise ValueError(f"{raw!r} is not one of {', '.join(spec.choices)}")
        return text
    if not isinstance(raw, str):
        raise ValueError(f"{raw!r} is not a string")
    if kind == "path":
        return Path(raw).expanduser() if raw else None
    return raw


def build(cls: type[Any], values: Mapping[str, Any]) -> Any:
    """An instance of the group ``cls`` from parsed values (defaults for those missing),
    checked."""
    group = cls(**{opt.key: values[opt.key] for opt in cls.options() if opt.key in values})
    group.check()
    return group
