"""What every target is sent and what the upstream answers: one place, so all targets compare alike."""

from __future__ import annotations

import json
from typing import Any

# A valid Sent send in the seed's shape (answered 201 in test mode); 313 bytes with the flag.
_SEND: dict[str, Any] = {
    "test_mode": True,
    "phone_number": "+15555550100",
    "template_id": "7ba7b820-9dad-11d1-80b4-00c04fd430c8",
    "channel": "sms",
    "variables": {"customer_name": "Test User", "order_id": "ORD-2024-00012", "amount": "49.99",
                  "currency": "USD", "delivery_date": "2024-01-20", "support_url": "https://example.com/orders"},
}
TEST_BODY = json.dumps(_SEND)
# The same send, unflagged: what a live request looks like.
LIVE_BODY = json.dumps({k: v for k, v in _SEND.items() if k != "test_mode"})
PATH = "/v3/messages"

# The upstream's answer: Sent's 201 envelope. The marker proves a response came from the upstream.
UPSTREAM_MARKER = "msg_bench_upstream"
UPSTREAM_BODY = json.dumps({
    "success": True,
    "data": {"id": UPSTREAM_MARKER, "phone": "+15555550100", "template_id": "7ba7b820-9dad-11d1-80b4-00c04fd430c8",
             "channel": "sms", "status": "pending", "price": 0.01, "created_at": "2024-01-15T10:30:00Z"},
    "error": None,
    "meta": {"request_id": "req_bench_upstream", "timestamp": "2024-01-15T10:30:00Z", "version": "v3"},
}, separators=(",", ":")).encode()
