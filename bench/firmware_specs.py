"""The firmware figures and their targets (issue 7)."""

from __future__ import annotations

from .figures import Target
from .spec import Spec

SECTION = "Firmware"
LOSSES = (0, 10, 30, 50)
FLASH_BUDGET_KB = 48.0


def delivery_key(design: str, loss: int) -> str:
    return f"firmware.delivery.{design}.loss{loss}"


def heap_key(node: str) -> str:
    return f"firmware.peak_heap.{node}"


def deploy_key(node: str) -> str:
    return f"firmware.deploy_size.{node}"


ROUTES = ("mpy", "frozen")
ROUTE_LABELS = {"mpy": ".mpy deploy tree", "frozen": "frozen image"}


def min_heap_key(node: str, route: str = "mpy") -> str:
    return f"firmware.min_heap.{node}" if route == "mpy" else f"firmware.min_heap_{route}.{node}"


def _specs() -> tuple[Spec, ...]:
    out: list[Spec] = []
    for loss in LOSSES:
        target = Target(">=", 99.9) if loss == 30 else None
        out.append(
            Spec(
                delivery_key("ours", loss),
                f"delivery ratio at {loss} % loss, our link layer",
                "%",
                target,
            )
        )
        out.append(
            Spec(
                delivery_key("earlier", loss),
                f"delivery ratio at {loss} % loss, earlier behaviour",
                "%",
            )
        )
    for node in ("node1", "node2"):
        out.append(
            Spec(
                heap_key(node),
                f"{node} peak heap in the simulator (unix port, stand-ins included)",
                "KB",
            )
        )
    for route in ROUTES:
        for node in ("node1", "node2"):
            out.append(
                Spec(
                    min_heap_key(node, route),
                    f"{node} smallest heap for the link test, {ROUTE_LABELS[route]} "
                    "(32-bit simulator, stand-ins excluded)",
                    "KiB",
                    Target("<=", 64, "≤ 64 KiB (issue 12; the board has 85)"),
                )
            )
    for node in ("node1", "node2"):
        out.append(
            Spec(
                deploy_key(node),
                f"{node} deploy size (.mpy, make firmware)",
                "KB",
                Target("<=", FLASH_BUDGET_KB),
            )
        )
    return tuple(out)


SPECS = _specs()
