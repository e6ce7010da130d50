"""``testmode-proxy webhooks add | list | remove``: subscriptions without a dashboard or an HTTP call.

The CLI writes the store the gateway reads (``state.db`` under ``TESTMODE_PROXY_STATE_DIR``), with the
same checks as the API (:mod:`proxy.webhooks.changes`: the SSRF guard with the same allowlist and hosts
settings), so it works whether the gateway is running or not (SQLite serialises the writers).

A workspace is named as the API shows it (``workspace`` in every subscription): ``<policy>/<key id>``
for a sandbox key's own workspace (key ids from ``testmode-proxy keys list``), ``<policy>/ws:<name>``
for a named one. The policy part picks the signing scheme and the events on offer.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import structlog

from proxy.errors import GatewayError
from proxy.policy.loader import PolicyError, load_policies
from proxy.settings import Settings
from proxy.store.database import Database
from proxy.webhooks import changes
from proxy.webhooks.attempts import DeliveryLog
from proxy.webhooks.policy import DEFAULT_SPEC
from proxy.webhooks.ssrf import Guard
from proxy.webhooks.subscriptions import Subscriptions


def register(sub: Any) -> None:
    """Add ``webhooks …`` to the top-level parser's subcommands."""
    hooks = sub.add_parser("webhooks", help="manage webhook subscriptions of sandbox workspaces")
    hooks.add_argument("--policies", type=Path, help="policy directory (env TESTMODE_PROXY_POLICIES)")
    commands = hooks.add_subparsers(dest="webhooks_command", required=True)
    add = commands.add_parser("add", help="subscribe a URL; prints the subscription with its secret, once")
    add.add_argument("--workspace", required=True, help="<policy>/<key id> or <policy>/ws:<name>")
    add.add_argument("--url", required=True)
    add.add_argument("--event", dest="events", action="append", help="repeatable; default every event")
    add.add_argument("--secret", help="bring your own secret (default: a new whsec_… one)")
    add.add_argument("--description", default="")
    add.add_argument("--drill", dest="drills", action="append", metavar="NAME=SHARE",
                     help="duplicate|out_of_order|wrong_signature=0..1; repeatable")
    listing = commands.add_parser("list", help="list subscriptions (never their secrets)")
    listing.add_argument("--workspace", help="only this workspace's")
    remove = commands.add_parser("remove", help="unsubscribe")
    remove.add_argument("id")
    hooks.set_defaults(run=run)


def _drills(items: list[str] | None) -> dict[str, Any]:
    drills: dict[str, Any] = {}
    for item in items or []:
        name, _, share = item.partition("=")
        try:
            drills[name] = float(share)
        except ValueError:
            drills[name] = share  # reported by the same check as the API's
    return drills


def run(args: argparse.Namespace) -> int:
    # stdout is the subscription's JSON (| jq): the store's notes (migrations) go to stderr, warnings only.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr),
                        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    settings = Settings.from_env()
    db = Database(settings.state_dir / "state.db", synchronous=settings.state_synchronous)
    try:
        return _run(args, settings, db)
    except GatewayError as exc:
        where = f" ({exc.items[0].field})" if exc.items and exc.items[0].field else ""
        print(f"testmode-proxy: {exc.message}{where}", file=sys.stderr)
        return 2
    finally:
        db.close()


def _run(args: argparse.Namespace, settings: Settings, db: Database) -> int:
    subscriptions = Subscriptions(db)
    if args.webhooks_command == "list":
        for sub in subscriptions.listed(args.workspace):
            print("\t".join([sub.id, sub.workspace, sub.status, ",".join(sub.events) or "*", sub.url]))
        return 0
    if args.webhooks_command == "remove":
        found = subscriptions.get(args.id)
        if found is None:
            print(f"testmode-proxy: no subscription {args.id!r}", file=sys.stderr)
            return 1
        DeliveryLog(db).fail_open(found.id, "subscription removed", time.time())
        subscriptions.remove(found.id)
        print(f"removed {found.id}")
        return 0
    policy_name, slash, rest = args.workspace.partition("/")
    if not slash or not rest:
        print("testmode-proxy: --workspace is <policy>/<key id> or <policy>/ws:<name>", file=sys.stderr)
        return 2
    try:
        policy = load_policies(args.policies or settings.policies_dir, settings.upstreams).by_name(policy_name)
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 2
    if policy is None:
        print(f"testmode-proxy: no policy named {policy_name!r}", file=sys.stderr)
        return 2
    spec = policy.webhooks or DEFAULT_SPEC
    body: dict[str, Any] = {"url": args.url, "description": args.description, "drills": _drills(args.drills)}
    if args.events:
        body["events"] = args.events
    if args.secret is not None:
        body["secret"] = args.secret
    guard = Guard.configured(settings.webhook_allow_private, settings.webhook_hosts)
    sub = asyncio.run(changes.create(subscriptions, guard, spec, body, workspace=args.workspace, policy=policy.name,
                                     now=time.time()))
    sys.stdout.buffer.write(orjson.dumps(sub.public(with_secret=True), option=orjson.OPT_INDENT_2) + b"\n")
    print(f"# {sub.id}: the secret above is shown this once; the gateway signs every delivery with it.",
          file=sys.stderr)
    return 0
