"""A third policy pack for tests of how packs mounted at one prefix are told apart.

``blu`` stands in for Blueticked (shared/reference/blueticked.md) until its real policy lands: mounted at
``""`` like Sent and SendGrid, ``Authorization: Bearer`` like SendGrid, ``blu_live_``/``blu_test_`` keys.
It verifies pass-through keys with ``GET /v3/me`` because the stand-in provider answers that path.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.support.servers import POLICIES

BLU_LIVE = "blu_live_" + "L" * 24
BLU_TEST = "blu_test_" + "T" * 24

BLU: dict[str, Any] = {
    "version": 1,
    "name": "blu",
    "upstream": {"base_url": "https://api.blu.invalid"},
    "prefixes": ["/blu", ""],
    "keys": {
        "header": "authorization",
        "scheme": "bearer",
        "issued_prefix": {"live": "blu_live_gw_", "test": "blu_test_gw_"},
        "shapes": {"live": ["blu_live_"], "test": ["blu_test_"], "pattern": "blu_(live|test)_[A-Za-z0-9]{16,64}"},
        "passthrough": {"verify_path": "/v3/me"},
    },
    "dialect": {"error": {"success": False, "error": {"code": "{{ error.code }}", "message": "{{ error.message }}"}}},
    "test_mode": {"triggers": [{"key_prefix": "blu_test_"}], "envelope": {"data": "{{ data }}", "test": True}},
    "routes": [
        {"id": "messages.send", "method": "POST", "path": "/v1/messages", "scope": "messages:write",
         "test_response": {"status": 202, "data": {"id": "{{ uuid() }}"}}},
    ],
}


def with_blu(directory: Path) -> Path:
    """``directory`` holding the shipped policies and ``blu.yaml``, which stands in for the shipped
    ``blueticked.yaml`` (the two have the same key shapes at ``""``: the loader refuses both at once)."""
    directory.mkdir(parents=True, exist_ok=True)
    for policy in POLICIES.glob("*.yaml"):
        if policy.name != "blueticked.yaml":
            shutil.copy(policy, directory / policy.name)
    (directory / "blu.yaml").write_text(yaml.safe_dump(BLU, sort_keys=False))
    return directory
