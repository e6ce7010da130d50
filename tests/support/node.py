"""tests/node: the official Node clients, installed from the committed lockfile (node_modules is git-ignored).

Nothing is skipped: without node or npm, or if the install fails, the tests that need them fail.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def install() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed for the Node client tests (Node 20+)")
    result = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefer-offline"], cwd=NODE_DIR,
                            capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        pytest.fail(f"npm install failed in {NODE_DIR}:\n{result.stdout}\n{result.stderr}")
    return NODE_DIR
