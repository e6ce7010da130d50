"""A stand-in for Blueticked: the recording stand-in provider (tests/support/provider.py) plus the two
read-only lookups validate-only makes with a live key, answered from data a test configures.

Run: ``python -m tests.support.blueticked --port N``. Every request is recorded like the stand-in
provider records it (``GET /__records``); ``POST /__config`` takes, besides the provider's own keys,

* ``contacts``: a list of Blueticked contact objects, found by ``GET /v1/contacts?phone=…|email=…``
  (``{"data": [...]}``); ``GET /v1/contacts`` without a filter is the key check (``limit=1``);
* ``templates``: ``{id: template object}``, served by ``GET /v1/templates/{id}`` (404 otherwise).

Both answer 401 to a key not in ``valid_keys``. Everything else is the stand-in provider's.
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import parse_qs

import uvicorn

from tests.support import provider


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope.get("path", "")
    if scope["type"] != "http" or scope["method"] != "GET" or not path.startswith(("/v1/contacts", "/v1/templates/")):
        await provider.app(scope, receive, send)
        return
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    provider.RECORDS.append({
        "method": "GET", "path": path, "raw_path": (scope.get("raw_path") or b"").decode("latin-1"),
        "query": scope["query_string"].decode("latin-1"),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]], "body": "",
    })
    key = headers.get("authorization", "").removeprefix("Bearer ")
    config = provider.CONFIG
    if key not in config["valid_keys"]:
        await provider._json(send, 401, {"ok": False, "error": {"code": "unauthorized", "message": "bad key"},
                                         "request_id": "req_standin"})
        return
    if path.startswith("/v1/templates/"):
        found = config.get("templates", {}).get(path.rsplit("/", 1)[1])
        if found is None:
            await provider._json(send, 404, {"ok": False, "error": {"code": "not_found", "message": "no template"},
                                             "request_id": "req_standin"})
        else:
            await provider._json(send, 200, found)
        return
    query = {name: values[0] for name, values in parse_qs(scope["query_string"].decode("latin-1")).items()}
    contacts = config.get("contacts", [])
    if "phone" in query:
        contacts = [c for c in contacts if c.get("phone") == query["phone"]]
    elif "email" in query:
        contacts = [c for c in contacts if c.get("email") == query["email"]]
    await provider._json(send, 200, {"data": contacts[: int(query.get("limit", "100"))], "next_cursor": None})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, lifespan="on")


if __name__ == "__main__":
    main()
