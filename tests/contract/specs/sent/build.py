"""Rebuild ``sentdm.openapi.json``: Sent's response contract, reconstructed from the official Python client.

Sent publishes its OpenAPI document only to its client generator (Stainless; the clients' ``.stats.yml``
names a storage URL that is not reachable from here), so this reconstructs the response side from the
client's generated models, which Stainless derives from that document: for every route the client calls,
the model it parses a 2xx answer into (``cast_to=`` / ``page=``), as JSON Schema (pydantic), and for
4XX/5XX the envelope every model shares (``success``, ``data``, ``error``: ``ErrorDetail``, ``meta``:
``APIMeta``). What the reconstruction cannot know: which fields the document marks required or non-null
(the client makes every field optional and nullable), and which exact 2xx status each route answers.

Run ``python -m tests.contract.specs.sent.build`` after upgrading ``sentdm``; the contract tests fail
while the committed file differs from what the installed client gives.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import sent_dm
from pydantic import TypeAdapter

from tests.contract.client_routes import python_sources

OUT = Path(__file__).with_name("sentdm.openapi.json")


def _schema(model: Any, components: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(model).json_schema(mode="serialization", ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    if "title" in schema and schema.get("type") == "object":  # a model of its own: share it by name
        name = re.sub(r"[^A-Za-z0-9._-]", "_", schema["title"]).strip("_")  # SyncContactsPage[ContactResponse]
        components[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}
    return schema


def _model(module: str, expression: str | None) -> Any:
    if expression is None or expression == "NoneType":
        return None
    namespace = vars(importlib.import_module(module))
    return eval(expression, namespace)  # a name or Name[Name], read from the client's own source


def build() -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for route, module, expression, raw_path in python_sources():
        model = _model(module, expression)
        ok: dict[str, Any] = {"description": f"The client parses this into {expression}."}
        if model is not None:
            ok["content"] = {"application/json": {"schema": _schema(model, components)}}
        paths.setdefault(raw_path, {})[route.method.lower()] = {
            "x-client-method": f"{module}:{expression}",
            "responses": {"2XX": ok, "4XX": {"$ref": "#/components/responses/Error"},
                          "5XX": {"$ref": "#/components/responses/Error"}},
        }
    from sent_dm.types.message_send_response import MessageSendResponse

    envelope = _schema(MessageSendResponse, components)
    error = json.loads(json.dumps(components[envelope["$ref"].rsplit("/", 1)[1]]))
    error["title"] = "ErrorEnvelope"
    error["properties"]["data"] = {}
    error["description"] = "Reconstructed: the envelope every client model shares, with any data."
    components["ErrorEnvelope"] = error
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sent v3 (response side, reconstructed from the sentdm client)",
            "version": sent_dm.__version__,
            "x-source": f"PyPI sentdm {sent_dm.__version__} (Apache-2.0), sent_dm/resources and sent_dm/types",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "responses": {"Error": {"description": "Any error, in the envelope.", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}},
        },
    }


def main() -> None:
    OUT.write_text(json.dumps(build(), indent=1, sort_keys=False) + "\n")
    sys.stdout.write(f"wrote {OUT}\n")


if __name__ == "__main__":
    main()
