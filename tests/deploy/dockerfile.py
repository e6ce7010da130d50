"""A small Dockerfile reader, so tests run what the image runs instead of a copy that drifts.

It understands what this repository's Dockerfile uses: stages, line continuations, comments, ``ENV`` in
``key=value`` form with ``${VAR}`` references, exec-form ``CMD``/``ENTRYPOINT``/``RUN`` and ``COPY``.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from .manifests import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction, or None for the shell form."""
        if not self.value.startswith("["):
            return None
        argv = json.loads(self.value)
        assert isinstance(argv, list) and all(isinstance(a, str) for a in argv), self
        return argv


@dataclass(frozen=True)
class Copy:
    sources: list[str]
    dest: str
    from_stage: str | None


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self, inherited: dict[str, str]) -> dict[str, str]:
        """The stage's ENV values, each ``${VAR}``/``$VAR`` expanded from earlier ones or ``inherited``."""
        env: dict[str, str] = {}
        for instruction in self.all("ENV"):
            pairs = [token.split("=", 1) for token in shlex.split(instruction.value)]
            assert all(len(pair) == 2 for pair in pairs), f"use ENV key=value: {instruction.value}"
            scope = inherited | env  # references see the values before this instruction

            def expand(match: re.Match[str], scope: dict[str, str] = scope) -> str:
                return scope.get(match.group(1) or match.group(2), "")

            for key, value in pairs:
                env[key] = re.sub(r"\$\{(\w+)\}|\$(\w+)", expand, value)
        return env

    def copies(self) -> list[Copy]:
        result = []
        for instruction in self.all("COPY"):
            tokens = shlex.split(instruction.value)
            flags = {t.split("=", 1)[0]: t.split("=", 1)[-1] for t in tokens if t.startswith("--")}
            paths = [t for t in tokens if not t.startswith("--")]
            result.append(Copy(paths[:-1], paths[-1], flags.get("--from")))
        return result

    def exec_form(self, keyword: str) -> list[str]:
        """The last ``ENTRYPOINT``/``CMD``, required in exec form so the server receives SIGTERM; [] if absent."""
        instruction = self.last(keyword)
        if instruction is None:
            return []
        argv = instruction.exec_form()
        assert argv is not None, f"{keyword} must use the exec form so the server receives SIGTERM"
        return argv

    def command(self) -> list[str]:
        """What the container runs: ENTRYPOINT followed by CMD."""
        return self.exec_form("ENTRYPOINT") + self.exec_form("CMD")


def _logical_lines(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue  # comments, also inside a continued instruction, are dropped by Docker too
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    assert not current, "the Dockerfile ends inside a line continuation"
    return [line for line in lines if line]


def parse(path: Path = DOCKERFILE) -> list[Stage]:
    stages: list[Stage] = []
    for line in _logical_lines(path.read_text()):
        keyword, _, value = line.partition(" ")
        keyword, value = keyword.upper(), value.strip()
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", value, flags=re.IGNORECASE)
            assert match, line
            stages.append(Stage(base=match.group(1), name=match.group(2)))
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append(Instruction(keyword, value))
    return stages


def dockerignore_excludes(path: str, ignore_file: Path = DOCKERIGNORE) -> bool:
    """Whether Docker leaves ``path`` (relative, '/'-separated) out of the build context.

    Docker's rules: patterns are matched in order and the last match wins; ``!`` re-includes; a pattern that
    matches a directory matches everything below it; ``**`` matches any number of directories.
    """
    excluded = False
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in ignore_file.read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        regex = re.sub(r"\\\[(.*?)\\\]", r"[\1]", regex.replace(r"\?", "[^/]"))
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            excluded = not negated
    return excluded
