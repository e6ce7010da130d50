"""Per-request state: one typed object under one scope key (Envoy's filter state, Kong's ctx.shared).

Stages read and write it; middleware instances hold configuration only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Any, Literal

from starlette.types import Scope

if TYPE_CHECKING:
    from proxy.keys.identity import KeyIdentity
    from proxy.policy.model import Policy, Route

SCOPE_KEY = "testmode_proxy"
# Who answered the request: each responder sets it in its one send helper.
AnsweredBy = Literal["synthesized", "sandbox", "replay", "provider", "gateway"]
NO_BODY: Any = object()


@dataclass(slots=True)
class RequestContext:
    request_id_suffix: str
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    policy: Policy | None = None
    route: Route | None = None
    path: str = ""  # the provider path, mount prefix removed
    mount_prefix: str = ""
    path_params: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names, first value wins
    duplicate_headers: frozenset[str] = frozenset()
    key: KeyIdentity | None = None
    body_bytes: bytes = b""
    body: Any = NO_BODY
    test_mode: bool | None = None  # None until the testmode stage decides
    trigger: str | None = None
    status: int = 0  # set when the response starts (send_json, forward): observe reads it
    answered_by: AnsweredBy | None = None
    reject_reason: str | None = None
    outcome: str | None = None
    upstream_seconds: float | None = None
    marks: list[tuple[str, float]] = field(default_factory=list)

    def mark(self, stage: str) -> None:
        """Record that ``stage`` began; stage latency is the time until the next mark (or the end)."""
        self.marks.append((stage, time.perf_counter()))

    @property
    def route_label(self) -> str:
        return self.route.id if self.route is not None else "unmatched"

    @property
    def mode_label(self) -> str:
        return "undecided" if self.test_mode is None else ("test" if self.test_mode else "live")


def begin(scope: Scope, stage: str) -> RequestContext:
    """The request's context, with ``stage``'s start marked: the first line of every stage (one call, not two)."""
    ctx: RequestContext = scope[SCOPE_KEY]
    ctx.marks.append((stage, perf_counter()))
    return ctx


def context_of(scope: Scope) -> RequestContext:
    ctx: RequestContext = scope[SCOPE_KEY]
    return ctx
