"""Magic numbers: recipients whose simulated lifecycle is fixed, so every path can be tested on purpose.

Policy data (``sandbox.magic_numbers``), defaulting to the seed's (shared/seeds/001):

* ``+27800000001`` and every other number deliver: ``queued → sent → delivered → read``;
* ``+27800000002`` fails at the send step with ``recipient_unreachable`` (``message.failed``);
* ``+27800000003`` delivers, then a simulated reply arrives (``message.received``), readable as an
  inbound message.

A number does one of two things: ``fail_at`` a state (the step that would enter it enters ``failed``
instead, with ``reason``), or ``reply`` after a state (``delay_steps`` lifecycle steps later).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class MagicNumber:
    fail_at: str | None = None
    reason: str | None = None
    reply_text: str | None = None
    reply_after: str = "read"
    reply_delay_steps: int = 1


SEED_DEFAULTS: Mapping[str, MagicNumber] = {
    "+27800000002": MagicNumber(fail_at="sent", reason="recipient_unreachable"),
    "+27800000003": MagicNumber(reply_text="Thanks, got it!", reply_after="read", reply_delay_steps=1),
}


def compile_magic(
    node: Mapping[str, Any] | None, states: tuple[str, ...], fail: Callable[[str, str], Exception]
) -> dict[str, MagicNumber]:
    """The policy's magic numbers (already checked against the section's schema), or the seed's."""
    if node is None:
        return dict(SEED_DEFAULTS)
    found: dict[str, MagicNumber] = {}
    for number, spec in node.items():
        where = f"sandbox.magic_numbers.{number}"
        if ("fail_at" in spec) == ("reply" in spec):
            raise fail(where, "give either fail_at (with reason) or reply")
        if "fail_at" in spec:
            if spec["fail_at"] not in states[1:]:
                raise fail(f"{where}.fail_at", f"must be one of the lifecycle's later states: {', '.join(states[1:])}")
            found[number] = MagicNumber(fail_at=spec["fail_at"], reason=spec["reason"])
            continue
        reply = spec["reply"]
        after = reply.get("after", states[-1])
        if after not in states:
            raise fail(f"{where}.reply.after", f"must be a lifecycle state: {', '.join(states)}")
        found[number] = MagicNumber(reply_text=reply["text"], reply_after=after,
                                    reply_delay_steps=int(reply.get("delay_steps", 1)))
    return found
