# drainer container image.
#
#   docker build -t drainer:local .
#   docker run --rm -p 8080:8080 \
#     -e DRAINER__MASTER_DATABASE__HOST=... -e DRAINER__MASTER_DATABASE__PASSWORD=... \
#     -e DRAINER__REDIS__HOST=... drainer:local
#
# Two stages: the builder has compilers and builds every dependency into a
# virtualenv; the runtime stage copies only that virtualenv onto a clean slim
# image (no compilers, no pip cache) and runs as an unprivileged user.

ARG PYTHON_VERSION=3.11

# --- builder -------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS builder

# Extras baked into the image: `otlp` exports traces over OTLP/HTTP. (`embedded`
# and `dev` are for tests and laptops, not for the image.)
ARG DRAINER_EXTRAS=otlp

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

# Build tools for any dependency without a prebuilt wheel on this platform
# (asyncpg, uvloop, hiredis and orjson ship wheels for linux/amd64 and arm64).
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --upgrade pip setuptools wheel

WORKDIR /src
# Metadata first, then the packages (setup.py-less build through pyproject.toml).
# README* (not README.md) so a checkout without the readme still builds.
COPY pyproject.toml README* ./
COPY app ./app
COPY consumers ./consumers
COPY db ./db
COPY api ./api
# A regular (non-editable) install: the code lands in the venv's site-packages, so
# the runtime image needs no source tree. The image carries the service only: the
# developer tools (drainer.devtools: the benchmark, the demo, the embedded servers)
# are removed, and `drainer bench` or `drainer demo` then says so in one line and
# exits 2.
# Then everything in the venv is byte-compiled, explicitly rather than by pip's
# default: the runtime never writes .pyc (read-only, PYTHONDONTWRITEBYTECODE), and
# without them each start would compile every module it imports (start-up is
# mostly imports: 1.5 s becomes 4.7 s on 2 slow cores). `unchecked-hash` .pyc are
# used whatever the sources' mtimes become on their way to the runtime stage (a
# build that rewrites timestamps would make timestamp-checked ones stale for good);
# -f also rewrites the few a `python -c` above wrote the usual way.
RUN pip install --no-compile ".[${DRAINER_EXTRAS}]" \
 && rm -rf "$(python -c 'import pathlib, drainer; print(pathlib.Path(drainer.__file__).parent / "devtools")')" \
 && python -m compileall -q -f -j 0 --invalidation-mode unchecked-hash /opt/venv/lib \
 && ! python -c 'import drainer.devtools' 2> /dev/null \
 && drainer --help > /dev/null

# --- runtime -------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime

LABEL org.opencontainers.image.title="drainer" \
      org.opencontainers.image.description="Drains database operations from partitioned Redis Streams into PostgreSQL" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DRAINER__SERVER__HOST=0.0.0.0

# The slim base image ships its standard library without bytecode (its build deletes
# every .pyc), and this image never writes any: compiled here, once, or each start
# compiles asyncio, logging, json, email, ... again (about 0.85 s of `drainer run`'s
# start-up on 2 slow cores; about 14 MB).
# Test directories are skipped (the official slim image deletes them; some hold files
# that are deliberately not valid Python, which would fail the build).
RUN python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
      -x '/(test|tests|idle_test)/' \
      "$(python -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')"

# Fixed uid/gid 10001: matches the Helm chart's securityContext (runAsUser 10001).
RUN groupadd --system --gid 10001 drainer \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin drainer

COPY --from=builder /opt/venv /opt/venv

# Default settings file so `docker run` works with environment overrides alone
# (DRAINER__<SECTION>__<KEY>); Kubernetes mounts its ConfigMap over /etc/drainer.
RUN mkdir -p /etc/drainer \
 && printf '%s\n' \
      '# Baked-in defaults. Override any key with DRAINER__<SECTION>__<KEY>, or mount' \
      '# your own file at /etc/drainer/drainer.toml.' \
      '[server]' \
      'port = 8080' \
      > /etc/drainer/drainer.toml \
 && chmod 0644 /etc/drainer/drainer.toml

USER 10001:10001
WORKDIR /tmp

EXPOSE 8080

# The app handles SIGTERM itself: it stops reading, finishes and acknowledges the
# batches in flight and exits 0 within [drainer] shutdown_timeout_s (default 30s).
# Give it longer than that: `docker stop -t 45`, compose `stop_grace_period: 45s`.
STOPSIGNAL SIGTERM

# Liveness only (/health); /health/ready is for readiness (database and Redis reachable).
# The slim image has no curl, so python's urllib does the request.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('DRAINER__SERVER__PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["drainer"]
CMD ["run", "--config", "/etc/drainer/drainer.toml"]
