"""Test kit for the bridge: a node2 stand-in on a real pty, the bridge as a subprocess, and
an MQTT observer. Hardware is faked only at the serial boundary; servers are real."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
import tty
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from polling import wait_for

from iiot_codec import decode_host_line, encode_line, encode_session, encode_telemetry

BRIDGE_BIN = str(Path(sys.executable).parent / "iiot-bridge")


class Gateway:
    """node2 as the bridge sees it: numbered lines on a pty, kept until acknowledged.

    ``path`` is a symlink to the current pty, so the test can "unplug" (close the pty) and
    "replug" (a new pty behind the same path) like a USB device coming back. It speaks the
    serial session as node2 does: answers the bridge's hello with the nonce and its boot,
    then sends every unacknowledged line again, and ignores acks naming another boot.
    """

    BOOT = 7

    def __init__(self, path: Path) -> None:
        self.path = path
        self.master = -1
        self.slave = -1
        self.n = 0
        self.unacked: dict[int, str] = {}
        self.acked = 0
        self.acks: list[int] = []
        self.downlinks: list[tuple[int, int, int | None]] = []  # settings the bridge sent
        self.hellos: list[int] = []  # nonces of the bridge's hellos
        self.boot = self.BOOT
        self._rx = bytearray()
        self._answering = False
        self._unanswered: list[int] = []
        self.plug()

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        # Raw mode from the start: no echo, no line editing, even before the bridge opens it.
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        tmp = self.path.with_suffix(".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(self.slave))
        tmp.replace(self.path)

    def unplug(self) -> None:
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1
        self.path.unlink(missing_ok=True)
        self._rx.clear()

    def write_raw(self, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + 30
        while view:
            try:
                sent = os.write(self.master, view)
                view = view[sent:]
            except BlockingIOError:
                # The pty buffer is full until the bridge reads: read acks meanwhile.
                self.pump()
                if time.monotonic() > deadline:
                    raise AssertionError("the bridge stopped reading the pty") from None
                time.sleep(0.001)

    def send_frame(self, frame: bytes, rssi: int | None = None, snr: float | None = None) -> int:
        self.n += 1
        line = encode_line(frame, rssi=rssi, snr=snr, n=self.n)
        self.unacked[self.n] = line
        self.write_raw(line.encode() + b"\n")
        return self.n

    def send_line(self, line: str) -> None:
        """An unnumbered line (console output, garbage, earlier firmware)."""
        self.write_raw(line.encode() + b"\n")

    def pump(self) -> None:
        """Read acknowledgements (forget the lines they cover) and answer hellos."""
        self._read_host()
        if self._answering:
            return  # writing an answer pumps: the outer call answers what this one read
        self._answering = True
        try:
            while self._unanswered and self.master >= 0:
                nonce = self._unanswered.pop(0)
                self.write_raw(encode_session(self.boot, nonce).encode() + b"\n")
                self.resend_unacked()
        finally:
            self._answering = False

    def _read_host(self) -> None:
        while self.master >= 0:
            try:
                chunk = os.read(self.master, 65536)
            except BlockingIOError:
                return
            except OSError as err:
                if err.errno == errno.EIO:  # the bridge closed its side
                    return
                raise
            if not chunk:
                return
            self._rx += chunk
            while b"\n" in self._rx:
                line, _, rest = bytes(self._rx).partition(b"\n")
                self._rx[:] = rest
                got = decode_host_line(line)
                if got is not None and got[0] == "dl":
                    self.downlinks.append(got[1:])
                if got is not None and got[0] == "hello":
                    self.hellos.append(got[1])
                    self._unanswered.append(got[1])
                acked = got is not None and got[0] == "ack" and got[2] in (None, self.boot)
                n = got[1] if got is not None and acked else None
                if n is not None:
                    self.acks.append(n)
                    self.acked = max(self.acked, n)
                    for k in [k for k in self.unacked if k <= n]:
                        del self.unacked[k]

    def wait_session(self, timeout: float = 20.0) -> None:
        """Wait until the bridge has said hello and been answered: from then on, every line
        written is taken (none is discarded as left over from before the bridge opened)."""
        count = len(self.hellos)

        def answered() -> bool:
            self.pump()
            return len(self.hellos) > count or (count > 0 and not self._unanswered)

        wait_for(answered, timeout, "the bridge's hello")

    def wait_acked(
        self, n: int | None = None, timeout: float = 30.0, resend_s: float = 2.0
    ) -> None:
        """Wait for the ack of line ``n`` (default: the last sent). Like node2, resend the
        unacknowledged lines when no ack has come for ``resend_s`` (the bridge flushes its
        input when it opens the port, and may have been down)."""
        target = self.n if n is None else n
        progress = [self.acked, time.monotonic()]

        def done() -> bool:
            self.pump()
            if self.acked != progress[0]:
                progress[:] = [self.acked, time.monotonic()]
            elif time.monotonic() - progress[1] > resend_s and self.master >= 0:
                self.resend_unacked()
                progress[1] = time.monotonic()
            return self.acked >= target

        wait_for(done, timeout, f"ack of line {target} (have {self.acked})")

    def resend_unacked(self) -> int:
        """What node2 does after the bridge comes back: send the unacknowledged lines again."""
        lines = [self.unacked[k] for k in sorted(self.unacked)]
        for line in lines:
            self.write_raw(line.encode() + b"\n")
        return len(lines)

    def close(self) -> None:
        self.unplug()


@dataclass
class Sent:
    """One telemetry frame the test sent, with what the bridge must store."""

    node: str
    fcnt: int
    readings: dict[str, float]
    age_s: int
    sent_at: float


class Node1:
    """Builds node1 frames with distinct values and ages (so timestamps differ by seconds)."""

    def __init__(self, src: int = 1, start_fcnt: int = 1, key: bytes | None = None) -> None:
        self.src = src
        self.fcnt = start_fcnt
        self.key = key
        self.sent: list[Sent] = []

    def frame(self, i: int, age_s: int = 0) -> tuple[bytes, Sent]:
        readings = {
            "temperature": round(20 + (i % 1000) / 100, 2),
            "humidity": round(40 + (i % 500) / 100, 2),
            "pressure": round(1000 + (i % 900) / 10, 2),
            "gas_resistance": float(100000 + i),
            "voltage": round(3 + (i % 100) / 1000, 3),
        }
        frame = encode_telemetry(
            self.src,
            self.fcnt,
            readings,
            age_ms=age_s * 1000,
            key=self.key,
            full_counter=self.fcnt == 1,
        )
        sent = Sent(f"node{self.src}", self.fcnt, readings, age_s, time.time())
        self.fcnt += 1
        return frame, sent


def send_series(
    gw: Gateway, node: Node1, count: int, start: int = 0, rssi: bool = False
) -> list[Sent]:
    """``count`` frames whose ages count down to 0 (1 s apart): the last is the newest."""
    out = []
    for i in range(start, start + count):
        frame, sent = node.frame(i, age_s=100000 - i)
        gw.send_frame(frame, rssi=-40 - i % 50 if rssi else None, snr=7.5 if rssi else None)
        node.sent.append(sent)
        out.append(sent)
    return out


class BridgeProcess:
    """``iiot-bridge`` as a real subprocess with a clean environment."""

    def __init__(
        self, args: Iterable[str], workdir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.args = [BRIDGE_BIN, *args]
        self.workdir = workdir
        self.log_path = workdir / f"bridge-{uuid.uuid4().hex[:6]}.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith("IIOT_")}
        base.update(env or {})
        self.env = base
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> BridgeProcess:
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.args,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.workdir,
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 20.0) -> None:
        wait_for(lambda: text in self.log() or self._died(), timeout, f"{text!r} in the bridge log")
        assert text in self.log(), self.log()[-3000:]

    def _died(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def assert_running(self) -> None:
        rc = self.proc and self.proc.poll()
        assert self.proc is not None and rc is None, (
            f"the bridge exited on its own ({rc}):\n{self.log()[-3000:]}"
        )

    def terminate(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self.log_file.close()
        return rc

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if hasattr(self, "log_file"):
            self.log_file.close()


class Observer:
    """An MQTT subscriber recording every message (topic, payload, retain flag)."""

    def __init__(
        self, port: int, topic: str = "#", user: str | None = None, password: str | None = None
    ) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"obs-{uuid.uuid4().hex[:8]}"
        )
        if user:
            self.client.username_pw_set(user, password)
        self.topic = topic
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(self.topic, qos=1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10), "observer could not subscribe"

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def payloads(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def snapshot(self) -> list[tuple[str, bytes, bool]]:
        with self.lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(
    port: int, topic: str = "#", settle: float = 0.5, timeout: float = 10.0
) -> dict[str, bytes]:
    """Every retained message under ``topic`` as a fresh subscriber sees it."""
    obs = Observer(port, topic)
    try:
        last = -1
        deadline = time.monotonic() + timeout
        # Retained messages arrive right after SUBACK; wait until the flow stops.
        while time.monotonic() < deadline:
            time.sleep(settle)
            count = len(obs.snapshot())
            if count == last:
                break
            last = count
        return {t: p for t, p, r in obs.snapshot() if r}
    finally:
        obs.close()


class SmallDisk:
    """A small file system of its own (tmpfs, mounted by the test) for the outbox: it can
    be filled, emptied and switched read-only and back while the bridge runs."""

    def __init__(self, path: Path, size_kb: int) -> None:
        self.path = path
        path.mkdir(parents=True)
        self._mount("-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs", str(path))
        self.filler = path / "filler"

    @staticmethod
    def _mount(*args: str) -> None:
        proc = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, f"mount {' '.join(args)}: {proc.stderr.strip()}"

    def free_kb(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize // 1024

    def fill(self, leave_kb: int) -> None:
        """Take all but ``leave_kb`` of the free space (as another program's file would)."""
        with open(self.filler, "ab") as f:
            f.write(b"\0" * max(0, (self.free_kb() - leave_kb) * 1024))

    def empty(self) -> None:
        self.filler.unlink(missing_ok=True)

    def read_only(self, on: bool) -> None:
        self._mount("-o", f"remount,{'ro' if on else 'rw'}", str(self.path))

    def close(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=30)
