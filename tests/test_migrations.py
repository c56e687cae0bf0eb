"""The Alembic history builds exactly the models' schema on both dialects, and unwinds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import Base, all_tables, import_models
from app.migrate import alembic_config, head_revision, upgrade
from tests.support import postgres


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A brand-new database with no tables at all."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    server: str = request.getfixturevalue("postgres_server_url")
    name = f"printhook_migrations_{uuid.uuid4().hex[:8]}"
    url = postgres.create_database(server, name)
    try:
        yield url
    finally:
        postgres.drop_database(server, name)


def inspect_database(url: str) -> tuple[list[Any], set[str], str | None]:
    """(differences between models and database, tables present, current revision)."""
    import_models()

    def _inspect(connection: Connection) -> tuple[list[Any], set[str], str | None]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
        tables = set(inspect(connection).get_table_names())
        return diffs, tables, context.get_current_revision()

    async def _run() -> tuple[list[Any], set[str], str | None]:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(_inspect)
        finally:
            await engine.dispose()

    return asyncio.run(_run())


def test_upgrade_from_empty_matches_the_models_and_downgrade_unwinds_it(
    empty_database_url: str,
) -> None:
    upgrade(empty_database_url)
    diffs, tables, revision = inspect_database(empty_database_url)
    assert diffs == []
    assert set(all_tables()) <= tables
    assert revision == head_revision()

    command.downgrade(alembic_config(empty_database_url), "base")
    diffs, tables, revision = inspect_database(empty_database_url)
    assert tables - {"alembic_version"} == set()
    assert revision is None

    upgrade(empty_database_url)
    diffs, tables, revision = inspect_database(empty_database_url)
    assert diffs == []
    assert revision == head_revision()
