"""Real servers on free local ports, for tests, `make demo` and `make bench`.

* :class:`Mosquitto` runs ``/usr/sbin/mosquitto`` with a generated config (one listener on
  127.0.0.1, optional persistence). Anonymous by default; with ``users`` (for instance one
  user and a :func:`new_password`) it refuses anonymous clients and builds a password file
  with ``mosquitto_passwd``, as a production broker does.
  It can be stopped, SIGKILLed and restarted on the same port, so clients see a real outage.
* :class:`Redis` runs Debian's ``redis-server`` (the bridges' shared duplicate claims).
* :class:`VictoriaMetrics` runs ``/usr/bin/victoria-metrics``, which accepts the InfluxDB v2
  write API influxdb-client uses (``/api/v2/write``). Read back with :meth:`export` (raw
  samples, ``/api/v1/export``) or :meth:`query` (``/api/v1/query``). Series are named
  ``<measurement>_<field>``, e.g. ``temperature_value``, with the tags as labels; timestamps
  come back in milliseconds (VictoriaMetrics keeps millisecond precision).

Both are context managers and wait until the server answers by polling, never by sleeping
a fixed time. Plain CPython, no test framework needed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

MOSQUITTO_BIN = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD_BIN = "/usr/bin/mosquitto_passwd"
VICTORIA_BIN = "/usr/bin/victoria-metrics"
REDIS_BIN = "/usr/bin/redis-server"  # [gateways] issue 15: the bridges' shared dedup store


class ServerError(RuntimeError):
    """A local server could not be started or did not become ready in time."""


def new_password(nbytes: int = 8) -> str:
    """A random password of hex digits (nothing a shell or a URL needs to quote)."""
    return secrets.token_hex(nbytes)


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, interval: float = 0.02
) -> None:
    """Poll ``check`` until it returns True; ServerError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ServerError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class _Process:
    """A child process with start/stop/kill/restart and a log file in ``workdir``."""

    name = "server"

    def __init__(self, workdir: Path | None, port: int | None, own_session: bool = False) -> None:
        self._own_dir = workdir is None
        # Absolute: the server runs in this directory and its config names files in it.
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"iiot-{self.name}-")).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        # A session (process group) of its own: a Ctrl-C in the terminal does not reach the
        # server, which its owner then stops in order (the demo reads the database last).
        self.own_session = own_session
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / f"{self.name}.log"

    # Subclasses provide the command line and the readiness check.
    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write config files before each start."""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 20.0) -> Self:
        if self.running:
            return self
        self.prepare()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=self.own_session,
            )
        proc = self.proc

        def check() -> bool:
            if proc.poll() is not None:
                raise ServerError(f"{self.name} exited with {proc.returncode}: {self.log_tail()}")
            return self.ready()

        wait_until(check, timeout, f"{self.name} on port {self.port}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait: the server shuts down cleanly."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL: the server disappears without a goodbye (a crash or a pulled cable)."""
        self._end(signal.SIGKILL, 10.0)

    def restart(self, timeout: float = 20.0) -> Self:
        self.stop()
        return self.start(timeout)

    def _end(self, sig: int, timeout: float) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        # The port must be free again before a restart can bind it.
        wait_until(lambda: not port_open(self.port), 10.0, f"{self.name} to release its port")

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def close(self) -> None:
        self.kill()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Mosquitto(_Process):
    """A Mosquitto broker on 127.0.0.1:``port``.

    ``users`` maps user names to passwords: with it, anonymous clients are refused and a
    password file is generated with ``mosquitto_passwd``. ``persistence`` keeps retained
    messages and sessions across restarts (in ``workdir``), like a production broker.
    ``own_session`` (both servers) keeps a terminal's Ctrl-C from reaching the server.
    """

    name = "mosquitto"

    def __init__(
        self,
        workdir: Path | None = None,
        port: int | None = None,
        users: dict[str, str] | None = None,
        persistence: bool = True,
        extra_config: str = "",
        own_session: bool = False,
    ) -> None:
        super().__init__(workdir, port, own_session)
        self.users = dict(users or {})
        self.persistence = persistence
        self.extra_config = extra_config
        self.config_path = self.workdir / "mosquitto.conf"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def user_url(self, user: str | None = None) -> str:
        """``mqtt://user@127.0.0.1:port`` for ``user`` (default: the first of ``users``); the
        plain :attr:`url` when the broker has no users. The password never goes in a URL."""
        user = user or next(iter(self.users), None)
        return f"mqtt://{user}@127.0.0.1:{self.port}" if user else self.url

    def prepare(self) -> None:
        lines = [f"listener {self.port} 127.0.0.1"]
        if self.users:
            pw_file = self.workdir / "passwd"
            pw_file.unlink(missing_ok=True)
            for user, password in self.users.items():
                create = ["-c"] if not pw_file.exists() else []
                subprocess.run(
                    [MOSQUITTO_PASSWD_BIN, "-b", *create, str(pw_file), user, password],
                    check=True,
                    capture_output=True,
                    timeout=30,
                )
            pw_file.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {pw_file}"]
        else:
            lines.append("allow_anonymous true")
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/"]
        lines += ["log_dest stderr", "log_type error", "log_type warning", "log_type notice"]
        if os.getuid() == 0:
            # As root the broker would switch to user "mosquitto", which may not be able to
            # read a temporary directory.
            lines.append("user root")
        if self.extra_config:
            lines.append(self.extra_config)
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def command(self) -> list[str]:
        return [MOSQUITTO_BIN, "-c", str(self.config_path)]

    def ready(self) -> bool:
        return port_open(self.port)


class VictoriaMetrics(_Process):
    """VictoriaMetrics single-node on 127.0.0.1:``port``, data in ``workdir``/data.

    Started with ``-search.latencyOffset=0s`` and no response cache so that written points
    can be read back promptly; ingestion still buffers for about a second (1.79 does not
    flush that buffer on ``/internal/force_flush``), so poll with :meth:`wait_samples`
    instead of reading once. ``dedup_ms`` > 0 keeps one sample
    per series and interval, the closest VictoriaMetrics has to InfluxDB's "same series and
    timestamp overwrites": with 1 ms (the storage precision) a point written twice is stored
    once. Leave it at 0 to see every sample as written.
    """

    name = "victoria-metrics"

    def __init__(
        self,
        workdir: Path | None = None,
        port: int | None = None,
        dedup_ms: int = 1,
        extra_args: list[str] | None = None,
        own_session: bool = False,
    ) -> None:
        super().__init__(workdir, port, own_session)
        self.dedup_ms = dedup_ms
        self.extra_args = list(extra_args or [])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        args = [
            VICTORIA_BIN,
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.workdir / 'data'}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-loggerLevel=WARN",
        ]
        if self.dedup_ms > 0:
            args.append(f"-dedup.minScrapeInterval={self.dedup_ms}ms")
        return args + self.extra_args

    def ready(self) -> bool:
        return self._get("/health", timeout=1.0).strip() == b"OK"

    def _get(self, path: str, timeout: float = 10.0) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
            return bytes(resp.read())

    def flush(self) -> None:
        """Flush in-memory parts to make recent writes searchable (``/internal/force_flush``)."""
        self._get("/internal/force_flush")

    def export(self, match: str = '{__name__=~".+"}') -> list[dict[str, Any]]:
        """Raw samples: one dict per series with ``metric`` (labels), ``values``, ``timestamps``
        (ms). Writes from the last second or so may not be visible yet: see wait_samples."""
        self.flush()
        query = urllib.parse.urlencode({"match[]": match, "start": "0"})
        body = self._get(f"/api/v1/export?{query}")
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    def samples(self, match: str = '{__name__=~".+"}') -> list[tuple[dict[str, str], int, float]]:
        """Flat list of (labels, timestamp_ms, value) for every stored sample."""
        out: list[tuple[dict[str, str], int, float]] = []
        for series in self.export(match):
            labels = series["metric"]
            for ts, value in zip(series["timestamps"], series["values"], strict=True):
                out.append((labels, int(ts), float(value)))
        return out

    def wait_samples(
        self,
        match: str,
        count: int,
        timeout: float = 30.0,
    ) -> list[tuple[dict[str, str], int, float]]:
        """Poll until ``match`` selects at least ``count`` samples, then return them all."""
        found: list[tuple[dict[str, str], int, float]] = []

        def enough() -> bool:
            nonlocal found
            found = self.samples(match)
            return len(found) >= count

        try:
            wait_until(enough, timeout, f"{count} samples of {match}", 0.1)
        except ServerError as err:
            raise ServerError(f"{err} (found {len(found)})") from None
        return found

    def query(self, promql: str) -> dict[str, Any]:
        """An instant query (``/api/v1/query``); returns the decoded JSON ``data``."""
        self.flush()
        body = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        return dict(json.loads(body)["data"])


class Redis(_Process):  # [gateways] issue 15
    """Debian's ``redis-server`` on 127.0.0.1:``port``, data in ``workdir``.

    ``appendonly`` (the default) keeps every write in the append-only file before the
    reply, as a deployment for the bridges' duplicate claims should: a SIGKILL and a
    restart on the same directory keep every key. Without it, a restart forgets them."""

    name = "redis"

    def __init__(
        self, workdir: Path | None = None, port: int | None = None, appendonly: bool = True
    ) -> None:
        super().__init__(workdir, port)
        self.appendonly = appendonly

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            REDIS_BIN,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.workdir),
            "--appendonly", "yes" if self.appendonly else "no",
            "--save", "",
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip

    def ready(self) -> bool:
        # A PING answered over RESP: the port alone is open while it still loads its data.
        with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")


def http_status(url: str, timeout: float = 2.0) -> int:
    """HTTP status of a GET (errors included), or 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return 0
