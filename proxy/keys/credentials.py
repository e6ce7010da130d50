"""The one place that refuses credential headers a provider could read differently from the gateway.

The gateway checks one value of one header; a provider's server may read another (security issue
item 8). So, before *auth* reads the key, a request is refused (400) when it carries:

* **a header name with an underscore**: ``X_API_KEY`` beside ``x-api-key``, ``Authorization_``.
  CGI-style servers map ``-`` and ``_`` to the same variable, so such a header can stand in for a
  credential (or any other header) the gateway never checked. nginx drops these by default
  (``underscores_in_headers off``) for this reason. The gateway refuses rather than drops: dropping
  would change a live request silently, and refusing is the fail-closed answer. Names the policy
  lists as misplaced test flags (``x-test_mode``) are left to the *testmode* stage's own 400.
  A name that is a credential header's look-alike is ``ambiguous_credentials``; others ``bad_request``.
* **a credential header given twice** (any policy's key header or conflicting header): only the
  first value would be checked, and the provider might take the second.
* **another policy's key, in that policy's key header** (``x-api-key: sk_live_…`` on a request
  SendGrid serves): a key goes only to the provider its shape belongs to.

Case needs no rule: header names are case-insensitive (RFC 9110 §5.1), so ``X-API-KEY`` and
``x-api-key`` are one name, and twice is a duplicate.
"""

from __future__ import annotations

from proxy.context import RequestContext
from proxy.errors import GatewayError
from proxy.keys.shapes import claims
from proxy.policy.model import Policy, PolicySet


def _squashed(name: str) -> str:
    return name.replace("_", "").replace("-", "")


class CredentialHeaders:
    """Compiled once from every policy: the credential header names and who owns which."""

    def __init__(self, policies: PolicySet) -> None:
        names = {name for p in policies.policies for name in (p.keys.header, *p.keys.conflicting_headers)}
        self.names = frozenset(names)
        self.lookalikes = {_squashed(name): name for name in names}
        # For each policy, the other policies whose key header is not one of its own credential headers.
        self.foreign: dict[str, tuple[Policy, ...]] = {
            p.name: tuple(
                q for q in policies.policies
                if q is not p and q.keys.header not in (p.keys.header, *p.keys.conflicting_headers)
            )
            for p in policies.policies
        }

    def check(self, ctx: RequestContext, policy: Policy | None) -> None:
        """Raise 400 for the headers described in the module docstring; ``policy`` may be None when
        no policy could be chosen (then only the names are checked)."""
        headers = ctx.headers
        if "_" in "".join(headers):
            self._underscores(headers, policy)
        if ctx.duplicate_headers and not self.names.isdisjoint(ctx.duplicate_headers):
            name = sorted(self.names & ctx.duplicate_headers)[0]
            raise GatewayError(400, "ambiguous_credentials",
                               f"The {name} header appears more than once; send one key only. Nothing was sent.",
                               reason="duplicate_credential_header")
        if policy is not None:
            for other in self.foreign[policy.name]:
                if other.keys.header in headers and claims(other.keys, headers):
                    raise GatewayError(
                        400, "ambiguous_credentials",
                        f"The {other.keys.header} header carries a {other.name} key, which is never sent to "
                        f"{policy.name}; remove it. Nothing was sent.", reason="foreign_key_header")

    def _underscores(self, headers: dict[str, str], policy: Policy | None) -> None:
        allowed = policy.misplaced_headers if policy is not None else ()
        for name in headers:
            if "_" not in name or name in allowed:
                continue
            lookalike = self.lookalikes.get(_squashed(name))
            if lookalike is not None:
                raise GatewayError(
                    400, "ambiguous_credentials",
                    f"The {name} header looks like {lookalike}; header names with underscores are not accepted. "
                    "Nothing was sent.", reason="lookalike_credential_header")
            raise GatewayError(
                400, "bad_request",
                f"Header names with underscores are not accepted ({name}): servers disagree on what they mean. "
                "Nothing was sent.", reason="underscore_header")
