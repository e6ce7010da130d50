"""The ``send`` an idempotent request runs with: it buffers the answer, records it, then lets it leave.

Recording before sending is what makes "an answer a client saw survives ``kill -9``" hold: the record's
commit returns before the first byte of the answer is written to the client. Buffering costs nothing
extra for the answers recorded here (a provider's answer to a mutation, or a synthesized one, is small);
one larger than :data:`MAX_RECORDED_BYTES` is not relayed at all but answered with a recorded 502
``outcome: unknown``, because it could never be replayed byte for byte.

Provider answers that mean "not processed, try later" (429, and 503 with ``Retry-After``) release the
claim instead, so the client's own retry runs (issue 13).
"""

from __future__ import annotations

from starlette.types import Message, Send

from proxy.clock import Clock
from proxy.context import RequestContext
from proxy.errors import GatewayError
from proxy.render import error_response
from proxy.store.idempotency import Answer, Claim, Headers, IdempotencyRecords

MAX_RECORDED_BYTES = 1024 * 1024


def _too_large() -> GatewayError:
    return GatewayError(
        502, "upstream_bad_response",
        f"The answer was larger than the {MAX_RECORDED_BYTES} bytes the gateway keeps for an Idempotency-Key; "
        "the request may have been processed. Check before retrying with a new key.",
        outcome="unknown", reason="answer_too_large", headers={"x-should-retry": "false"})


def try_later(status: int, headers: Headers) -> bool:
    """The answer says the request was not processed and may be retried as it is."""
    return status == 429 or (status == 503 and any(name.lower() == b"retry-after" for name, _ in headers))


class Recorder:
    __slots__ = ("_chunks", "_size", "claim", "finished", "headers", "records", "replay_headers", "send", "sent",
                 "started", "status")

    def __init__(self, send: Send, records: IdempotencyRecords, claim: Claim, replay_headers: frozenset[bytes]) -> None:
        self.send = send
        self.records = records
        self.claim = claim
        self.replay_headers = replay_headers
        self.status = 0
        self.headers: Headers = []
        self._chunks: list[bytes] = []
        self._size = 0
        self.started = False  # the app began an answer (buffered)
        self.finished = False  # the whole answer arrived: recorded, waiting for the group commit, or released
        self.sent = False  # the answer began to leave for the client

    def reset(self) -> None:
        """Forget a partial answer (to answer an error instead)."""
        self.status, self.headers, self._chunks, self._size, self.started = 0, [], [], 0, False

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.started = True
            self.status = message["status"]
            self.headers = list(message.get("headers", ()))
            return
        if kind != "http.response.body":
            await self.send(message)
            return
        if chunk := message.get("body", b""):
            self._size += len(chunk)
            if self._size > MAX_RECORDED_BYTES:
                raise _too_large()
            self._chunks.append(chunk)
        if message.get("more_body", False):
            return
        body = b"".join(self._chunks)
        self.finished = True
        if try_later(self.status, self.headers):
            self.records.release(self.claim)
        else:
            await self.records.complete(self.claim, self._answer(self.status, self.headers, body))
        self.sent = True
        await self.send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await self.send({"type": "http.response.body", "body": body})

    def record_only(self, ctx: RequestContext, error: GatewayError, clock: Clock) -> None:
        """Record ``error`` as the answer at once, without sending it (nobody is left to receive one)."""
        body, headers = error_response(error, ctx, clock)
        self.finished = True
        self.records.complete_now(self.claim, self._answer(error.status, headers, body))

    def _answer(self, status: int, headers: Headers, body: bytes) -> Answer:
        # Names are lower-case here: the gateway writes them so, and forward lower-cases the provider's.
        return Answer(status, [(name, value) for name, value in headers if name in self.replay_headers], body)
