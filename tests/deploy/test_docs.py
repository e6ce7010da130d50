"""The commands the documentation shows are safe to paste (security issue #10, item 13).

``docker run -p 8080:8080 -e TESTMODE_PROXY_CREDENTIAL_SENT=…`` published the gateway on every interface of the
host and put the provider key in ``docker inspect``. Every ``docker run`` shown publishes on loopback only and
passes credentials as mounted files; every ``helm`` command passes them with ``--set-file``.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from .manifests import CHART_DIR, REPO_ROOT

DOCUMENTS = [
    REPO_ROOT / "README.md",
    REPO_ROOT / "docs" / "deploy.md",
    REPO_ROOT / "Dockerfile",
    CHART_DIR / "README.md",
    CHART_DIR / "examples" / "sidecar-deployment.yaml",
]


def commands(path: Path, program: str) -> list[list[str]]:
    """Each line that starts a ``program …`` command (``docker run`` for docker), continuation lines joined and
    comment markers removed, so the Dockerfile's and the example's comments count too."""
    lines = [re.sub(r"^\s*#\s?", "", line) for line in path.read_text().splitlines()]
    text = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(f"{program} ") and (program != "docker" or line.startswith("docker run ")):
            found.append(shlex.split(line.split(" && ")[0], comments=True))
    return found


def unsafe(argv: list[str]) -> list[str]:
    problems = []
    for flag, value in zip(argv, [*argv[1:], ""], strict=True):
        if flag in {"-p", "--publish"} and not value.startswith("127.0.0.1:"):
            problems.append(f"{flag} {value}: publishes on every interface of the host")
        if flag in {"-e", "--env"} and value.startswith("TESTMODE_PROXY_CREDENTIAL_"):
            problems.append(f"{flag} {value}: the credential shows in docker inspect")
        if flag == "--set" and value.startswith("credentials.values."):
            problems.append(f"{flag} {value}: the credential is in the shell's history; use --set-file")
    return problems


@pytest.mark.parametrize("path", DOCUMENTS, ids=[p.relative_to(REPO_ROOT).as_posix() for p in DOCUMENTS])
def test_documented_commands_publish_on_loopback_and_mount_credentials(path: Path) -> None:
    shown = commands(path, "docker") + commands(path, "helm")
    assert shown, f"{path.name} shows no docker run or helm command: is the reader still finding them?"
    assert [problem for argv in shown for problem in unsafe(argv)] == []


def test_the_readme_shows_a_published_docker_run_with_mounted_credentials() -> None:
    [run] = [argv for argv in commands(REPO_ROOT / "README.md", "docker") if "-p" in argv]
    assert run[run.index("-p") + 1] == "127.0.0.1:8080:8080"
    assert "TESTMODE_PROXY_CREDENTIALS_DIR=/etc/testmode-proxy/credentials" in run


def test_the_check_catches_the_old_readme_command(tmp_path: Path) -> None:
    old = tmp_path / "README.md"
    old.write_text("```sh\ndocker run --rm -p 8080:8080 -e TESTMODE_PROXY_CREDENTIAL_SENT=\"$SENT_API_KEY\" \\\n"
                   "  testmode-proxy:0.1.0\nhelm install x . --set credentials.values.sent=\"$KEY\"\n```\n")
    shown = commands(old, "docker") + commands(old, "helm")
    problems = [problem for argv in shown for problem in unsafe(argv)]
    assert len(problems) == 3, problems
