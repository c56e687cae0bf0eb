"""The vendor traffic the fault tests send: orders (two webhooks, in order) and jobs."""

from __future__ import annotations

from sqlalchemy import select

from app.printess.models import PrintessJob
from app.printmotor.models import PrintmotorOrder
from tests.faults.checks import duplicate_feed_rows, feed_by_subject, feed_rows
from tests.support.helpers import db_session
from tests.support.sender import Sender, printess_callback, printmotor_webhook, track_job

ORDER_FEED = ["printmotor.order.received", "printmotor.order.status_changed"]
JOB_FEED = ["printess.job.tracked", "printess.job.succeeded"]


async def send_subject(sender: Sender, n: int, prefix: str) -> tuple[str, str]:
    """An odd `n` is an order: PROCESSING, then (once acknowledged) DELIVERED. An even `n` is
    a job: every other one tracked first with PUT, then its final callback."""
    if n % 2:
        await sender.deliver(printmotor_webhook(n, "USER_ORDER_PROCESSING"))
        await sender.deliver(printmotor_webhook(n, "USER_ORDER_DELIVERED", tracking_code=f"T{n}"))
        return "order", str(n)
    job_id = f"{prefix}-{n}"
    if n % 4 == 0:
        await sender.deliver(track_job(job_id))
    await sender.deliver(printess_callback(job_id))
    return "job", job_id


async def assert_final_states(database_url: str, done: list[tuple[str, str]]) -> int:
    """Orders delivered with their tracking code, jobs succeeded, and the feed holds exactly
    one row per real change (two per subject). Returns the number of feed rows."""
    orders = sorted(subject for kind, subject in done if kind == "order")
    jobs = sorted(subject for kind, subject in done if kind == "job")
    async with db_session(database_url) as session:
        stored_orders = {
            row.order_number: (row.status, row.tracking_code)
            for row in (await session.scalars(select(PrintmotorOrder))).all()
        }
        stored_jobs = {
            row.job_id: row.status for row in (await session.scalars(select(PrintessJob))).all()
        }
    assert stored_orders == {n: ("delivered", f"T{n}") for n in orders}
    assert stored_jobs == dict.fromkeys(jobs, "succeeded")
    rows = await feed_rows(database_url)
    assert duplicate_feed_rows(rows) == []
    assert feed_by_subject(rows) == {n: ORDER_FEED for n in orders} | {j: JOB_FEED for j in jobs}
    return len(rows)
