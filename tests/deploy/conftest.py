"""Fixtures of the deployment tests: copies of the chart that a test may change."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .manifests import CHART_DIR

SINGLE_REPLICA_GUARD = '{{- include "testmode-proxy.singleReplica" . }}\n'


@pytest.fixture
def chart_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(CHART_DIR, tmp_path / CHART_DIR.name))


@pytest.fixture
def unguarded_chart(chart_copy: Path) -> Path:
    """The chart without its one-pod guard: the HPA and multi-replica paths it keeps for a shared store."""
    deployment = chart_copy / "templates" / "deployment.yaml"
    text = deployment.read_text()
    assert text.startswith(SINGLE_REPLICA_GUARD), "the Deployment no longer starts with the one-pod guard"
    deployment.write_text(text.removeprefix(SINGLE_REPLICA_GUARD))
    return chart_copy
