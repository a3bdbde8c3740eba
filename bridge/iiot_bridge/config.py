"""Settings from flags, ``IIOT_*`` environment variables and a TOML file, in that order.

Precedence: command-line flag > environment variable > ``--config`` file > default. Every
option ``--some-name`` is also ``IIOT_SOME_NAME`` and ``some_name`` in the file. Secrets
(MQTT password, InfluxDB token) come from the environment or a file, never from the TOML
file, and are never logged. Any invalid setting raises ConfigError with a one-line message;
the CLI prints it and exits 2 before anything starts.
"""

from __future__ import annotations

import argparse
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .processors.keys import KeysError, load_keys


class ConfigError(ValueError):
    """A setting is invalid; the message is one line meant for the operator."""


@dataclass(frozen=True)
class Option:
    name: str  # flag name without the dashes
    kind: str  # str, int, float, bool, duration, path, choice, secret
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    flag: bool = True  # False: environment (or file) only, e.g. secrets

    @property
    def env(self) -> str:
        return "IIOT_" + self.name.upper().replace("-", "_")

    @property
    def key(self) -> str:
        return self.name.replace("-", "_")


def _default_state_dir() -> str:
    # systemd's StateDirectory= exports STATE_DIRECTORY; otherwise the XDG state home.
    if os.environ.get("STATE_DIRECTORY"):
        return os.environ["STATE_DIRECTORY"].split(":")[0]
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base) / "iiot-bridge")


OPTIONS: tuple[Option, ...] = (
    Option("config", "path", None, "TOML settings file (keys as the flags, with _ for -)"),
    Option("serial", "str", "auto", "node2's serial port, or 'auto' (ST-LINK, USB vendor 0483)"),
    Option("baud", "int", 115200, "serial baud rate"),
    Option("mqtt-url", "str", "mqtt://localhost:1883", "broker: mqtt[s]://[user@]host[:port]"),
    Option("mqtt-password", "secret", None, "MQTT password (environment only)", flag=False),
    Option("mqtt-password-file", "path", None, "file holding the MQTT password"),
    Option("mqtt-ca-file", "path", None, "CA certificate for mqtts:// (default: system CAs)"),
    Option("mqtt-cert-file", "path", None, "client certificate for mqtts://"),
    Option("mqtt-key-file", "path", None, "client certificate's private key"),
    Option("mqtt-client-id", "str", "", "MQTT client id (default: iiot-bridge-<host>)"),
    Option("mqtt-keepalive", "int", 30, "MQTT keepalive, seconds"),
    Option("topic-prefix", "str", "iiot", "first level of every topic"),
    Option("state-topic", "bool", False, "also publish <prefix>/<node>/state JSON"),
    Option("influx-url", "str", "http://localhost:8086", "InfluxDB 2 URL"),
    Option("influx-org", "str", "iiot", "InfluxDB organisation"),
    Option("influx-bucket", "str", "telemetry", "InfluxDB bucket"),
    Option("influx-token", "secret", None, "InfluxDB token (prefer IIOT_INFLUX_TOKEN)"),
    Option("influx-token-file", "path", None, "file holding the InfluxDB token"),
    Option("influx-batch-size", "int", 5000, "points per InfluxDB write at most"),
    Option("influx-flush-ms", "int", 200, "longest wait before a partial batch is written"),
    Option("influx-timeout", "duration", 10.0, "InfluxDB request timeout"),
    Option("retry-max", "duration", 60.0, "longest wait between reconnects and retries"),
    Option("state-dir", "path", None, "directory of the outbox database"),
    Option("no-mqtt", "bool", False, "disable the MQTT sink"),
    Option("no-influx", "bool", False, "disable the InfluxDB sink"),
    Option("log-level", "choice", "info", "log level", ("debug", "info", "warning", "error")),
    Option("log-format", "choice", "text", "log format", ("text", "json")),
    Option("stats-interval", "duration", 60.0, "how often the counters are logged"),
    Option("keys", "path", None, "TOML file of per-node MIC keys"),
    Option("outbox-max-mb", "float", 256.0, "outbox size limit; the oldest rows go first"),
    Option("outbox-max-age", "duration", 30 * 86400.0, "outbox age limit, e.g. 7d, 12h"),
    Option("outbox-sync", "choice", "full", "SQLite synchronous mode", ("full", "normal")),
    Option("node-timeout-intervals", "float", 3.0, "report intervals missed -> node offline"),
    Option("report-interval", "duration", 60.0, "a node's report interval until measured"),
    Option("ha-discovery", "bool", False, "publish Home Assistant MQTT discovery"),
    Option("ha-prefix", "str", "homeassistant", "Home Assistant discovery prefix"),
    Option("ha-discovery-remove", "bool", False, "remove the discovery entries, then exit"),
    Option("http-port", "int", 0, "port of /metrics and /healthz (0: off)"),
    Option("http-host", "str", "127.0.0.1", "address the HTTP endpoint listens on"),
)
BY_NAME = {o.name: o for o in OPTIONS}
BY_KEY = {o.key: o for o in OPTIONS}
SECRET_KEYS = {o.key for o in OPTIONS if o.kind == "secret"}


@dataclass(frozen=True)
class MqttTarget:
    host: str
    port: int
    tls: bool
    username: str | None


@dataclass
class Settings:
    """Validated settings. Secrets are excluded from repr so they never reach a log."""

    serial: str = "auto"
    baud: int = 115200
    mqtt: MqttTarget = field(default_factory=lambda: MqttTarget("localhost", 1883, False, None))
    mqtt_password: str | None = field(default=None, repr=False)
    mqtt_ca_file: Path | None = None
    mqtt_cert_file: Path | None = None
    mqtt_key_file: Path | None = None
    mqtt_client_id: str = ""
    mqtt_keepalive: int = 30
    topic_prefix: str = "iiot"
    state_topic: bool = False
    influx_url: str = "http://localhost:8086"
    influx_org: str = "iiot"
    influx_bucket: str = "telemetry"
    influx_token: str | None = field(default=None, repr=False)
    influx_batch_size: int = 5000
    influx_flush_ms: int = 500
    influx_timeout: float = 10.0
    retry_max: float = 60.0
    state_dir: Path = field(default_factory=lambda: Path(_default_state_dir()))
    no_mqtt: bool = False
    no_influx: bool = False
    log_level: str = "info"
    log_format: str = "text"
    stats_interval: float = 60.0
    keys: dict[int, bytes] = field(default_factory=dict, repr=False)
    keys_file: Path | None = None
    outbox_max_mb: float = 256.0
    outbox_max_age: float = 30 * 86400.0
    outbox_sync: str = "full"
    node_timeout_intervals: float = 3.0
    report_interval: float = 60.0
    ha_discovery: bool = False
    ha_prefix: str = "homeassistant"
    ha_discovery_remove: bool = False
    http_port: int = 0
    http_host: str = "127.0.0.1"
    sources: dict[str, str] = field(default_factory=dict)  # option -> flag|env|file|default

    @property
    def outbox_path(self) -> Path:
        return self.state_dir / "outbox.sqlite3"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="iiot-bridge",
        description="node2's serial lines -> durable outbox -> MQTT and InfluxDB.",
        epilog="Every flag is also an IIOT_<NAME> environment variable and a key of the "
        "--config file. Precedence: flag > environment > file > default.",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--version", action="version", version="iiot-bridge 0.1.0")
    for opt in OPTIONS:
        if not opt.flag:
            continue
        if opt.kind == "bool":
            parser.add_argument(f"--{opt.name}", action="store_true", help=opt.help)
        else:
            meta = opt.choices and "{" + ",".join(opt.choices) + "}" or opt.name.split("-")[-1]
            parser.add_argument(f"--{opt.name}", metavar=meta.upper(), help=opt.help)
    return parser


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_SCALE = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0}


def parse_duration(text: str) -> float:
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (like 500ms, 30s, 10m, 12h, 7d)")
    return float(match.group(1)) * _SCALE[match.group(2)]


def _convert(opt: Option, raw: Any, origin: str) -> Any:
    where = f"{origin} {opt.name}" if origin != "flag" else f"--{opt.name}"
    if origin == "env":
        where = opt.env
    try:
        if opt.kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(f"{raw!r} is not a boolean (true/false)")
        if isinstance(raw, bool):
            raise ValueError(f"{raw!r} is not a {opt.kind}")
        if opt.kind == "int":
            return int(str(raw), 10)
        if opt.kind == "float":
            value = float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(f"{raw!r} is not a finite number")
            return value
        if opt.kind == "duration":
            return float(raw) if isinstance(raw, (int, float)) else parse_duration(str(raw))
        if opt.kind == "choice":
            text = str(raw).strip().lower()
            if text not in opt.choices:
                raise ValueError(f"{raw!r} is not one of {', '.join(opt.choices)}")
            return text
        if not isinstance(raw, str):
            raise ValueError(f"{raw!r} is not a string")
        return raw
    except ValueError as err:
        message = str(err)
        if "invalid literal" in message:
            message = f"{raw!r} is not an integer"
        elif "could not convert" in message:
            message = f"{raw!r} is not a number"
        raise ConfigError(f"{where}: {message}") from err


def _read_toml(path: Path) -> dict[str, Any]:
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
        if norm in SECRET_KEYS:
            raise ConfigError(
                f"config file {path}: {key} is a secret; set it in the environment "
                f"({BY_KEY[norm].env}) or use {BY_KEY[norm].name}-file"
            )
        if norm not in BY_KEY or norm == "config":
            raise ConfigError(f"config file {path}: unknown setting {key!r}")
        out[norm] = value
    return out


def _read_secret(path: Path, what: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeError) as err:
        raise ConfigError(f"cannot read the {what} file {path}: {err}") from err
    if not text:
        raise ConfigError(f"the {what} file {path} is empty")
    return text


def parse_mqtt_url(url: str) -> MqttTarget:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ConfigError(f"--mqtt-url: scheme must be mqtt:// or mqtts://, got {url!r}")
    if parts.password is not None:
        raise ConfigError(
            "--mqtt-url: do not put the password in the URL; use IIOT_MQTT_PASSWORD "
            "or --mqtt-password-file"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"--mqtt-url: unexpected path or query in {url!r}")
    try:
        port = parts.port
    except ValueError as err:
        raise ConfigError(f"--mqtt-url: bad port in {url!r}") from err
    if not parts.hostname:
        raise ConfigError(f"--mqtt-url: no host in {url!r}")
    tls = parts.scheme == "mqtts"
    user = unquote(parts.username) if parts.username else None
    return MqttTarget(parts.hostname, port or (8883 if tls else 1883), tls, user)


def _check_influx_url(url: str) -> str:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as err:
        raise ConfigError(f"--influx-url: bad port in {url!r}") from err
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--influx-url: must be http[s]://host[:port], got {url!r}")
    return url.rstrip("/")


def _check_file(path: Path | None, what: str) -> Path | None:
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"{what}: {path} does not exist or is not a file")
    return path


def _check_state_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--state-dir: cannot create {path}: {err.strerror or err}") from err
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"--state-dir: {path} is not writable")
    return path


def load(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Parse and validate every setting; raise ConfigError on the first bad one."""
    environ = os.environ if environ is None else environ
    flags = vars(build_parser().parse_args(argv))
    config_path = flags.get("config") or environ.get("IIOT_CONFIG")
    from_file = _read_toml(Path(config_path)) if config_path else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for opt in OPTIONS:
        if opt.key in flags:
            raw, origin = flags[opt.key], "flag"
        elif opt.env in environ:
            raw, origin = environ[opt.env], "env"
        elif opt.key in from_file:
            raw, origin = from_file[opt.key], "file"
        else:
            values[opt.key] = opt.default
            sources[opt.key] = "default"
            continue
        values[opt.key] = _convert(opt, raw, origin)
        sources[opt.key] = origin
    return _validate(values, sources)


def _validate(v: dict[str, Any], sources: dict[str, str]) -> Settings:
    def positive(name: str, minimum: float = 1) -> None:
        if v[name] < minimum:
            raise ConfigError(f"--{name.replace('_', '-')}: must be at least {minimum}")

    for name, low in (
        ("baud", 50),
        ("mqtt_keepalive", 5),
        ("influx_batch_size", 1),
        ("influx_flush_ms", 1),
        ("influx_timeout", 0.1),
        ("retry_max", 1),
        ("stats_interval", 1),
        ("outbox_max_mb", 0.1),
        ("outbox_max_age", 1),
        ("node_timeout_intervals", 1),
        ("report_interval", 1),
    ):
        positive(name, low)
    if not 0 <= v["http_port"] <= 65535:
        raise ConfigError("--http-port: must be 0..65535")
    if not v["serial"].strip():
        raise ConfigError("--serial: empty; give a port path or 'auto'")
    prefix = v["topic_prefix"].strip("/")
    if not prefix or any(c in prefix for c in "#+\0"):
        raise ConfigError(f"--topic-prefix: {v['topic_prefix']!r} is not a usable topic prefix")
    if any(c in v["ha_prefix"] for c in "#+\0") or not v["ha_prefix"].strip("/"):
        raise ConfigError(f"--ha-prefix: {v['ha_prefix']!r} is not a usable topic prefix")
    if v["no_mqtt"] and v["no_influx"]:
        raise ConfigError("--no-mqtt and --no-influx together leave the bridge nothing to do")
    if v["ha_discovery_remove"] and v["no_mqtt"]:
        raise ConfigError("--ha-discovery-remove needs MQTT; drop --no-mqtt")
    mqtt = parse_mqtt_url(v["mqtt_url"])
    influx_url = _check_influx_url(v["influx_url"])
    password = v["mqtt_password"]
    if v["mqtt_password_file"]:
        password = _read_secret(Path(v["mqtt_password_file"]), "MQTT password")
    token = v["influx_token"]
    if v["influx_token_file"]:
        token = _read_secret(Path(v["influx_token_file"]), "InfluxDB token")
    ca = _check_file(v["mqtt_ca_file"] and Path(v["mqtt_ca_file"]), "--mqtt-ca-file")
    cert = _check_file(v["mqtt_cert_file"] and Path(v["mqtt_cert_file"]), "--mqtt-cert-file")
    key = _check_file(v["mqtt_key_file"] and Path(v["mqtt_key_file"]), "--mqtt-key-file")
    if (ca or cert) and not mqtt.tls:
        raise ConfigError("--mqtt-ca-file/--mqtt-cert-file need an mqtts:// --mqtt-url")
    if key and not cert:
        raise ConfigError("--mqtt-key-file needs --mqtt-cert-file")
    keys: dict[int, bytes] = {}
    keys_file = Path(v["keys"]) if v["keys"] else None
    if keys_file is not None:
        try:
            keys = load_keys(keys_file)
        except KeysError as err:
            raise ConfigError(f"--keys: {err}") from err
    state_dir = _check_state_dir(Path(v["state_dir"] or _default_state_dir()).expanduser())
    return Settings(
        serial=v["serial"].strip(),
        baud=v["baud"],
        mqtt=mqtt,
        mqtt_password=password,
        mqtt_ca_file=ca,
        mqtt_cert_file=cert,
        mqtt_key_file=key,
        mqtt_client_id=v["mqtt_client_id"],
        mqtt_keepalive=v["mqtt_keepalive"],
        topic_prefix=prefix,
        state_topic=v["state_topic"],
        influx_url=influx_url,
        influx_org=v["influx_org"],
        influx_bucket=v["influx_bucket"],
        influx_token=token,
        influx_batch_size=v["influx_batch_size"],
        influx_flush_ms=v["influx_flush_ms"],
        influx_timeout=v["influx_timeout"],
        retry_max=v["retry_max"],
        state_dir=state_dir,
        no_mqtt=v["no_mqtt"],
        no_influx=v["no_influx"],
        log_level=v["log_level"],
        log_format=v["log_format"],
        stats_interval=v["stats_interval"],
        keys=keys,
        keys_file=keys_file,
        outbox_max_mb=v["outbox_max_mb"],
        outbox_max_age=v["outbox_max_age"],
        outbox_sync=v["outbox_sync"],
        node_timeout_intervals=v["node_timeout_intervals"],
        report_interval=v["report_interval"],
        ha_discovery=v["ha_discovery"],
        ha_prefix=v["ha_prefix"].strip("/"),
        ha_discovery_remove=v["ha_discovery_remove"],
        http_port=v["http_port"],
        http_host=v["http_host"],
        sources=sources,
    )


def unknown_env(environ: Mapping[str, str]) -> list[str]:
    """IIOT_* variables that are not settings (likely typos), for a warning at start."""
    known = {o.env for o in OPTIONS}
    return sorted(k for k in environ if k.startswith("IIOT_") and k not in known)
