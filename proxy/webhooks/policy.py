"""A policy's ``webhooks:`` section, compiled once at load: signing scheme, events, retry schedule.

```yaml
webhooks:
  signing: blueticked                # or standard_webhooks, or a mapping (proxy/webhooks/signing.py)
  events: [message.sent, message.delivered, message.failed]   # what a subscription may ask for; default any
  retry_schedule: [0, 5, 300, 1800, 7200, 18000, 36000, 36000]  # seconds before each attempt (Svix's)
  jitter: 0.1                        # each retry delay is stretched by up to this share, at random
  timeout: 10                        # a 2xx must arrive within this many seconds
```

A policy without the section gets :data:`DEFAULT_SPEC`: Standard Webhooks v1 on Svix's schedule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxy.webhooks.signing import DEFAULT_SCHEME, Scheme, SchemeError, compile_scheme

# Svix's schedule (docs.svix.com, "Retries"): at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h:
# 8 attempts over about 27.6 hours.
SVIX_SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    scheme: Scheme
    events: frozenset[str] | None  # the event names on offer; None: any
    retry_schedule: tuple[float, ...]  # delay before attempt n+1 is retry_schedule[n]; its length is the cap
    jitter: float
    timeout: float

    def wants(self, event: str) -> bool:
        return self.events is None or event in self.events


DEFAULT_SPEC = WebhookSpec(DEFAULT_SCHEME, None, SVIX_SCHEDULE, 0.1, 10.0)


class SpecError(ValueError):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where


def compile_spec(node: Mapping[str, Any] | None) -> WebhookSpec | None:
    """The compiled section, or None when the policy has none; :class:`SpecError` names the bad key."""
    if node is None:
        return None
    if not isinstance(node, Mapping):
        raise SpecError("", "expected a mapping")
    known = {"signing", "events", "retry_schedule", "jitter", "timeout"}
    if unknown := sorted(set(node) - known):
        raise SpecError(unknown[0], f"unknown key (known: {', '.join(sorted(known))})")
    try:
        scheme = compile_scheme(node.get("signing", DEFAULT_SCHEME.name))
    except SchemeError as exc:
        raise SpecError("signing", str(exc)) from exc
    events = node.get("events")
    if events is not None and (not isinstance(events, list) or not all(isinstance(e, str) and e for e in events)):
        raise SpecError("events", "expected a list of event names")
    schedule = node.get("retry_schedule", list(SVIX_SCHEDULE))
    if (not isinstance(schedule, list) or not schedule
            or not all(isinstance(s, int | float) and not isinstance(s, bool) and s >= 0 for s in schedule)):
        raise SpecError("retry_schedule", "expected a non-empty list of seconds (>= 0)")
    jitter = node.get("jitter", DEFAULT_SPEC.jitter)
    if not isinstance(jitter, int | float) or isinstance(jitter, bool) or not 0 <= jitter <= 1:
        raise SpecError("jitter", "expected a share between 0 and 1")
    timeout = node.get("timeout", DEFAULT_SPEC.timeout)
    # At most 25 s: an attempt and its wait for a free connection (at most one attempt's time) stay inside
    # the scheduler's 60 s lease, past which the item would be handed out a second time.
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 25:
        raise SpecError("timeout", "expected seconds, more than 0 and at most 25")
    return WebhookSpec(scheme, frozenset(events) if events is not None else None,
                       tuple(float(s) for s in schedule), float(jitter), float(timeout))
