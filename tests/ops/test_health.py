from sqlalchemy import text

from tests.support.helpers import db_session, make_settings, running_app


async def test_healthz_answers_without_touching_the_database(tmp_path: object) -> None:
    settings = make_settings("sqlite+aiosqlite:////nonexistent-dir/printhook.db")
    async with running_app(settings) as (_, client):
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


async def test_readyz_is_ready_on_a_migrated_database(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as (_, client):
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["ok"] is True


async def test_readyz_is_not_ready_when_schema_is_behind(database_url: str) -> None:
    async with db_session(database_url) as session:
        await session.execute(text("UPDATE alembic_version SET version_num = '0001_core'"))
        await session.commit()
    async with running_app(make_settings(database_url)) as (_, client):
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reason"] == "schema not at head"


async def test_readyz_is_not_ready_when_the_database_is_unreachable() -> None:
    settings = make_settings("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    async with running_app(settings) as (_, client):
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reason"] == "database unreachable"


async def test_unknown_path_answers_problem_json() -> None:
    settings = make_settings("sqlite+aiosqlite:////nonexistent-dir/printhook.db")
    async with running_app(settings) as (_, client):
        response = await client.get("/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:printhook:problem:not-found"
