"""The figure model: one measured (or unavailable) number with its unit and target."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Target:
    """A goal from the issues: ``op`` is ">=" or "<=", compared with ``limit``.

    ``on`` says what the limit applies to: the figure's value, or (for a figure measured
    side by side with the peer) the ratio ours / peer's.
    """

    op: str
    limit: float
    text: str = ""  # shown instead of "op limit unit" when the goal needs words
    on: str = "value"  # or "ratio"

    def met(self, value: float) -> bool:
        if self.op == ">=":
            return value >= self.limit
        if self.op == "<=":
            return value <= self.limit
        raise ValueError(f"unknown target operator {self.op!r}")

    def describe(self, unit: str) -> str:
        if self.text:
            return self.text
        limit = f"{self.limit:g}"
        if self.on == "ratio":
            return f"ratio {'≥' if self.op == '>=' else '≤'} {limit}"
        return f"{'≥' if self.op == '>=' else '≤'} {limit} {unit}".rstrip()


@dataclass
class Figure:
    """One row of the results table. ``value`` is None exactly when ``reason`` says why.

    A side-by-side row also has the peer's figure (``peer``, or ``peer_reason``), measured
    in the same run on the same load; ``ratio`` is ours / the peer's.
    """

    key: str
    section: str
    label: str
    unit: str
    value: float | None = None
    target: Target | None = None
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    compared: bool = False
    peer: float | None = None
    peer_reason: str = ""

    @property
    def available(self) -> bool:
        return self.value is not None

    @property
    def ratio(self) -> float | None:
        if not self.compared or self.value is None or not self.peer:
            return None
        return self.value / self.peer

    @property
    def meets_target(self) -> bool | None:
        if self.target is None or self.value is None:
            return None
        if self.target.on == "ratio":
            ratio = self.ratio
            if ratio is None:
                if self.peer == 0 and self.value == 0:
                    return True  # a "lose nothing" goal both meet: 0 / 0
                return None
            return self.target.met(ratio)
        return self.target.met(self.value)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key,
            "section": self.section,
            "label": self.label,
            "unit": self.unit,
            "available": self.available,
            "value": self.value,
        }
        if not self.available:
            out["value"] = f"not available: {self.reason}"
        if self.compared:
            out["peer"] = (
                self.peer if self.peer is not None else f"not available: {self.peer_reason}"
            )
            ratio = self.ratio
            out["ratio"] = round(ratio, 4) if ratio is not None else None
        if self.target is not None:
            out["target"] = {**asdict(self.target), "description": self.target.describe(self.unit)}
            out["meets_target"] = self.meets_target
        if self.detail:
            out["detail"] = self.detail
        return out

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Figure:
        """The inverse of :meth:`to_json` (an earlier run's figure, read back)."""

        def split(value: Any) -> tuple[float | None, str]:
            if isinstance(value, str):
                return None, value.removeprefix("not available: ")
            return (None if value is None else float(value)), ""

        value, reason = split(doc.get("value"))
        peer, peer_reason = split(doc.get("peer"))
        target = doc.get("target")
        return cls(
            key=doc["key"],
            section=doc["section"],
            label=doc["label"],
            unit=doc["unit"],
            value=value,
            target=None
            if target is None
            else Target(target["op"], target["limit"], target.get("text", ""), target["on"]),
            reason=reason,
            detail=dict(doc.get("detail", {})),
            compared="peer" in doc,
            peer=peer,
            peer_reason=peer_reason,
        )


def merge(earlier: list[Figure], fresh: list[Figure]) -> list[Figure]:
    """An earlier run's figures with this run's in their place (same key), and this run's
    new keys after them: ``--only`` updates its parts and keeps the rest."""
    by_key = {fig.key: fig for fig in fresh}
    merged = [by_key.pop(fig.key, fig) for fig in earlier]
    return merged + [fig for fig in fresh if fig.key in by_key]


def measured(
    key: str,
    section: str,
    label: str,
    value: float,
    unit: str,
    target: Target | None = None,
    **detail: Any,
) -> Figure:
    return Figure(key, section, label, unit, float(value), target, detail=dict(detail))


def unavailable(
    key: str, section: str, label: str, unit: str, reason: str, target: Target | None = None
) -> Figure:
    return Figure(key, section, label, unit, None, target, reason=reason)


def format_value(value: float) -> str:
    """Three significant figures at least, no exponent for the magnitudes we report."""
    magnitude = abs(value)
    if magnitude >= 100 or value == int(value):
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"
