"""Reading printhook's Printess rows in tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from app.feed.models import Event
from app.inbound.models import InboundEvent
from app.printess.models import PrintessJob
from tests.support.helpers import db_session


async def job_row(database_url: str, job_id: str) -> PrintessJob | None:
    async with db_session(database_url) as session:
        return await session.get(PrintessJob, job_id)


async def events_of(database_url: str, job_id: str) -> list[str]:
    async with db_session(database_url) as session:
        rows = await session.scalars(
            select(Event.type).where(Event.subject_id == job_id).order_by(Event.id)
        )
        return list(rows)


async def inbound_outcomes(database_url: str) -> list[str]:
    async with db_session(database_url) as session:
        rows = await session.scalars(
            select(InboundEvent.state)
            .where(InboundEvent.source == "printess")
            .order_by(InboundEvent.id)
        )
        return list(rows)


async def count_jobs(database_url: str) -> int:
    async with db_session(database_url) as session:
        return int(await session.scalar(select(func.count()).select_from(PrintessJob)) or 0)


async def event_data(database_url: str, job_id: str, type_: str) -> dict[str, Any]:
    async with db_session(database_url) as session:
        data = await session.scalar(
            select(Event.data).where(Event.subject_id == job_id, Event.type == type_)
        )
    assert data is not None
    return dict(data)
