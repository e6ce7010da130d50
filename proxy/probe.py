"""``python -m proxy.probe URL``: a kubelet exec probe for a server that listens on loopback only.

In sidecar mode the proxy binds 127.0.0.1, so that only the containers of its own pod can use the provider
credential it holds (security issue #10, item 13). Kubelet's httpGet probes connect to the pod IP, so the
sidecar's probes run this inside the container instead: one ``GET``, exit status 0 on a 200 and 1 otherwise,
with the reason on stderr (kubelet records it in the pod's events).

Standard library only, and nothing of the gateway is imported: it runs every few seconds, so it must start
fast (about 15 ms of CPU here, where ``urllib.request`` alone would add http.client, email and ssl).
"""

from __future__ import annotations

import argparse
import socket
import sys
from urllib.parse import urlsplit


def probe(url: str, timeout: float) -> str | None:
    """None when ``url`` answers 200; otherwise why it did not."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.port is None:
        return f"{url}: expected http://HOST:PORT/PATH"
    path = parts.path or "/"
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as conn:
            # HTTP/1.0: the server closes after one response, so there is nothing to drain or reuse.
            conn.sendall(f"GET {path} HTTP/1.0\r\nHost: {parts.netloc}\r\n\r\n".encode("ascii"))
            status_line = conn.makefile("rb").readline(256)
    except (OSError, UnicodeEncodeError) as exc:
        return f"GET {url}: {exc}"
    fields = status_line.split()
    if len(fields) >= 2 and fields[0].startswith(b"HTTP/") and fields[1] == b"200":
        return None
    return f"GET {url}: {status_line.decode('latin-1').strip() or 'no status line'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proxy.probe", description=__doc__.splitlines()[0])
    parser.add_argument("url", help="e.g. http://127.0.0.1:8080/readyz")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds for connecting and for each read")
    args = parser.parse_args(argv)
    failure = probe(args.url, args.timeout)
    if failure is not None:
        print(failure, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
