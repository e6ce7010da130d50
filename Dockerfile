# syntax=docker/dockerfile:1
#
# testmode-proxy image: a builder stage with pip and the build backend, and a slim runtime stage that
# receives only the virtual environment and the policies.
#
#   docker build -t testmode-proxy .
#   docker run --rm -p 8080:8080 -e TESTMODE_PROXY_CREDENTIAL_SENT=... testmode-proxy

FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes, not on every
# source edit. They are read from pyproject.toml itself, so there is no second list to keep in sync.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir --requirement requirements.txt

# Then the project, built as a wheel (the build backend stays in this stage) and installed into the venv.
COPY README.md ./
COPY proxy/ proxy/
RUN /opt/venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /dist . \
    && /opt/venv/bin/pip install --no-cache-dir /dist/testmode_proxy-*.whl


FROM python:3.11-slim AS runtime

# A fixed numeric user, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN groupadd --system --gid 10001 testmode-proxy \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin testmode-proxy \
    && mkdir -p /var/lib/testmode-proxy \
    && chown 10001:10001 /var/lib/testmode-proxy

COPY --from=builder /opt/venv /opt/venv
COPY policies/ /app/policies/

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TESTMODE_PROXY_HOST=0.0.0.0 \
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
