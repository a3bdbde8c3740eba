"""iiot-watch's session: the MQTT client, the terminal (keys, full screen) and the main loop."""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
import termios
import time
import tty
from collections.abc import Iterator
from typing import TextIO

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console
from rich.live import Live

from .outputs.mqtt_config import MqttTarget, parse_mqtt_url
from .watch import Stop
from .watch_render import Header, Screen
from .watch_state import WatchState

# Key escape sequences a terminal sends, by the name Screen.key() takes.
ESCAPES = {"\x1b[C": "right", "\x1b[D": "left", "\x1b[6~": "pgdn", "\x1b[5~": "pgup"}
REDRAW_S = 0.5


def subscribe_command(
    target: MqttTarget, prefix: str, password: str | None, show_password: bool
) -> str:
    """The mosquitto_sub command that shows the same topics from another terminal."""
    words = ["mosquitto_sub", "-h", target.host, "-p", str(target.port)]
    if target.username:
        words += ["-u", target.username]
    if target.tls:
        words += ["--cafile", "ca.crt"]
    line = " ".join(shlex.quote(w) for w in words)
    if target.username and password:
        line += " -P " + (shlex.quote(password) if show_password else '"$IIOT_MQTT_PASSWORD"')
    return line + f" -t {shlex.quote(prefix + '/#')} -v"


def display_url(target: MqttTarget) -> str:
    scheme = "mqtts" if target.tls else "mqtt"
    user = f"{target.username}@" if target.username else ""
    return f"{scheme}://{user}{target.host}:{target.port}"


def _password(args: argparse.Namespace) -> str | None:
    if args.mqtt_password_file:
        with open(args.mqtt_password_file, encoding="utf-8") as handle:
            return handle.read().strip()
    return os.environ.get("IIOT_MQTT_PASSWORD")


def _emit(line: str, stop: Stop) -> None:
    try:
        print(line, flush=True)
    except (BrokenPipeError, ValueError):
        # The reader went away (``iiot-watch | head``): stop quietly; Python must not try to
        # flush the dead pipe again at exit either.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        stop()


def connect(
    state: WatchState,
    target: MqttTarget,
    password: str | None,
    ca_file: str | None,
    plain: bool,
    stop: Stop,
) -> mqtt.Client:
    """A paho client on its own network thread, feeding ``state`` (and stdout if plain)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"iiot-watch-{os.getpid()}")
    if target.username:
        client.username_pw_set(target.username, password)
    if target.tls:
        client.tls_set(ca_certs=ca_file)

    def on_connect(cl: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        failed = bool(getattr(reason, "is_failure", False))
        state.set_connection(not failed, str(reason) if failed else "")
        if not failed:
            cl.subscribe(f"{state.prefix}/#", qos=1)
        elif plain:
            _emit(f"broker refused the connection: {reason}", stop)

    def on_disconnect(_c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        state.set_connection(False, str(reason))

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        node, name, text = state.apply(msg.topic, bytes(msg.payload), retained=bool(msg.retain))
        if plain and node:
            _emit(f"{time.strftime('%H:%M:%S')} {node} {name} {text}", stop)

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_message = on_message
    client.reconnect_delay_set(1, 30)
    client.connect_async(target.host, target.port, keepalive=30)
    client.loop_start()
    return client


@contextlib.contextmanager
def keys_mode(stream: TextIO) -> Iterator[bool]:
    """Single key presses without Enter or echo, restored on the way out (True if a tty)."""
    try:
        fd = stream.fileno()
        saved = termios.tcgetattr(fd)
    except (OSError, ValueError, termios.error):
        yield False
        return
    try:
        tty.setcbreak(fd)
        yield True
    finally:
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def read_keys(stream: TextIO) -> list[str]:
    """The keys waiting on the terminal (escape sequences named as in ESCAPES)."""
    try:
        data = os.read(stream.fileno(), 64).decode("utf-8", "replace")
    except OSError:
        return []
    keys: list[str] = []
    while data:
        for seq, name in ESCAPES.items():
            if data.startswith(seq):
                keys.append(name)
                data = data[len(seq) :]
                break
        else:
            keys.append(data[0])
            data = data[1:]
    return keys


def _follow_size(console: Console) -> None:
    """The terminal's size now (after a resize too), not $COLUMNS/$LINES, which a shell may
    have exported long ago and rich would otherwise believe."""
    with contextlib.suppress(OSError):
        size = os.get_terminal_size(sys.stdout.fileno())
        console.size = (size.columns, size.lines)


def live(screen: Screen, stop: Stop, deadline: float | None) -> None:
    """The full-screen view until a signal, the q key or ``deadline``."""
    console = Console()
    _follow_size(console)
    with (
        keys_mode(sys.stdin) as interactive,
        Live(
            screen.render(console),
            console=console,
            screen=True,
            auto_refresh=False,
            vertical_overflow="crop",
        ) as view,
    ):
        next_draw = 0.0
        while not stop.requested:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            if now >= next_draw:
                _follow_size(console)
                view.update(screen.render(console), refresh=True)
                next_draw = now + REDRAW_S
            if stop.wait(next_draw - now, sys.stdin if interactive else None):
                if not all(screen.key(k) for k in read_keys(sys.stdin)):
                    return
                next_draw = 0.0  # show the key's effect at once


def run(args: argparse.Namespace, stop: Stop) -> int:
    try:
        target = parse_mqtt_url(args.mqtt_url)
    except ValueError as exc:
        print(f"iiot-watch: --mqtt-url: {exc}", file=sys.stderr)
        return 2
    try:
        password = _password(args)
    except (OSError, UnicodeError) as exc:
        print(f"iiot-watch: --mqtt-password-file: {exc}", file=sys.stderr)
        return 2
    state = WatchState(args.topic_prefix, window_s=args.window)
    plain = args.plain or not sys.stdout.isatty()
    deadline = time.monotonic() + args.duration if args.duration else None
    client = connect(state, target, password, args.mqtt_ca_file, plain, stop)
    try:
        if plain:
            while not stop.requested and (deadline is None or time.monotonic() < deadline):
                stop.wait(0.5 if deadline is None else min(0.5, deadline - time.monotonic()))
        else:
            sub = subscribe_command(target, state.prefix, password, args.show_password)
            header = Header(display_url(target), args.influx_url, sub)
            live(Screen(state, header), stop, deadline)
    finally:
        client.loop_stop()
        client.disconnect()
    return 0
