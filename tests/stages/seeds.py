"""Context seeders: put a stage's inputs in place, as the earlier stages would have."""

from __future__ import annotations

from typing import Any

from proxy.context import NO_BODY, RequestContext
from proxy.keys.identity import KeyIdentity, Mode
from proxy.policy.model import Policy
from proxy.settings import Secret
from tests.stages.harness import Seeder


def issued(mode: Mode, scopes: tuple[str, ...] = ("*",), key: str = "sk_live_gw_abc") -> KeyIdentity:
    return KeyIdentity("key_test", "issued", mode, frozenset(scopes), Secret("provider") if mode == "live" else None,
                       key)


def passthrough(key: str = "sk_live_real") -> KeyIdentity:
    return KeyIdentity("pt_test", "passthrough", None, frozenset({"*"}), Secret(key), key)


def seed(
    policy: Policy,
    method: str,
    path: str,
    *,
    key: KeyIdentity | None = None,
    body: Any = NO_BODY,
    test_mode: bool | None = None,
    headers: dict[str, str] | None = None,
) -> Seeder:
    def apply(ctx: RequestContext) -> None:
        ctx.policy = policy
        ctx.path = path
        found = policy.match(method, path)
        if found is not None:
            ctx.route, ctx.path_params = found
        ctx.key = key
        ctx.body = body
        ctx.test_mode = test_mode
        if headers is not None:
            ctx.headers = headers

    return apply
