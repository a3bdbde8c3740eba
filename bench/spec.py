"""Declared figures of a benchmark part, so every figure appears even when it cannot be measured."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .figures import Figure, Target, measured, unavailable


class Unavailable(Exception):
    """A dependency of a benchmark part is missing or broken; the message says which."""


@dataclass(frozen=True)
class Spec:
    key: str
    label: str
    unit: str
    target: Target | None = None
    compared: bool = False  # measured side by side with the peer (ours, peer's, ratio)


class Collector:
    """Values a part measured so far; ``figures`` fills the rest with the reason they lack."""

    def __init__(self, section: str, specs: Iterable[Spec]) -> None:
        self.section = section
        self.specs = {spec.key: spec for spec in specs}
        self.values: dict[str, tuple[float, dict[str, Any]]] = {}
        self.reasons: dict[str, str] = {}
        self.peers: dict[str, float] = {}
        self.peer_reasons: dict[str, str] = {}

    def put(self, key: str, value: float, **detail: Any) -> None:
        if key not in self.specs:
            raise KeyError(f"undeclared figure {key!r}")
        self.values[key] = (value, detail)

    def missing(self, key: str, reason: str) -> None:
        if key not in self.specs:
            raise KeyError(f"undeclared figure {key!r}")
        self.reasons[key] = reason

    def put_peer(self, key: str, value: float | None, reason: str = "") -> None:
        """The peer's figure for a side-by-side row (None: ``reason`` says why)."""
        if key not in self.specs or not self.specs[key].compared:
            raise KeyError(f"undeclared side-by-side figure {key!r}")
        if value is None:
            self.peer_reasons[key] = reason or "not measured"
        else:
            self.peers[key] = value

    def figures(self, default_reason: str) -> list[Figure]:
        out = []
        for key, spec in self.specs.items():
            if key in self.values:
                value, detail = self.values[key]
                fig = measured(
                    key, self.section, spec.label, value, spec.unit, spec.target, **detail
                )
            else:
                reason = self.reasons.get(key, default_reason)
                fig = unavailable(key, self.section, spec.label, spec.unit, reason, spec.target)
            if spec.compared:
                fig.compared = True
                fig.peer = self.peers.get(key)
                if fig.peer is None:
                    fig.peer_reason = self.peer_reasons.get(
                        key, self.reasons.get(key, default_reason)
                    )
            out.append(fig)
        return out


def run_part(collector: Collector, body: Callable[[Collector], None]) -> list[Figure]:
    """Run ``body``; a dependency problem marks what it did not measure as not available."""
    try:
        body(collector)
    except Unavailable as exc:
        return collector.figures(str(exc))
    return collector.figures("not measured in this run")
