# syntax=docker/dockerfile:1
#
# testmode-proxy image: a builder stage with pip and the build backend, and a slim runtime stage that
# receives only the virtual environment and the policies.
#
# Every input is pinned (security issue #10, item 13): the base image by digest (with a digest the tag is only
# a label; the digest is the multi-platform index of python:3.11.16-slim-trixie), every Python package by
# version and sha256 in requirements.lock (runtime) and requirements-build.lock (the build backend). To move
# to a newer base: `docker buildx imagetools inspect python:3.11-slim-trixie` prints the index digest. To
# update the packages: the commands at the top of each lock file (docs/deploy.md, "Pinned inputs").
#
#   docker build -t testmode-proxy .
#   docker run --rm -p 127.0.0.1:8080:8080 -e TESTMODE_PROXY_HOST=0.0.0.0 \
#     -v "$PWD/credentials:/etc/testmode-proxy/credentials:ro" \
#     -e TESTMODE_PROXY_CREDENTIALS_DIR=/etc/testmode-proxy/credentials testmode-proxy

FROM python:3.11.16-slim-trixie@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7 AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# Two environments: /opt/venv becomes the image's, /opt/build holds the build backend and stays behind.
RUN python -m venv /opt/venv \
    && python -m venv /opt/build
WORKDIR /src

# Dependencies first, in their own layer: rebuilt only when a lock file changes, not on every source edit.
# --require-hashes: each downloaded file must match a sha256 in the lock, so a replaced or re-uploaded release
# fails the build. --no-deps: the lock is the whole set, nothing is resolved here. --only-binary: wheels only,
# so no package's build code runs in the build. (tests/deploy/test_lock.py keeps the locks and pyproject.toml
# in step.)
COPY requirements.lock requirements-build.lock ./
RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-deps --only-binary=:all: \
        --requirement requirements.lock \
    && /opt/build/bin/pip install --no-cache-dir --require-hashes --no-deps --only-binary=:all: \
        --requirement requirements-build.lock

# Then the project: a wheel built by the locked backend (no build isolation, so nothing unpinned is fetched),
# installed without dependencies; `pip check` fails the build if the lock misses one the wheel declares.
COPY pyproject.toml README.md ./
COPY proxy/ proxy/
RUN /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /dist . \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps /dist/testmode_proxy-*.whl \
    && /opt/venv/bin/pip check


FROM python:3.11.16-slim-trixie@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7 AS runtime

# A fixed numeric user, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN groupadd --system --gid 10001 testmode-proxy \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin testmode-proxy \
    && mkdir -p /var/lib/testmode-proxy \
    && chown 10001:10001 /var/lib/testmode-proxy

COPY --from=builder /opt/venv /opt/venv
COPY policies/ /app/policies/

# Loopback by default: a container that listens on 0.0.0.0 is reachable from every container on its network,
# and each of them could send requests that leave with the provider credential. Whoever publishes the port
# opts in (`-e TESTMODE_PROXY_HOST=0.0.0.0 -p 127.0.0.1:8080:8080`); the Helm chart sets 0.0.0.0 for the
# gateway behind its Service and keeps 127.0.0.1 for a sidecar.
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TESTMODE_PROXY_HOST=127.0.0.1 \
    TESTMODE_PROXY_PORT=8080 \
    TESTMODE_PROXY_POLICIES=/app/policies \
    TESTMODE_PROXY_STATE_DIR=/var/lib/testmode-proxy \
    TESTMODE_PROXY_LOG_LEVEL=info

# A policy that does not load fails the build, not the first pod.
RUN ["testmode-proxy", "check", "/app/policies"]

WORKDIR /app
USER 10001:10001
EXPOSE 8080

# Exec form: the server is PID 1 and receives SIGTERM itself, so uvicorn drains in-flight requests.
ENTRYPOINT ["testmode-proxy"]
CMD ["serve"]
