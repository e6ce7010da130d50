"""``testmode-proxy serve | check | openapi | keys … | webhooks …``: the command line, parsed into one Settings
object."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from proxy.keys.registry import RegistryError, create_key, list_keys, revoke_key
from proxy.policy.loader import PolicyError, load_policies
from proxy.settings import Settings
from proxy.webhooks import cli as webhooks_cli


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from proxy.app import Gateway
    from proxy.logs import canonical_log, configure_logging, server_log_config
    from proxy.server import DrainingServer, EdgeLimits, HttpProtocol

    settings = Settings.from_env(host=args.host, port=args.port, policies_dir=args.policies, keys_file=args.keys)
    configure_logging(settings.log_level)
    try:
        gateway = Gateway(settings, canonical=canonical_log(settings.log_level))
    except (PolicyError, RegistryError) as exc:
        print(f"testmode-proxy: {exc}", file=sys.stderr)
        return 2
    limits = settings.limits
    edge = EdgeLimits(header_timeout=limits.header_timeout, max_request_line=limits.max_request_line,
                      # past the route stage's own limits (431 in the provider's dialect) but bounded
                      max_head_bytes=4 * limits.max_header_bytes, max_head_headers=2 * limits.max_headers)
    config = uvicorn.Config(
        gateway,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=HttpProtocol.with_limits(edge),  # uvicorn's httptools protocol hardened (proxy/server.py)
        ws="none",  # no WebSocket upgrades: every response, refusals included, is JSON
        lifespan="on",
        access_log=settings.access_log,
        log_config=server_log_config(settings.log_level),
        log_level=settings.log_level,
        server_header=False,
        date_header=False,  # a provider's Date passes through; gateway-made responses add their own
        # The forwarding stage extends X-Forwarded-For itself; uvicorn's proxy-headers mode would first
        # replace the peer address with the chain's last entry, which would then appear twice.
        proxy_headers=False,
        timeout_graceful_shutdown=int(limits.drain_timeout),
        timeout_keep_alive=30,
    )
    server = DrainingServer(config, on_shutdown=gateway.begin_drain)
    server.run()
    return 0 if server.started else 3  # 3: start-up failed, as uvicorn.run() says it


def _check(args: argparse.Namespace) -> int:
    failed = False
    for target in args.paths or [Path("policies")]:
        try:
            policy_set = load_policies(target)
        except PolicyError as exc:
            print(exc, file=sys.stderr)
            failed = True
            continue
        for policy in policy_set.policies:
            print(f"{policy.source}: ok ({policy.name}: {len(policy.route_list)} routes)")
    return 1 if failed else 0


def _openapi(args: argparse.Namespace) -> int:
    import orjson

    from proxy.openapi import openapi

    target: str = args.policy
    try:
        if target.endswith((".yaml", ".yml")) or Path(target).is_file():
            policy = load_policies(Path(target)).policies[0]
        else:
            found = load_policies(args.policies or Settings.from_env().policies_dir).by_name(target)
            if found is None:
                print(f"testmode-proxy: no policy named {target!r}", file=sys.stderr)
                return 2
            policy = found
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 2
    sys.stdout.write(orjson.dumps(openapi(policy), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def _keys(args: argparse.Namespace) -> int:
    path: Path = args.file or Settings.from_env().keys_file or Path("keys.json")
    if args.keys_command == "create":
        settings = Settings.from_env()
        try:
            policy = load_policies(args.policies or settings.policies_dir).by_name(args.policy)
        except PolicyError as exc:
            print(exc, file=sys.stderr)
            return 2
        if policy is None:
            print(f"testmode-proxy: no policy named {args.policy!r}", file=sys.stderr)
            return 2
        prefix = policy.keys.issued_test_prefix if args.mode == "test" else policy.keys.issued_live_prefix
        try:
            raw, entry = create_key(path, args.policy, args.mode, args.scopes or ["*"], prefix, args.label or "",
                                    workspace=args.workspace)
        except RegistryError as exc:
            print(f"testmode-proxy: {exc}", file=sys.stderr)
            return 2
        print(raw)
        shared = f", workspace {entry.workspace}" if entry.workspace else ""
        print(f"# {entry.id} ({entry.mode}, {args.policy}, scopes {','.join(sorted(entry.scopes))}{shared}) "
              f"saved as a digest in {path}; this is the only time the key is shown.", file=sys.stderr)
        return 0
    if args.keys_command == "list":
        for entry in list_keys(path):
            print(f"{entry.id}\t{entry.policy}\t{entry.mode}\t{','.join(sorted(entry.scopes))}\t{entry.label}"
                  + (f"\t{entry.workspace}" if entry.workspace else ""))
        return 0
    if revoke_key(path, args.id):
        print(f"revoked {args.id}")
        return 0
    print(f"testmode-proxy: no key {args.id!r} in {path}", file=sys.stderr)
    return 1


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="testmode-proxy", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", help="bind address (env TESTMODE_PROXY_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (env TESTMODE_PROXY_PORT, default 8080)")
    serve.add_argument("--policies", type=Path, help="policy directory (env TESTMODE_PROXY_POLICIES)")
    serve.add_argument("--keys", type=Path, help="key registry file (env TESTMODE_PROXY_KEYS)")
    serve.set_defaults(run=_serve)
    check = sub.add_parser("check", help="validate policy files; exit 1 on the first broken one")
    check.add_argument("paths", nargs="*", type=Path)
    check.set_defaults(run=_check)
    spec = sub.add_parser("openapi", help="print the OpenAPI 3.1 description of a policy pack (JSON)")
    spec.add_argument("policy", help="a policy name (from --policies) or a policy file")
    spec.add_argument("--policies", type=Path, help="policy directory (env TESTMODE_PROXY_POLICIES)")
    spec.set_defaults(run=_openapi)
    keys = sub.add_parser("keys", help="manage issued keys in the registry file")
    keys.add_argument("--file", type=Path, help="registry file (env TESTMODE_PROXY_KEYS, default keys.json)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="issue a key and print it once")
    create.add_argument("--policy", required=True)
    create.add_argument("--mode", choices=["live", "test"], required=True)
    create.add_argument("--scope", dest="scopes", action="append", help="repeatable; default '*'")
    create.add_argument("--label")
    create.add_argument("--workspace", help="test keys: share this named sandbox workspace (default: the key's own)")
    create.add_argument("--policies", type=Path)
    keys_sub.add_parser("list", help="list issued keys (ids, never keys)")
    revoke = keys_sub.add_parser("revoke", help="remove a key")
    revoke.add_argument("id")
    keys.set_defaults(run=_keys)
    webhooks_cli.register(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
