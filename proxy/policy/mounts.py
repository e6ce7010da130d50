"""Which policy serves a request: mount prefixes, declared routes, and the key's shape.

Prefixes are tried longest first. At a prefix only one policy is mounted at, that policy serves the
request. At a prefix several share (Sent, SendGrid and later Blueticked all mount at ``""``, and two
of them read ``Authorization: Bearer``), the request's key picks the policy: the one whose own key
header carries a key of its own shape (:mod:`proxy.keys.shapes`). Nothing is guessed:

* two policies claim the request (a Sent key in ``x-api-key`` *and* a SendGrid key in
  ``Authorization``) → 400 ``ambiguous_credentials``;
* none claims it → the one policy that declares the route, if exactly one does: its *auth* stage
  then refuses the key (missing, or not of its shape) in that provider's own error format, without
  asking the provider; otherwise 401 ``unauthorized`` in problem details, naming what each policy
  takes (404 ``not_found`` when the request carries none of their key headers at all).

Before this, the first policy whose key header was present won, so a Sent key sent as
``Authorization: Bearer sk_live_…`` was verified with, and forwarded to, SendGrid (security issue
item 5), and a ``blu_…`` key landed in the SendGrid pack.

Compiled once (:class:`Mounts`); a declared route without parameters is one dict lookup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from proxy.errors import GatewayError
from proxy.keys.shapes import claims
from proxy.policy.model import KeySpec, Policy, PolicySet, Route

Match = tuple[Route, dict[str, str]] | None
# (policy, route or None, path parameters or None, mount prefix)
Selected = tuple[Policy, Route | None, dict[str, str] | None, str]


@dataclass(frozen=True, slots=True)
class Group:
    """The policies mounted at one prefix, in load order."""

    prefix: str
    policies: tuple[Policy, ...]
    wanted: str  # what each policy takes, for the 401 when none claims a request
    specs: tuple[KeySpec, ...] = field(init=False)  # each member's keys, read on every request at a shared prefix

    def __post_init__(self) -> None:
        object.__setattr__(self, "specs", tuple(p.keys for p in self.policies))

    def covers(self, path: str) -> bool:
        return not self.prefix or path == self.prefix or path.startswith(self.prefix + "/")


class Mounts:
    def __init__(self, policies: PolicySet) -> None:
        self.groups = _groups(policies)
        self.exact = _exact_routes(self.groups)

    def select(self, method: str, path: str, headers: Mapping[str, str]) -> Selected:
        """The policy, route and mount prefix for a request; raises when none may serve it."""
        hit = self.exact.get((method, path))
        if hit is not None:
            group, matches = hit
            i = 0 if len(matches) == 1 else _choose(group, headers, matches)
            found = matches[i]
            if found is not None:
                return group.policies[i], found[0], dict(found[1]) if found[1] else None, group.prefix
        fallback: Selected | None = None
        for group in self.groups:
            if not group.covers(path):
                continue
            inner = path[len(group.prefix):] or "/"
            matches = tuple(policy.match(method, inner) for policy in group.policies)
            try:
                i = 0 if len(matches) == 1 else _choose(group, headers, matches)
            except GatewayError:
                if fallback is None:
                    raise
                continue  # a longer prefix already holds the path: this one could only add a declared route
            found = matches[i]
            if found is not None:
                return group.policies[i], found[0], found[1], group.prefix
            if fallback is None:  # an undeclared path belongs to the longest matching prefix
                fallback = (group.policies[i], None, None, group.prefix)
        if fallback is not None:
            return fallback
        raise _not_found()


def _choose(group: Group, headers: Mapping[str, str], matches: Sequence[Match]) -> int:
    """Index of the policy that serves a request at a shared prefix (see the module docstring)."""
    claimed = -1
    for i, spec in enumerate(group.specs):
        if claims(spec, headers):
            if claimed >= 0:
                names = " and ".join(p.name for p in group.policies if claims(p.keys, headers))
                raise GatewayError(400, "ambiguous_credentials",
                                   f"The request carries keys for {names}; send one provider's key only. "
                                   "Nothing was sent.", reason="several_policies_claim")
            claimed = i
    if claimed >= 0:
        return claimed
    declared = [i for i, found in enumerate(matches) if found is not None]
    if len(declared) == 1:
        return declared[0]
    if not any(p.keys.header in headers for p in group.policies):
        raise _not_found()  # no key at all: nothing says which provider the path was meant for
    raise GatewayError(401, "unauthorized", f"No API key that a provider here accepts: {group.wanted}.",
                       reason="no_policy_claims")


def _not_found() -> GatewayError:
    # The path is not repeated: it may hold personal data (an email, a phone number).
    return GatewayError(404, "not_found", "No provider policy serves this path.", reason="no_policy")


def _groups(policies: PolicySet) -> tuple[Group, ...]:
    by_prefix: dict[str, list[Policy]] = {}
    for prefix, policy in policies.mounts:  # longest prefix first
        by_prefix.setdefault(prefix, []).append(policy)
    return tuple(Group(prefix, tuple(members), "; ".join(map(_wants, members)))
                 for prefix, members in by_prefix.items())


def _wants(policy: Policy) -> str:
    spec = policy.keys
    where = f"{spec.header}: Bearer" if spec.scheme == "bearer" else f"{spec.header}:"
    return f"{policy.name} takes {where} {spec.shape.describe()}"


def _exact_routes(groups: tuple[Group, ...]) -> dict[tuple[str, str], tuple[Group, tuple[Match, ...]]]:
    """(method, full path) → (group, each member's match) for routes without parameters: one dict
    lookup for the common case. A path that an earlier (longer) prefix also covers is left out, so
    the table never changes which policy or route wins."""
    table: dict[tuple[str, str], tuple[Group, tuple[Match, ...]]] = {}
    for index, group in enumerate(groups):
        for policy in group.policies:
            for route in policy.route_list:
                if route.path.names:
                    continue
                full = (group.prefix + route.path.text).rstrip("/") or "/"
                key = (route.method, full)
                if key in table or any(earlier.covers(full) for earlier in groups[:index]):
                    continue
                inner = full[len(group.prefix):] or "/"
                table[key] = (group, tuple(member.match(route.method, inner) for member in group.policies))
    return table
