"""Test kit for the live view: a real terminal (tmux) and recorded broker traffic to replay.

* :class:`Tmux` runs commands in detached tmux sessions of a given size on a private server
  socket, reads the screen with ``capture-pane`` and types keys with ``send-keys``. Panes
  stay after their command exits, so the exit status and the last screen can be read.
* ``data/demo-capture.jsonl`` is what a real demo (three node1 instances, node2, the bridge,
  radio loss 0.2) published under ``iiot/`` for 50 s, recorded by ``record_capture.py``.
  :class:`Replayer` publishes it again on a test's own broker: the retained messages once,
  then the live ones in a loop, faster than real time, so a view always has work to do.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import polling
from paho.mqtt.enums import CallbackAPIVersion

CAPTURE = Path(__file__).resolve().parent / "data" / "demo-capture.jsonl"
WATCH_BIN = str(Path(sys.executable).parent / "iiot-watch")
USER = "demo"

# Screen checks start a tmux client each: poll them less often than in-memory checks.
wait_for = functools.partial(polling.wait_for, interval=0.05)


def load_capture(path: Path = CAPTURE) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def capture_nodes(records: list[dict[str, Any]]) -> list[str]:
    """The node names the capture has readings of."""
    names = {r["topic"].split("/")[1] for r in records if r["topic"].count("/") == 2}
    return sorted(names - {"bridge"})


def retained_by_bridge(topic: str) -> bool:
    parts = topic.split("/")
    if parts[-1] == "status":
        return True
    return len(parts) == 3 and parts[1] != "bridge" and parts[2] not in ("rssi", "snr")


class Tmux:
    """A private tmux server: sessions are terminals of a fixed size running one command."""

    def __init__(self, workdir: Path) -> None:
        if shutil.which("tmux") is None:
            raise RuntimeError("tmux is missing: `make system-deps` installs it")
        # The server's socket in the test's own directory: private, and removed with it.
        self.socket = str(workdir / "tmux.sock")
        self.config = workdir / "tmux.conf"
        # Keep a pane (its screen and exit status) after its command ends.
        self.config.write_text(
            "set -g remain-on-exit on\nset -g history-limit 2000\nset -s exit-empty off\n"
        )

    def tmux(self, *args: str) -> str:
        proc = subprocess.run(
            ["tmux", "-u", "-S", self.socket, "-f", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=20,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def start(
        self, name: str, argv: list[str], width: int, height: int, env: dict[str, str]
    ) -> None:
        settings = [f"-e{k}={v}" for k, v in {"LANG": "C.UTF-8", **env}.items()]
        self.tmux(
            "new-session", "-d", "-s", name, "-x", str(width), "-y", str(height),
            *settings, "--", *argv,
        )  # fmt: skip

    def screen(self, name: str, history: bool = False) -> str:
        """The visible screen (``history``: with the scrollback above it)."""
        return self.tmux("capture-pane", "-p", "-t", name, *(["-S", "-"] if history else []))

    def lines(self, name: str) -> list[str]:
        return self.screen(name).rstrip("\n").split("\n")

    def keys(self, name: str, *keys: str) -> None:
        self.tmux("send-keys", "-t", name, *keys)

    def pane(self, name: str, what: str) -> str:
        return self.tmux("display-message", "-p", "-t", name, f"#{{{what}}}").strip()

    def pid(self, name: str) -> int:
        return int(self.pane(name, "pane_pid"))

    def exit_status(self, name: str, timeout: float = 20.0) -> int:
        """Wait for the pane's command to end; its exit status (-N: killed by signal N)."""
        wait_for(lambda: self.pane(name, "pane_dead") == "1", timeout, f"{name} to exit")
        status = self.pane(name, "pane_dead_status")
        return int(status) if status else -int(self.pane(name, "pane_dead_signal") or 0)

    def kill(self, name: str) -> None:
        self.tmux("kill-session", "-t", name)

    def close(self) -> None:
        # -S, as the server was started with: -L would name another server's socket.
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=20)


class Replayer:
    """Publishes a capture on a broker from a thread, until :meth:`stop`."""

    def __init__(
        self, port: int, records: list[dict[str, Any]], password: str, speed: float = 10.0
    ) -> None:
        self.records = records
        self.speed = speed
        self.published = 0
        self._stop = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"replay-{uuid.uuid4()}")
        self.client.username_pw_set(USER, password)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        # Retained first, as a running bridge leaves them: statuses and the nodes' values
        # (not RSSI/SNR, which belong to one reception, nor the bridge's counters).
        for record in records:
            if retained_by_bridge(record["topic"]) or record["retain"]:
                self.client.publish(record["topic"], record["payload"], qos=1, retain=True)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            last = 0.0
            for record in self.records:
                if record["retain"]:
                    continue
                gap = max(0.0, record["t"] - last) / self.speed
                last = record["t"]
                if self._stop.wait(min(gap, 0.5)):
                    return
                self.client.publish(record["topic"], record["payload"], qos=0)
                self.published += 1

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=10)
        self.client.loop_stop()
        self.client.disconnect()
