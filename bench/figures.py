"""The figure model: one measured (or unavailable) number with its unit and target."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Target:
    """A goal from issue 7: ``op`` is ">=" or "<=", compared with ``limit``."""

    op: str
    limit: float
    text: str = ""  # shown instead of "op limit unit" when the goal needs words

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
        return f"{'≥' if self.op == '>=' else '≤'} {limit} {unit}".rstrip()


@dataclass
class Figure:
    """One row of the results table. ``value`` is None exactly when ``reason`` says why."""

    key: str
    section: str
    label: str
    unit: str
    value: float | None = None
    target: Target | None = None
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.value is not None

    @property
    def meets_target(self) -> bool | None:
        if self.target is None or self.value is None:
            return None
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
        if self.target is not None:
            out["target"] = {**asdict(self.target), "description": self.target.describe(self.unit)}
            out["meets_target"] = self.meets_target
        if self.detail:
            out["detail"] = self.detail
        return out


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
