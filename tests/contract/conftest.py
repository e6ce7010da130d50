from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.node import install


@pytest.fixture(scope="session")
def node_modules() -> Path:
    return install() / "node_modules"
