"""Bounds on explaining an invalid body: a step budget, and a list of findings of bounded length.

Security issue, item 2: a 120 KB Sent test body whose ``to`` array held 60,000 wrong-typed items made
the all-errors validator build, sort and render 60,000 findings on the event loop: 1.5 s, a 5.4 MB
error body, peak RSS 61 → 282 MiB. Now:

* **steps**: the all-errors pass (:mod:`proxy.policy.all_errors`) and the rules
  (:mod:`proxy.policy.rules`) charge each keyword evaluated and each element walked to a budget
  (:func:`spend`); past it the work stops (:class:`OutOfSteps`), keeping what was found;
* **findings**: at most ``limit`` distinct ones (:class:`Findings`), the first found, listed in
  reading order; the search stops as soon as one more turns up, and the list ends with a note
  (:data:`TRUNCATED`) saying it was cut.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from proxy.errors import FieldError

# The item that ends a cut list: a finding with no field, which every dialect carries (Sent's
# `details.body`, SendGrid's `errors[].field: null`). Documented in policies/README.md.
TRUNCATED = "Not every problem is listed: fix these and send the request again to see the rest."


class OutOfSteps(Exception):
    """The work running in this context used its step budget."""


# Steps left to the work running in this context; None outside a metered block (no limit: tests
# call validators and rules directly). A context variable, not state on the compiled validator that
# concurrent requests share.
_STEPS: ContextVar[list[int] | None] = ContextVar("validation_steps", default=None)


@contextmanager
def metered(steps: int) -> Iterator[None]:
    """Run the block with ``steps`` to spend; :func:`spend` raises :class:`OutOfSteps` past them."""
    token = _STEPS.set([steps])
    try:
        yield
    finally:
        _STEPS.reset(token)


def spend(steps: int) -> None:
    """Charge ``steps`` to the metered block running in this context (free outside one)."""
    left = _STEPS.get()
    if left is not None:
        left[0] -= steps
        if left[0] < 0:
            raise OutOfSteps


class Findings:
    """At most ``limit`` distinct findings, listed by ``key`` then arrival; a repeat reads at its first place.

    ``add`` returns False once the list is full and one more finding came: the caller stops looking,
    and the listing ends with :data:`TRUNCATED`.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.truncated = False
        self._places: dict[FieldError, tuple[Any, int]] = {}
        self._arrivals = 0

    def __len__(self) -> int:
        return len(self._places)

    def add(self, finding: FieldError, key: Any = ()) -> bool:
        self._arrivals += 1
        place = (key, self._arrivals)
        known = self._places.get(finding)
        if known is not None:
            if place < known:
                self._places[finding] = place
            return True
        if len(self._places) >= self.limit:
            self.truncated = True
            return False
        self._places[finding] = place
        return True

    def listing(self) -> list[FieldError]:
        ordered = sorted(self._places, key=self._places.__getitem__)
        return [*ordered, FieldError(None, TRUNCATED)] if self.truncated else ordered
