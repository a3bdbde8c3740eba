"""Copies of one frame from several gateways: merged, then claimed once (issue 15).

The intake collects the new frames of a batch of lines from every port by claim key
(source and frame counter, ``dedup.claim_key``). Copies that arrived together are one
reception seen by several gateways: the frame is stored once, with the link of the best
copy (highest RSSI, then SNR) and the number of gateways that heard it. The first copy's
gateway asks for the claim; a copy arriving in a later batch finds the claim taken and is
a cross-gateway duplicate. When the shared claims cannot be reached the frame is undecided
and waits in the outbox (``pending``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from ..dedup import Claims, DedupUnavailable
from .lines import FrameLine

if TYPE_CHECKING:
    from iiot_codec import Frame

    from ..pending import Pending


class Copy(NamedTuple):
    """One gateway's copy of a frame, as the intake decoded it."""

    gateway: str
    line: FrameLine
    frame: Frame
    ts: int  # the line's receive stamp (ns)


def _link(copy: Copy) -> tuple[bool, int, float]:
    rssi, snr = copy.line.rssi, copy.line.snr
    return (rssi is not None, rssi if rssi is not None else 0, snr if snr is not None else 0.0)


def best(copies: Sequence[Copy]) -> Copy:
    """The copy with the best link: an over-the-air one, highest RSSI, then SNR; the
    earliest of equals."""
    top = copies[0]
    for copy in copies[1:]:
        if _link(copy) > _link(top):
            top = copy
    return top


def gateways(copies: Sequence[Copy]) -> list[str]:
    """The gateways that heard the frame, in the order their copies came."""
    return list(dict.fromkeys(c.gateway for c in copies))


class Decision(NamedTuple):
    won: dict[str, list[Copy]]  # stored by this bridge (key -> its copies)
    lost: dict[str, list[Copy]]  # stored elsewhere (another port or bridge): duplicates
    undecided: dict[str, list[Copy]]  # the claims are unreachable: they wait
    owners: dict[str, str]  # key -> the owner this bridge asked as


class Decider:
    """Asks ``claims`` for every key of a batch at once, as ``<bridge id>/<gateway>``."""

    def __init__(self, claims: Claims, bridge_id: str, pending: Pending | None = None) -> None:
        self.claims = claims
        self.bridge_id = bridge_id
        self.pending = pending

    def owner(self, gateway: str) -> str:
        return f"{self.bridge_id}/{gateway}"

    def decide(self, candidates: Mapping[str, list[Copy]]) -> Decision:
        owners = {key: self.owner(copies[0].gateway) for key, copies in candidates.items()}
        won: dict[str, list[Copy]] = {}
        lost: dict[str, list[Copy]] = {}
        undecided: dict[str, list[Copy]] = {}
        wanted = dict(owners)
        if self.pending is not None:
            for key in self.pending.holding(list(wanted)):
                lost[key] = list(candidates[key])  # a copy of it waits already
                del wanted[key]
        try:
            result = self.claims.claim(wanted)
        except DedupUnavailable:
            if self.pending is None:
                raise
            undecided = {key: list(candidates[key]) for key in wanted}
            return Decision(won, lost, undecided, owners)
        for key, owner in wanted.items():
            (won if result[key] == owner else lost)[key] = list(candidates[key])
        return Decision(won, lost, undecided, owners)
