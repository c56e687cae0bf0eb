# printhook: the HTTP service and its background work in one image.
#   docker build -t printhook .
#   docker run -p 8000:8000 -v printhook-data:/var/lib/printhook printhook      (SQLite)
# With PostgreSQL, run `printhook migrate` once per release before starting the new version
# (docker-compose.yml does this with its one-shot `migrate` service).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /srv/printhook
# Dependencies first, pinned and hash-checked, so this layer is reused across code changes.
# The lock also pins setuptools, which builds the project below without fetching anything.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
# Editable: `printhook migrate` finds migrations/ next to the app package, so the source
# tree stays at /srv/printhook and the venv points at it.
RUN pip install --no-deps --no-build-isolation --editable . \
    && python -m compileall -q app migrations

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PRINTHOOK_DATABASE_URL=sqlite+aiosqlite:////var/lib/printhook/printhook.db
RUN groupadd --system --gid 10001 printhook \
    && useradd --system --uid 10001 --gid printhook --home-dir /var/lib/printhook \
        --no-create-home --shell /usr/sbin/nologin printhook \
    && mkdir -p /var/lib/printhook \
    && chown printhook:printhook /var/lib/printhook
COPY --from=build /opt/venv /opt/venv
COPY --from=build /srv/printhook /srv/printhook
WORKDIR /srv/printhook
USER 10001:10001
# The SQLite default lives here; with PostgreSQL nothing is written to disk.
VOLUME ["/var/lib/printhook"]
EXPOSE 8000
# uvicorn stops accepting on SIGTERM, finishes in-flight requests, then stops the workers.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["printhook", "serve", "--host", "0.0.0.0"]
