"""Stage 8, *idempotency*: a request with an ``Idempotency-Key`` runs at most once per key; a retry gets
the first answer back (shared/reference/reliability.md, "Idempotency-Key"; issue 13).

It sits after validation (a request refused there is never recorded, so a corrected retry proceeds) and
before every responder, so synthesized, sandbox and forwarded answers are recorded alike. A request
without the key, or a read (GET/HEAD/OPTIONS), passes straight on: the store is never touched.

* first use: claim the key, run the rest of the pipeline with a ``send`` that buffers the answer
  (:class:`Recorder`), store it, *then* let it leave, so an answer a client saw survives ``kill -9``;
* completed: the stored status, headers and body bytes, plus ``Idempotent-Replayed: true``;
* the same key still in flight: 409 + ``Retry-After`` at once, which the official clients retry;
* the same key with another request (method, path, query, canonical JSON body): 422 (per policy);
* errors raised inside (this is why the stage wraps the app, not only ``send``; DESIGN.md, "Idempotency
  sees errors too"): ``outcome: not_sent`` releases the claim, so a retry proceeds; ``outcome: unknown``
  (and any failure once a live request may have reached the provider) is rendered here, by the one
  renderer, stored and replayed, never sent again;
* provider answers meaning "not processed, try later" (429, 503 with ``Retry-After``) release the claim;
* a claim left by a process that died (``kill -9`` mid-forward): a live request may have reached the
  provider, so the retry gets a stored 502 ``idempotency_interrupted`` (``outcome: unknown``) and the
  request is never sent again; a test request reached nobody, so it is processed anew.

On live requests the header is forwarded when the policy says the provider understands it
(``idempotency.forward``), else removed. Behind an issued key the provider sees the gateway's one
credential for every issued key, so the forwarded key is derived from (key id, key): two callers' equal
keys never collide in the provider's per-account cache.

Reads: ``ctx.policy``, ``ctx.key``, ``ctx.test_mode``, ``ctx.path``, ``ctx.body``, ``ctx.headers``.
Writes: ``ctx.answered_by`` (``replay``). Ends a request with: the replay; 400 ``idempotency_key_invalid``;
409 ``idempotency_in_flight``; 422 ``idempotency_mismatch``; 502 ``idempotency_interrupted``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from proxy.clock import SYSTEM_CLOCK, Clock
from proxy.context import NO_BODY, SCOPE_KEY, RequestContext
from proxy.errors import GatewayError, bad_request
from proxy.keys.identity import KeyIdentity, digest
from proxy.metrics import Metrics
from proxy.policy.idempotency import IdempotencySpec
from proxy.policy.model import Policy
from proxy.recorder import Recorder
from proxy.render import send_error, send_json
from proxy.store.idempotency import Claim, IdempotencyRecords
from proxy.store.idempotency import Scope as KeyScope
from proxy.verdict import SAFE_METHODS

log = structlog.get_logger("proxy.stages")

REPLAYED = (b"idempotent-replayed", b"true")


def fingerprint(method: str, path: str, query: bytes, body: Any) -> bytes:
    """What makes two requests the same one: method, path with its parameters, query, and the body as
    canonical JSON (keys sorted, no whitespace: neither key order nor spacing changes it)."""
    canonical = b"" if body is NO_BODY else orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(b"\x00".join((method.encode(), path.encode("utf-8", "surrogateescape"), query,
                                        canonical))).digest()


def principal(policy: Policy, key: KeyIdentity) -> str:
    """Whose keys: an issued key by its registry id; a provider's own key by its full digest."""
    if key.kind == "issued":
        return f"{policy.name}:{key.key_id}"
    return f"{policy.name}:pt_{digest(key.presented)}"


def derived_key(key_id: str, key: str) -> str:
    """The key a provider sees behind an issued key: stable per (issued key, key), in ``[a-z0-9_]``."""
    return "gw_" + hashlib.sha256(f"{key_id}\x00{key}".encode()).hexdigest()[:48]


def _interrupted() -> GatewayError:
    return GatewayError(
        502, "idempotency_interrupted",
        "The first request with this Idempotency-Key was interrupted by a gateway restart before its answer "
        "was recorded; it may have reached the provider. It was not sent again: check before retrying with "
        "a new key.", outcome="unknown", headers={"x-should-retry": "false"})


def _unanswered() -> GatewayError:
    return GatewayError(
        502, "upstream_bad_response",
        "The provider's answer could not be completed; the request may have been processed. Check before "
        "retrying with a new key.", outcome="unknown", reason="answer_interrupted",
        headers={"x-should-retry": "false"})


class Idempotency:
    def __init__(self, app: ASGIApp, *, records: IdempotencyRecords, metrics: Metrics,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.app = app
        self.records = records
        self.metrics = metrics
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx: RequestContext = scope[SCOPE_KEY]
        policy = ctx.policy
        assert policy is not None
        key = ctx.headers.get(policy.idempotency.header)
        if key is None or scope["method"] in SAFE_METHODS:  # the hot path: one dict lookup, no store
            await self.app(scope, receive, send)
            return
        ctx.mark("idempotency")
        await self._keyed(scope, receive, send, ctx, policy, key)

    async def _keyed(self, scope: Scope, receive: Receive, send: Send, ctx: RequestContext, policy: Policy,
                     key: str) -> None:
        spec = policy.idempotency
        if spec.header in ctx.duplicate_headers:
            raise bad_request("idempotency_key_invalid", f"The {spec.name} header is given more than once.",
                              field=spec.name)
        if (problem := spec.key_problem(key)) is not None:
            raise bad_request("idempotency_key_invalid", f"The {spec.name} header {problem}.", field=spec.name)
        assert ctx.key is not None and ctx.test_mode is not None
        live = not ctx.test_mode
        claim = self.records.claim(
            KeyScope(principal(policy, ctx.key), "live" if live else "test", key),
            fingerprint(scope["method"], ctx.path, scope.get("query_string", b""), ctx.body),
        )
        if claim.state == "replay":
            assert claim.answer is not None
            ctx.answered_by = "replay"
            answer = claim.answer
            await send_json(send, ctx, answer.status, None if answer.status == 204 else answer.body,
                            [*answer.headers, REPLAYED], self.clock)
            return
        if claim.state == "in_flight":
            raise GatewayError(409, "idempotency_in_flight",
                               f"A request with this {spec.name} is still being processed; retry shortly.",
                               headers={"retry-after": str(spec.retry_after)})
        if claim.state == "mismatch":
            raise GatewayError(spec.mismatch_status, "idempotency_mismatch",
                               f"This {spec.name} was already used for a different request; use a new key.")
        recorder = Recorder(send, self.records, claim, spec.replay_headers)
        if claim.orphaned and live:
            await send_error(recorder, ctx, _interrupted(), self.metrics, self.clock)
            return
        if live:
            _forwarded_header(scope, ctx.key, spec, key)
        await self._run(scope, receive, ctx, recorder, claim, live)

    async def _run(self, scope: Scope, receive: Receive, ctx: RequestContext, recorder: Recorder, claim: Claim,
                   live: bool) -> None:
        try:
            await self.app(scope, receive, recorder)
        except GatewayError as error:
            if recorder.sent:  # the answer is out (and recorded): nothing else can be said
                raise
            ctx.status = 0  # buffered, never sent: an answer can still be given
            if error.outcome == "unknown":
                await self._record_error(recorder, ctx, error)
                return
            self.records.release(claim)
            raise
        except Exception:
            if recorder.sent:
                raise
            ctx.status = 0
            if live and (recorder.started or _forwarding(ctx)):  # the provider may have acted
                log.exception("idempotent_request_failed")
                await self._record_error(recorder, ctx, _unanswered())
                return
            self.records.release(claim)
            raise
        except BaseException:  # cancelled: no answer will leave, but a provider may have the request
            # (An answer already queued for the group commit is written by it first: the commit was
            # scheduled before this task could be woken, and the record below then changes nothing.)
            if not recorder.sent:
                if live and (recorder.started or _forwarding(ctx)):
                    recorder.record_only(ctx, _unanswered(), self.clock)
                else:
                    self.records.release(claim)
            raise
        if not recorder.finished:  # the app ended without an answer (observe answers 500 not_sent)
            self.records.release(claim)

    async def _record_error(self, recorder: Recorder, ctx: RequestContext, error: GatewayError) -> None:
        recorder.reset()
        await send_error(recorder, ctx, error, self.metrics, self.clock)


def _forwarding(ctx: RequestContext) -> bool:
    """The terminal forwarding app began: bytes may have reached the provider."""
    return bool(ctx.marks) and ctx.marks[-1][0] == "forward"


def _forwarded_header(scope: Scope, key: KeyIdentity | None, spec: IdempotencySpec, value: str) -> None:
    """What the provider receives of the key (module docstring): the same, derived, or nothing."""
    assert key is not None
    if spec.forward and key.kind == "passthrough":
        return  # the caller's own provider key: forwarded untouched
    headers = [(name, v) for name, v in scope["headers"] if name.lower() != spec.raw_header]
    if spec.forward:
        headers.append((spec.raw_header, derived_key(key.key_id, value).encode()))
    scope["headers"] = headers
