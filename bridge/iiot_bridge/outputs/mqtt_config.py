"""The MQTT sink's settings, and a paho client built from them (also used by
``--ha-discovery-remove``)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ..settings import ConfigError, Group, setting


@dataclass(frozen=True)
class MqttTarget:
    host: str
    port: int
    tls: bool
    username: str | None


def status_topic(prefix: str, bridge_id: str) -> str:
    """A bridge's ``online``/``offline`` topic (retained; ``offline`` is also its last will):
    one per bridge, so several bridges of one site each say their own (issue 15)."""
    return f"{prefix}/bridge/{bridge_id}/status"


def parse_mqtt_url(url: str) -> MqttTarget:
    """``mqtt[s]://[user@]host[:port]``; ValueError saying what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"scheme must be mqtt:// or mqtts://, got {url!r}")
    if parts.password is not None:
        raise ValueError(
            "do not put the password in the URL; use IIOT_MQTT_PASSWORD or --mqtt-password-file"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"unexpected path or query in {url!r}")
    try:
        port = parts.port
    except ValueError as err:
        raise ValueError(f"bad port in {url!r}") from err
    if not parts.hostname:
        raise ValueError(f"no host in {url!r}")
    tls = parts.scheme == "mqtts"
    user = unquote(parts.username) if parts.username else None
    return MqttTarget(parts.hostname, port or (8883 if tls else 1883), tls, user)


def _url(value: str) -> str:
    parse_mqtt_url(value)
    return value


def _topic_prefix(value: str) -> str:
    prefix = value.strip("/")
    if not prefix or any(c in prefix for c in "#+\0"):
        raise ValueError(f"{value!r} is not a usable topic prefix")
    return prefix


def _file(value: Path) -> Path:
    if not value.is_file():
        raise ValueError(f"{value} does not exist or is not a file")
    return value


def read_secret(path: Path, what: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeError) as err:
        raise ConfigError(f"cannot read the {what} file {path}: {err}") from err
    if not text:
        raise ConfigError(f"the {what} file {path} is empty")
    return text


@dataclass
class MqttSettings(Group):
    title = "MQTT"

    no_mqtt: bool = setting(False, "disable the MQTT sink")
    mqtt_url: str = setting(
        "mqtt://localhost:1883",
        "broker: mqtt[s]://[user@]host[:port] (mqtts defaults to port 8883)",
        check=_url,
    )
    mqtt_password: str | None = setting(
        None, "MQTT password (environment only)", kind="secret", flag=False
    )
    mqtt_password_file: Path | None = setting(None, "file holding the MQTT password", kind="path")
    mqtt_ca_file: Path | None = setting(
        None,
        "CA certificate for mqtts://",
        kind="path",
        shown="the system CAs",
        check=_file,
    )
    mqtt_cert_file: Path | None = setting(
        None, "client certificate for mqtts://", kind="path", check=_file
    )
    mqtt_key_file: Path | None = setting(
        None, "the client certificate's private key", kind="path", check=_file
    )
    mqtt_client_id: str = setting("", "MQTT client id", shown="iiot-bridge-<bridge id>")
    mqtt_keepalive: int = setting(30, "MQTT keepalive, seconds", low=5, high=65535)
    topic_prefix: str = setting("iiot", "first level of every topic", check=_topic_prefix)
    state_topic: bool = setting(False, "also publish <prefix>/<node>/state JSON")
    ha_discovery: bool = setting(False, "publish Home Assistant MQTT discovery")
    ha_prefix: str = setting(
        "homeassistant", "Home Assistant discovery prefix", check=_topic_prefix
    )
    ha_discovery_remove: bool = setting(
        False, "remove every discovery entry the bridge published, then exit"
    )
    target: MqttTarget = field(init=False, repr=False)
    # [gateways] not a setting: the bridge's id (--bridge-id), filled in by config.load
    bridge_id: str = field(default="bridge", repr=False)

    def check(self) -> None:
        self.target = parse_mqtt_url(self.mqtt_url)
        if self.mqtt_password_file is not None:
            self.mqtt_password = read_secret(self.mqtt_password_file, "MQTT password")
        if (self.mqtt_ca_file or self.mqtt_cert_file) and not self.target.tls:
            raise ConfigError("--mqtt-ca-file/--mqtt-cert-file need an mqtts:// --mqtt-url")
        if self.mqtt_key_file and not self.mqtt_cert_file:
            raise ConfigError("--mqtt-key-file needs --mqtt-cert-file")
        if self.ha_discovery_remove and self.no_mqtt:
            raise ConfigError("--ha-discovery-remove needs MQTT; drop --no-mqtt")

    def __repr__(self) -> str:  # the password must never reach a log
        t = self.target
        return f"MqttSettings({t.host}:{t.port} tls={t.tls} user={t.username})"


def new_client(cfg: MqttSettings, suffix: str = "") -> mqtt.Client:
    """A configured (not yet connected) paho client with the bridge's last will."""
    client_id = cfg.mqtt_client_id or f"iiot-bridge-{cfg.bridge_id}"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id + suffix,
        protocol=mqtt.MQTTv311,
        clean_session=True,
    )
    if cfg.target.username:
        client.username_pw_set(cfg.target.username, cfg.mqtt_password)
    if cfg.target.tls:
        client.tls_set(
            ca_certs=str(cfg.mqtt_ca_file) if cfg.mqtt_ca_file else None,
            certfile=str(cfg.mqtt_cert_file) if cfg.mqtt_cert_file else None,
            keyfile=str(cfg.mqtt_key_file) if cfg.mqtt_key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    client.will_set(status_topic(cfg.topic_prefix, cfg.bridge_id), "offline", qos=1, retain=True)
    # 0 = no paho limit: the sink bounds what is in flight itself (its window); with a
    # limit, paho rescans every in-flight message on each PUBACK, quadratic in the window.
    client.max_inflight_messages_set(0)
    client.reconnect_delay_set(1, 2)
    return client
