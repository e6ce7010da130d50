"""The routes the official Sent clients call, read from the installed packages (issue 14).

Python ``sentdm``: every ``self._get/_post/_put/_patch/_delete/_get_api_list(path, …)`` call in the
synchronous resource classes, with the model the client parses the answer into (``cast_to=`` or ``page=``).
TypeScript ``@sentdm/sentdm``: every ``this._client.<method>(path`…`)`` call in its compiled resources.
Path parameters are normalised to ``{}`` so both clients and the policy compare as one.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import sent_dm

_METHODS = {"_get": "GET", "_post": "POST", "_put": "PUT", "_patch": "PATCH", "_delete": "DELETE",
            "_get_api_list": "GET"}
_PARAM = re.compile(r"\{[^}]*\}|\$\{[^}]*\}")


def normalise(path: str) -> str:
    return _PARAM.sub("{}", path)


@dataclass(frozen=True, order=True)
class ClientRoute:
    method: str
    path: str  # parameters as {}
    model: str | None = None  # the client's answer model (Python), dotted: "message_send_response.MessageSendResponse"

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path


def _path_of(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call) and node.args:  # path_template("/v3/x/{id}", id=id)
        return _path_of(node.args[0])
    if isinstance(node, ast.JoinedStr):  # f"/v3/x/{id}"
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def _model_of(call: ast.Call) -> str | None:
    for keyword in call.keywords:
        if keyword.arg in ("cast_to", "page"):
            value = keyword.value
            if isinstance(value, ast.Subscript):  # SyncContactsPage[ContactResponse]
                value = value.slice
            return ast.unparse(value)
    return None


def python_sources() -> list[tuple[ClientRoute, str, str | None, str]]:
    """Each call: the route, the resource module, the answer model's expression there, the path as written."""
    package = Path(sent_dm.__file__).parent
    found: dict[tuple[str, str], tuple[ClientRoute, str, str | None, str]] = {}
    for file in sorted((package / "resources").rglob("*.py")):
        module = "sent_dm." + ".".join(file.relative_to(package).with_suffix("").parts)
        tree = ast.parse(file.read_text())
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and not n.name.startswith("Async")):
            for call in (n for n in ast.walk(cls) if isinstance(n, ast.Call)):
                func = call.func
                if not (isinstance(func, ast.Attribute) and func.attr in _METHODS
                        and isinstance(func.value, ast.Name) and func.value.id == "self" and call.args):
                    continue
                path = _path_of(call.args[0])
                if path is not None and path.startswith("/"):
                    route = ClientRoute(_METHODS[func.attr], normalise(path), _model_of(call))
                    found.setdefault(route.key, (route, module, _expression_of(call), path))
    return sorted(found.values())


def _expression_of(call: ast.Call) -> str | None:
    for keyword in call.keywords:
        if keyword.arg in ("cast_to", "page"):
            return ast.unparse(keyword.value)
    return None


def python_routes() -> set[ClientRoute]:
    return {route for route, *_ in python_sources()}


# `this._client.post('/v3/contacts'` and `this._client.get((0, path_1.path) `/v3/contacts/${id}``
_TS_CALL = re.compile(
    r"this\._client\.(get|post|put|patch|delete|getAPIList)\(\s*(?:\(0, path_\d+\.path\)\s*)?[`'\"]([^`'\"]+)[`'\"]")


def typescript_routes(package: Path) -> set[ClientRoute]:
    """``package``: the installed ``@sentdm/sentdm`` directory (its compiled ``resources/**/*.js``)."""
    routes: set[ClientRoute] = set()
    for file in sorted((package / "resources").rglob("*.js")):
        for method, path in _TS_CALL.findall(file.read_text()):
            verb = "GET" if method == "getAPIList" else method.upper()
            routes.add(ClientRoute(verb, normalise(path)))
    return routes
