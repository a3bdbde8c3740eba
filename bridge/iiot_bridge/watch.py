"""iiot-watch: a live terminal view of any deployment, built from its MQTT topics alone.

It subscribes to ``<prefix>/#``: per node each metric's latest value, a short history for a
sparkline and the node's link; ``<prefix>/<node>/status`` gives availability and
``<prefix>/bridge/...`` the bridge's counters. On a terminal it draws a full-screen view
(keys 1/2/3 or Tab switch views, n/p turn pages, q quits); otherwise (a pipe, a log file)
it prints one plain line per message, so the same command works in scripts and CI logs.

Modules: this one (command line, signals), ``watch_session`` (MQTT client, terminal, main
loop), ``watch_state`` (the model), ``watch_render`` (the screen: header, pages, key line),
``watch_views`` (the overview, readings and health views), ``watch_units`` (units, labels,
sparklines).

Ctrl-C, SIGTERM and SIGHUP end it cleanly with status 0, however often they arrive: the
handlers are installed before anything else and only set a flag, so no KeyboardInterrupt
can surface inside a library call (paho's thread join, rich's screen restore).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import sys
from types import FrameType
from typing import TextIO

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stop:
    """Set by a signal (or the q key); wakes the main loop at once through a pipe."""

    def __init__(self) -> None:
        self.requested = False
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)

    def __call__(self, _signum: int = 0, _frame: FrameType | None = None) -> None:
        self.requested = True
        with contextlib.suppress(OSError):  # the pipe is full: a wake-up is pending anyway
            os.write(self._w, b"x")

    def fileno(self) -> int:
        return self._r

    def install(self) -> None:
        for sig in SIGNALS:
            signal.signal(sig, self)

    @staticmethod
    def ignore() -> None:
        """On the way out: the interpreter's shutdown puts back the default action of every
        signal with a Python handler (a late Ctrl-C would then kill it), but not SIG_IGN."""
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_IGN)

    def wait(self, timeout: float, also: TextIO | None = None) -> bool:
        """Sleep until stopped, ``also`` is readable or ``timeout``; True if ``also`` is."""
        watched = [self.fileno()] if also is None else [self.fileno(), also.fileno()]
        ready, _, _ = select.select(watched, [], [], max(0.0, timeout))
        if self.fileno() in ready:
            with contextlib.suppress(OSError):
                os.read(self._r, 512)
        return also is not None and also.fileno() in ready


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="iiot-watch", description="Live terminal view of the telemetry on an MQTT broker."
    )
    parser.add_argument(
        "--mqtt-url",
        default=env("IIOT_MQTT_URL", "mqtt://localhost:1883"),
        help="broker, mqtt[s]://[user@]host[:port] (default: $IIOT_MQTT_URL or %(default)s)",
    )
    parser.add_argument(
        "--topic-prefix", default=env("IIOT_TOPIC_PREFIX", "iiot"), help="default %(default)s"
    )
    parser.add_argument(
        "--mqtt-password-file", help="file holding the MQTT password (else $IIOT_MQTT_PASSWORD)"
    )
    parser.add_argument("--mqtt-ca-file", help="CA certificate for mqtts://")
    parser.add_argument(
        "--influx-url",
        default=env("IIOT_INFLUX_URL"),
        help="the database's address, shown in the header (default: $IIOT_INFLUX_URL)",
    )
    parser.add_argument(
        "--show-password",
        action="store_true",
        help="write the password into the header's mosquitto_sub command (for a demo)",
    )
    parser.add_argument(
        "--plain", action="store_true", help="one line per message even on a terminal"
    )
    parser.add_argument("--duration", type=float, default=0, help="exit after this many seconds")
    parser.add_argument(
        "--window", type=float, default=300, help="seconds of history in the sparklines"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    stop = Stop()
    stop.install()  # before the heavy imports below: Ctrl-C from here on only sets the flag
    try:
        args = build_parser().parse_args(argv)
        from . import watch_session  # paho, rich: imported once the signals are handled

        return watch_session.run(args, stop)
    finally:
        stop.ignore()


if __name__ == "__main__":
    sys.exit(main())
