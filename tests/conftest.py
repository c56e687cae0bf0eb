"""Every database test runs twice: on an SQLite file and on a real PostgreSQL database."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from app.db import all_tables
from app.migrate import upgrade
from tests.support import postgres
from tests.support.helpers import db_session

# Tests configure printhook explicitly; a developer's environment must not leak in.
for _name in list(os.environ):
    if _name.startswith("PRINTHOOK_") and _name != postgres.ENV_VAR:
        del os.environ[_name]


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    url = os.environ.get(postgres.ENV_VAR) or postgres.DEFAULT_URL
    if postgres.reachable(url):
        yield url
        return
    with postgres.throwaway_cluster() as started:
        if started and postgres.reachable(started):
            yield started
            return
    reason = f"no PostgreSQL at {postgres.ENV_VAR} and none could be started"
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " (CI requires PostgreSQL)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_database_url(postgres_server_url: str) -> Iterator[str]:
    """One migrated database per test session; tables are emptied before each test."""
    name = f"printhook_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = postgres.create_database(postgres_server_url, name)
    try:
        postgres.in_thread(upgrade, url)
        yield url
    finally:
        postgres.drop_database(postgres_server_url, name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "printhook.db"
    postgres.in_thread(upgrade, f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[str]:
    """A migrated, empty database of each dialect."""
    if request.param == "sqlite":
        path = tmp_path / "printhook.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url: str = request.getfixturevalue("postgres_database_url")
    async with db_session(url) as session:
        tables = ", ".join(f'"{name}"' for name in all_tables())
        await session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await session.commit()
    yield url
