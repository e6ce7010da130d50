"""The lock files pin every package the image installs, by version and sha256, and agree with pyproject.toml.

Offline: each line is ``name==version`` with hashes, every runtime dependency of pyproject.toml (and of the
extras it asks for) is locked at a version its specifier allows, the build lock satisfies
``[build-system] requires``, and the Dockerfile installs each lock with ``--require-hashes``.

With PyPI (``slow``): the Dockerfile's recipe replayed in fresh virtual environments: both locks installed
with ``--require-hashes --no-deps --only-binary=:all:``, the wheel built by the locked backend without build
isolation, installed without dependencies, and ``pip check``: a lock that misses a package, pins a file
whose hash changed, or has no wheel for this platform fails here before it fails a ``docker build``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .dockerfile import parse
from .manifests import REPO_ROOT

RUNTIME_LOCK = REPO_ROOT / "requirements.lock"
BUILD_LOCK = REPO_ROOT / "requirements-build.lock"
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class Pin:
    version: Version
    hashes: tuple[str, ...]


def read_lock(path: Path) -> dict[str, Pin]:
    """Canonical name to pin; fails on any requirement line that is not ``name==version --hash=...``."""
    text = re.sub(r"\\\n", " ", path.read_text())  # join continuation lines
    pins: dict[str, Pin] = {}
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"{path.name}: not an exact pin: {line[:80]}"
        assert ";" not in line, f"{path.name}: a marker makes the lock depend on where it is installed: {line[:80]}"
        hashes = tuple(HASH.findall(line))
        assert hashes, f"{path.name}: {match.group(1)} has no --hash, so pip --require-hashes would refuse it"
        assert line.count("--hash=") == len(hashes), f"{path.name}: {match.group(1)}: a hash is not sha256 hex"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"{path.name}: {name} is pinned twice"
        pins[name] = Pin(Version(match.group(2)), hashes)
    return pins


def missing_pins(requirements: list[str], pins: dict[str, Pin]) -> list[str]:
    """The requirements that ``pins`` leaves unmet, following each locked package's own requirements.

    Those come from the installed distribution's metadata where it is the locked version (here, the test
    environment is installed at the locked versions; the image replay below checks the rest with ``pip check``).
    """
    return _unmet([Requirement(text) for text in requirements], pins, set())


def _unmet(requirements: list[Requirement], pins: dict[str, Pin], seen: set[tuple[str, frozenset[str]]]) -> list[str]:
    problems = []
    for requirement in requirements:
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        pin = pins.get(name)
        if pin is None:
            problems.append(f"{requirement}: not locked")
            continue
        if not requirement.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{requirement}: locked at {pin.version}")
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            installed = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if Version(installed.version) != pin.version:
            continue
        needed = []
        for dependency in map(Requirement, installed.requires or []):
            extras = ("", *requirement.extras)
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": e}) for e in extras):
                wanted = f"[{','.join(sorted(dependency.extras))}]" if dependency.extras else ""
                needed.append(Requirement(f"{dependency.name}{wanted}{dependency.specifier}"))
        problems += _unmet(needed, pins, seen)
    return problems


def test_every_line_is_an_exact_pin_with_sha256_hashes() -> None:
    for path in (RUNTIME_LOCK, BUILD_LOCK):
        assert read_lock(path), f"{path.name} pins nothing"


def test_the_lock_meets_every_runtime_dependency_of_pyproject() -> None:
    assert missing_pins(PYPROJECT["project"]["dependencies"], read_lock(RUNTIME_LOCK)) == []


def test_the_build_lock_meets_the_build_system_requirements() -> None:
    assert missing_pins(PYPROJECT["build-system"]["requires"], read_lock(BUILD_LOCK)) == []


def test_the_build_backend_stays_out_of_the_runtime_lock() -> None:
    """What the runtime lock holds ends up in the image; the build backend must not."""
    assert "hatchling" not in read_lock(RUNTIME_LOCK)


@pytest.mark.parametrize(
    ("requirements", "lock", "problem"),
    [
        (["orjson>=3.10"], "", "not locked"),
        (["orjson>=3.10"], "orjson==3.9.0 --hash=sha256:" + "a" * 64, "locked at 3.9.0"),
        (["orjson>=3.10"], "orjson==3.10.0", "has no --hash"),
        (["orjson>=3.10"], "orjson>=3.10 --hash=sha256:" + "a" * 64, "not an exact pin"),
        (["orjson>=3.10"], "orjson==3.10.0 --hash=md5:" + "a" * 32, "has no --hash"),
        # The test environment's uvicorn[standard] needs uvloop, httptools, ... which this lock leaves out.
        (["uvicorn[standard]"], f"uvicorn=={metadata.version('uvicorn')} --hash=sha256:" + "a" * 64, "not locked"),
    ],
)
def test_a_lock_that_misses_is_caught(tmp_path: Path, requirements: list[str], lock: str, problem: str) -> None:
    path = tmp_path / "requirements.lock"
    path.write_text(lock + "\n")
    try:
        problems = missing_pins(requirements, read_lock(path))
    except AssertionError as exc:
        problems = [str(exc)]
    assert any(problem in p for p in problems), problems


def test_the_dockerfile_installs_each_lock_with_required_hashes_and_nothing_else() -> None:
    builder = parse()[0]
    installs = [i.value for i in builder.all("RUN") if "pip install" in i.value]
    for lock in (RUNTIME_LOCK.name, BUILD_LOCK.name):
        [command] = [c for c in installs if f"--requirement {lock}" in c]
        for flag in ("--require-hashes", "--no-deps", "--only-binary=:all:"):
            assert flag in command.split(f"--requirement {lock}")[0].rsplit("pip install", 1)[1], (lock, flag)
    # Whatever else is installed comes without dependencies: the project's wheel.
    for command in installs:
        for part in command.split("&&"):
            if "pip install" in part and "--requirement" not in part:
                assert "--no-deps" in part, part
    assert any("--no-build-isolation" in i.value for i in builder.all("RUN") if "pip wheel" in i.value)
    assert any("pip check" in i.value for i in builder.all("RUN"))


def venv_with_pip(path: Path) -> Path:
    run([sys.executable, "-m", "venv", str(path)])
    return path / "bin" / "python"


def run(argv: list[str], cwd: Path | None = None) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False, cwd=cwd)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.slow
def test_the_dockerfiles_install_from_the_locks_resolves_and_checks(tmp_path: Path) -> None:
    """The builder stage's commands, against PyPI, on this platform (linux, CPython 3.11)."""
    locked = ["install", "--require-hashes", "--no-deps", "--only-binary=:all:", "--requirement"]
    runtime, build = venv_with_pip(tmp_path / "venv"), venv_with_pip(tmp_path / "build")
    run([str(runtime), "-m", "pip", *locked, str(RUNTIME_LOCK)])
    run([str(build), "-m", "pip", *locked, str(BUILD_LOCK)])
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (source / name).write_bytes((REPO_ROOT / name).read_bytes())
    subprocess.run(["cp", "-r", str(REPO_ROOT / "proxy"), str(source / "proxy")], check=True)
    dist = tmp_path / "dist"
    run([str(build), "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(dist), "."],
        cwd=source)
    [wheel] = dist.glob("testmode_proxy-*.whl")
    run([str(runtime), "-m", "pip", "install", "--no-deps", str(wheel)])
    run([str(runtime), "-m", "pip", "check"])
    installed = {
        canonicalize_name(line.split("==")[0]): Version(line.split("==")[1])
        for line in run([str(runtime), "-m", "pip", "freeze", "--all"]).splitlines() if "==" in line
    }
    expected = {name: pin.version for name, pin in read_lock(RUNTIME_LOCK).items()}
    assert {k: v for k, v in installed.items() if k not in {"pip", "setuptools", "testmode-proxy"}} == expected
    run([str(runtime), "-c", "import proxy.app, uvloop, httptools, jsonschema_rs"])
