"""proxy/probe.py: the sidecar's exec probe passes on a 200 from the real server and fails, saying why, otherwise."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from proxy.probe import probe
from tests.support.servers import Gateway, free_port


def test_a_ready_gateway_passes(gateway: Gateway) -> None:
    assert probe(f"{gateway.url}/readyz", timeout=2) is None
    assert probe(f"{gateway.url}/healthz", timeout=2) is None


def test_any_other_status_fails_with_the_status_line(gateway: Gateway) -> None:
    assert probe(f"{gateway.url}/metrics/nope", timeout=2) == f"GET {gateway.url}/metrics/nope: HTTP/1.1 404 Not Found"


def test_nothing_listening_fails_with_the_reason() -> None:
    url = f"http://127.0.0.1:{free_port()}/readyz"
    failure = probe(url, timeout=2)
    assert failure is not None and failure.startswith(f"GET {url}: ") and "refused" in failure.lower()


@pytest.mark.parametrize("url", ["https://127.0.0.1:8080/readyz", "http://127.0.0.1/readyz", "127.0.0.1:8080"])
def test_a_url_it_cannot_probe_is_a_failure_not_a_guess(url: str) -> None:
    assert probe(url, timeout=1) == f"{url}: expected http://HOST:PORT/PATH"


@pytest.fixture
def answers_garbage() -> Iterator[int]:
    """A listener that answers every connection with something that is not HTTP, then closes it."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        for _ in range(2):
            connection, _ = server.accept()
            with connection:
                connection.recv(1024)
                connection.sendall(b"SSH-2.0-OpenSSH 200\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    server.close()
    thread.join(timeout=5)


def test_a_200_somewhere_in_a_non_http_answer_is_not_ready(answers_garbage: int) -> None:
    url = f"http://127.0.0.1:{answers_garbage}/readyz"
    assert probe(url, timeout=2) == f"GET {url}: SSH-2.0-OpenSSH 200"
    # As kubelet runs it: exit status 1, the reason on stderr.
    result = subprocess.run([sys.executable, "-I", "-m", "proxy.probe", url, "--timeout", "2"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert (result.returncode, result.stderr.strip()) == (1, f"GET {url}: SSH-2.0-OpenSSH 200")


def test_the_command_exits_0_for_a_ready_gateway(gateway: Gateway) -> None:
    result = subprocess.run([sys.executable, "-I", "-m", "proxy.probe", f"{gateway.url}/readyz"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert (result.returncode, result.stderr) == (0, "")
