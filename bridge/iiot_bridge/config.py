"""Settings from flags, ``IIOT_*`` environment variables and a TOML file, in that order.

Precedence: command-line flag > environment variable > ``--config`` file > default. Every
setting is declared once (``settings.setting``): here the bridge's own, and each sink's in
its module (``outputs/*.py``, listed in ``outputs.SINK_MODULES``). The parser, the
environment and file handling, ``--help`` and the options table of docs/bridge.md
(``python -m iiot_bridge.config --write docs/bridge.md``) all come from those declarations.
Secrets (MQTT password, InfluxDB token, webhook token) come from the environment or a
file, never from the TOML file, and are never logged. Any invalid setting raises
ConfigError with a one-line message; the CLI prints it and exits 2 before anything starts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from . import identity
from .dedup import check_redis_url, claim_ttl_s
from .outputs import SinkPlugin, plugins
from .processors.keys import KeysError, load_keys
from .settings import ConfigError, Group, Option, build, convert, setting

__all__ = ["ConfigError", "Settings", "load", "options", "unknown_env", "version"]

DISTRIBUTION = "iiot-lora-telemetry"
G = TypeVar("G", bound=Group)


def version() -> str:
    """The installed package's version (its metadata), for --version and logs."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _state_base() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "iiot-bridge"


def _default_state_dir(bridge_id: str) -> Path:
    # systemd's StateDirectory= exports STATE_DIRECTORY (the template makes it one per
    # instance); otherwise one directory per bridge id under the XDG state home.
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    return _state_base() / bridge_id


def legacy_outbox() -> Path | None:
    """An outbox where bridges before issue 15 kept it by default (no bridge id), if any."""
    if os.environ.get("STATE_DIRECTORY"):
        return None
    old = _state_base() / "outbox.sqlite3"
    return old if old.is_file() else None


def _serial(value: tuple[str, ...]) -> tuple[str, ...]:
    # [gateways] several ports (one bridge, several gateways), or auto: every ST-LINK
    if not value:
        raise ValueError("empty; give a port path or 'auto'")
    if "auto" in value and len(value) > 1:
        raise ValueError("auto takes every ST-LINK: give it alone, or name the ports")
    real = [os.path.realpath(v) for v in value]
    if len(set(real)) != len(real):
        raise ValueError(f"a port is named twice in {','.join(value)}")
    return value


def _bridge_id(value: str) -> str:
    if not value.strip():
        return ""  # an empty variable (.env's IIOT_BRIDGE_ID=): the derived default
    try:
        return identity.check_name(value)
    except identity.IdentityError as err:
        raise ValueError(str(err)) from err


def _namespace(value: str) -> str:
    try:
        return identity.check_name(value)
    except identity.IdentityError as err:
        raise ValueError(str(err)) from err


def _dedup_url(value: str) -> str:
    return check_redis_url(value) if value else value


@dataclass
class Settings(Group):
    """The bridge's own settings (and, in ``sinks``, each sink's). Secrets stay out of repr,
    so they never reach a log."""

    title = "Bridge"

    config: Path | None = setting(
        None, "TOML settings file (keys as the flags, with _ for -)", kind="path", toml=False
    )
    serial: tuple[str, ...] = setting(
        ("auto",),
        "node2's serial port; repeat it (or comma-separate) for several gateways; auto: every "
        "ST-LINK (USB vendor 0483), plugged in now or later",
        check=_serial,
    )
    bridge_id: str = setting(
        "",
        "this bridge's name: MQTT client id and status topic, the bridge tag, the default "
        "state directory",
        shown="<host>-<gateway serial>, or <host> alone for auto",
        check=_bridge_id,
    )
    baud: int = setting(115200, "serial baud rate", low=50)
    state_dir: Path | None = setting(
        None,
        "directory of the outbox (outbox.sqlite3), locked: one bridge per directory",
        kind="path",
        shown="$STATE_DIRECTORY, else $XDG_STATE_HOME/iiot-bridge/<bridge id> "
        "(~/.local/state/iiot-bridge/<bridge id>)",
    )
    outbox_max_mb: float = setting(
        256.0, "outbox size limit in MiB; past it the oldest readings go first", low=0.1
    )
    outbox_max_age: float = setting(
        30 * 86400.0, "outbox age limit; older readings are dropped", kind="duration", low=1
    )
    outbox_sync: str = setting(
        "full",
        "SQLite synchronous mode: full survives a power loss, normal only a crash",
        choices=("full", "normal"),
    )
    keys: Path | None = setting(None, "TOML file of per-node MIC keys", kind="path")
    node_timeout_intervals: float = setting(
        3.0, "report intervals a node may miss before it is offline", low=1
    )
    report_interval: float = setting(
        60.0, "a node's report interval until the bridge has measured it", kind="duration", low=1
    )
    retry_max: float = setting(
        60.0, "ceiling of the reconnect and retry backoff (it starts at 1 s)", kind="duration",
        low=1,
    )  # fmt: skip
    stats_interval: float = setting(
        60.0, "how often the counters are logged", kind="duration", low=1
    )
    log_level: str = setting("info", "log level", choices=("debug", "info", "warning", "error"))
    log_format: str = setting(
        "text", "log format (json: one object per line)", choices=("text", "json")
    )
    http_port: int = setting(0, "port of /metrics and /healthz (0: off)", low=0, high=65535)
    http_host: str = setting("127.0.0.1", "address the HTTP endpoint listens on")
    stall_timeout: float = setting(
        120.0,
        "/healthz fails when a sink with a backlog has delivered nothing for this long",
        kind="duration",
        low=1,
    )
    dedup_url: str = setting(
        "",
        "Redis/Valkey shared by the bridges of one site, which then store a frame heard by "
        "several of their gateways once: redis[s]://host[:port][/db]",
        shown="off",
        check=_dedup_url,
    )
    dedup_password: str | None = setting(
        None, "password of the dedup Redis (environment only)", kind="secret", flag=False
    )
    dedup_password_file: Path | None = setting(
        None, "file holding the password of the dedup Redis", kind="path"
    )
    dedup_ttl: float = setting(
        claim_ttl_s(),
        "how long a frame's claim lives: longer than node1's queue horizon "
        "(queue_len x interval_s)",
        kind="duration",
        low=60,
    )
    dedup_namespace: str = setting(
        "iiot", "first part of the claim keys: the same for every bridge of one site",
        check=_namespace,
    )  # fmt: skip
    # Derived in check(): the keys file's contents.
    mic_keys: dict[int, bytes] = field(default_factory=dict, repr=False)
    # Each sink's settings by sink name (filled by load()).
    sinks: dict[str, Group] = field(default_factory=dict, repr=False)

    def check(self) -> None:
        if self.keys is not None:
            try:
                self.mic_keys = load_keys(self.keys)
            except KeysError as err:
                raise ConfigError(f"--keys: {err}") from err
        if not self.bridge_id:
            self.bridge_id = identity.default_bridge_id(list(self.serial))
        self.state_dir = _check_state_dir(self.state_dir or _default_state_dir(self.bridge_id))
        if self.dedup_password_file is not None:
            from .outputs.mqtt_config import read_secret

            self.dedup_password = read_secret(self.dedup_password_file, "--dedup-url password")

    @property
    def outbox_path(self) -> Path:
        assert self.state_dir is not None
        return self.state_dir / "outbox.sqlite3"

    def of(self, cls: type[G]) -> G:
        """A sink's settings group by its class."""
        for group in self.sinks.values():
            if isinstance(group, cls):
                return group
        raise KeyError(cls.__name__)

    def enabled_sinks(self) -> list[tuple[SinkPlugin, Group]]:
        return [(p, self.sinks[p.name]) for p in plugins() if p.enabled(self.sinks[p.name])]


def _check_state_dir(path: Path) -> Path:
    path = path.expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--state-dir: cannot create {path}: {err.strerror or err}") from err
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"--state-dir: {path} is not writable")
    return path


def groups() -> list[type[Group]]:
    return [Settings, *(p.settings for p in plugins())]


def options() -> list[Option]:
    """Every setting the bridge has, in --help order."""
    return [opt for cls in groups() for opt in cls.options()]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(message)


def help_text(opt: Option) -> str:
    allowed = opt.range_text()
    text = f"{opt.spec.help}; {allowed}" if allowed else opt.spec.help
    return f"{text} (default: {opt.shown_default()})".replace("%", "%%")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="iiot-bridge",
        description="node2's serial lines -> durable outbox -> MQTT, InfluxDB and webhooks.",
        epilog="Every flag is also an IIOT_<NAME> environment variable and a key of the "
        "--config file. Precedence: flag > environment > file > default.",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--version", action="version", version=f"iiot-bridge {version()}")
    for cls in groups():
        section = parser.add_argument_group(cls.title)
        for opt in cls.options():
            if not opt.spec.flag:
                continue
            text = help_text(opt)
            if opt.spec.kind == "bool":
                section.add_argument(opt.flag, action="store_true", dest=opt.key, help=text)
            elif opt.spec.kind == "list":  # [gateways] repeatable
                meta = opt.key.split("_")[-1].upper()
                section.add_argument(opt.flag, action="append", metavar=meta, dest=opt.key,
                                     help=text)  # fmt: skip
            else:
                meta = opt.key.split("_")[-1].upper()
                section.add_argument(opt.flag, metavar=meta, dest=opt.key, help=text)
    return parser


def _read_toml(path: Path, known: Mapping[str, Option]) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as err:
        raise ConfigError(f"cannot read the config file {path}: {err.strerror or err}") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from err
    out: dict[str, Any] = {}
    for key, value in data.items():
        norm = key.replace("-", "_")
        opt = known.get(norm)
        if opt is not None and opt.spec.kind == "secret":
            raise ConfigError(
                f"config file {path}: {key} is a secret; set it in the environment "
                f"({opt.env}) or use {opt.flag}-file"
            )
        if opt is None or not opt.spec.toml:
            raise ConfigError(f"config file {path}: unknown setting {key!r}")
        out[norm] = value
    return out


def load(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Parse and validate every setting; raise ConfigError on the first bad one."""
    environ = os.environ if environ is None else environ
    known = {opt.key: opt for opt in options()}
    flags = vars(build_parser().parse_args(argv))
    config_path = flags.get("config") or environ.get("IIOT_CONFIG")
    from_file = _read_toml(Path(config_path), known) if config_path else {}
    origin_file = f"config file {config_path}"
    values: dict[str, Any] = {}
    for opt in known.values():
        if opt.key in flags:
            raw, origin = flags[opt.key], "flag"
        elif opt.env in environ:
            raw, origin = environ[opt.env], "env"
        elif opt.key in from_file:
            raw, origin = from_file[opt.key], origin_file
        else:
            continue
        values[opt.key] = convert(opt, raw, origin)
    settings: Settings = build(Settings, values)
    for plugin in plugins():
        group = settings.sinks[plugin.name] = build(plugin.settings, values)
        if hasattr(group, "bridge_id"):  # [gateways] a sink that names the bridge (MQTT)
            group.bridge_id = settings.bridge_id
    if not settings.enabled_sinks():
        offs = ", ".join(p.off for p in plugins())
        raise ConfigError(f"every sink is off ({offs}): that leaves the bridge nothing to do")
    return settings


def unknown_env(environ: Mapping[str, str]) -> list[str]:
    """IIOT_* variables that are not settings (likely typos), for a warning at start."""
    known = {o.env for o in options()}
    return sorted(k for k in environ if k.startswith("IIOT_") and k not in known)


# -- the options table of docs/bridge.md -------------------------------------------------

BEGIN = "<!-- options: generated by `python -m iiot_bridge.config --write docs/bridge.md` -->"
END = "<!-- end of options -->"


def _text(text: str) -> str:
    """A table cell of prose: pipes and angle brackets escaped for Markdown."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def options_markdown() -> str:
    """The options tables (one per group), generated from the declarations."""
    out: list[str] = []
    for cls in groups():
        out += [
            f"**{cls.title}**",
            "",
            "| flag | environment | TOML key | default | allowed | meaning |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for opt in cls.options():
            flag = f"`{opt.flag}`" if opt.spec.flag else "(none)"
            key = f"`{opt.key}`" if opt.spec.toml else "—"
            allowed = _text(opt.range_text()) or "—"
            shown = opt.shown_default()
            default = "—" if shown == "(none)" else "`" + shown.replace("|", "\\|") + "`"
            row = [flag, f"`{opt.env}`", key, default, allowed, _text(opt.spec.help)]
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    return "\n".join(out)


def with_options(doc: str) -> str:
    """``doc`` with the generated block between BEGIN and END replaced."""
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    return doc[:start] + "\n\n" + options_markdown() + "\n" + doc[end:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="print or update the docs' options tables")
    parser.add_argument("--write", type=Path, metavar="DOC", help="rewrite DOC's options block")
    args = parser.parse_args(argv)
    if args.write is None:
        print(options_markdown())
        return 0
    text = args.write.read_text(encoding="utf-8")
    args.write.write_text(with_options(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
