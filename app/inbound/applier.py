"""The applier: pending inbound events, applied once each, in arrival order per subject.

The ack path only stores raw bytes as `pending`. This loop (in the web process by default, and
in `printhook worker`) claims pending events in batches with a lease (`FOR UPDATE SKIP LOCKED`
on PostgreSQL; SQLite's BEGIN IMMEDIATE serialises claims), hands each to its vendor and
records what became of it: `applied`, `unchanged`, `rejected` (with the reason) or, after
`PRINTHOOK_APPLY_MAX_ATTEMPTS` unexpected failures, `failed` (parked for replay).

Vendors plug in through `VendorApplier` (Celery's task registry is the model): `prepare` runs
outside any transaction (parsing; a vendor call such as Printess status/get), `apply` runs
inside the transaction that also records the event's state, through the vendor's one
transition. `app/inbound` never imports a vendor package.

Ordering: only the oldest pending event of a subject can be claimed, so events of one job or
order are applied one after another in arrival order, by whichever replica, and a later event
waits while an earlier one is retried. Each source has its own lane, so a Printess callback
waiting for a status/get slot never delays a Printmotor webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import exists, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.context import AppContext
from app.db import utcnow
from app.errors import is_database_unavailable
from app.inbound.models import APPLIED, FAILED, PENDING, REJECTED, UNCHANGED, InboundEvent
from app.leases import lease_is_free
from app.ops.metrics import APPLY_LAG_SECONDS, INBOUND_APPLIED

log = logging.getLogger("printhook.inbound.applier")

# How often an idle lane looks for events stored by other replicas (its own wake it at once).
IDLE_POLL_SECONDS = 0.5
RETRY_BACKOFF_CAP = timedelta(minutes=5)


class Reject(Exception):
    """The event cannot be applied as sent; `reason` is kept on the row (never the body)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryLater(Exception):
    """Not now (a vendor is throttling or unreachable): try again at `at`.

    `counts` is False when the wait says nothing about the event (a shared rate budget is
    paused), so it never brings the event closer to being parked.
    """

    def __init__(self, reason: str, *, at: datetime | None = None, counts: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.at = at
        self.counts = counts


@dataclass(frozen=True)
class PendingEvent:
    """A claimed event as the vendors see it."""

    id: int
    source: str
    subject_id: str | None
    event_type: str | None
    auth_context: str | None
    body: bytes | None
    received_at: datetime
    attempts: int
    state: str
    # Applied again by hand (`printhook replay`, the operator API), not by the applier loop.
    is_replay: bool = False


@dataclass(frozen=True)
class Effect:
    """What applying an event did; `note` is kept on the row (e.g. "verification deferred")."""

    changed: bool
    note: str | None = None


class VendorApplier(Protocol):
    """What a vendor registers with the applier."""

    source: str

    def batch_limit(self, ctx: AppContext) -> int:
        """At most this many events per claim (a lease must outlast one batch)."""
        ...

    async def prepare(self, ctx: AppContext, event: PendingEvent) -> Any:
        """Parse (raise Reject) and do any vendor call (raise RetryLater); no transaction."""
        ...

    async def apply(
        self, ctx: AppContext, session: AsyncSession, event: PendingEvent, prepared: Any
    ) -> Effect:
        """Apply through the vendor's transition in `session`; say whether something changed.
        Never commits: the applier records the event's state in the same transaction."""
        ...


@dataclass(frozen=True)
class Outcome:
    state: str
    error: str | None = None
    retry_at: datetime | None = None
    counts_attempt: bool = False


class ReplayError(Exception):
    """The event cannot be replayed; the message says why (and never holds its body)."""


def describe_error(exc: BaseException) -> str:
    """What went wrong, for the row and the log: never SQL parameters or request bodies."""
    if isinstance(exc, DBAPIError):
        orig = exc.orig
        code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        name = type(getattr(orig, "__cause__", None) or orig).__name__
        return f"database refused the change ({name}{', SQLSTATE ' + code if code else ''})"
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _outcome(effect: Effect) -> Outcome:
    return Outcome(APPLIED if effect.changed else UNCHANGED, effect.note)


def _refused_data(exc: BaseException) -> bool:
    if not isinstance(exc, DBAPIError):
        return False
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return isinstance(code, str) and code.startswith("22")


def retry_delay(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s ... up to five minutes, with jitter."""
    base = min(RETRY_BACKOFF_CAP.total_seconds(), 2.0 ** max(attempts - 1, 0))
    return timedelta(seconds=base * random.uniform(0.8, 1.2))


class Applier:
    def __init__(self, ctx: AppContext, vendors: Sequence[VendorApplier]) -> None:
        self.ctx = ctx
        self.vendors = {vendor.source: vendor for vendor in vendors}

    # --- claiming ------------------------------------------------------------------------

    async def _claim(self, vendor: VendorApplier) -> list[PendingEvent]:
        now = utcnow()
        event = InboundEvent
        earlier = aliased(InboundEvent)
        # OFFSET 0 keeps this a per-row subplan on the pending index: as an anti-join, a
        # table without statistics yet (a fresh database under a burst) was planned as a
        # scan of every pending event per candidate, and one claim took minutes.
        blocked = exists(
            select(earlier.id)
            .where(
                earlier.state == PENDING,
                earlier.source == event.source,
                earlier.subject_id == event.subject_id,
                earlier.id < event.id,
            )
            .offset(0)
        )
        async with self.ctx.session_factory() as session:
            ids = list(
                (
                    await session.scalars(
                        select(event.id)
                        .where(
                            event.state == PENDING,
                            event.source == vendor.source,
                            or_(event.next_attempt_at.is_(None), event.next_attempt_at <= now),
                            lease_is_free(event, now),
                            ~blocked,
                        )
                        .order_by(event.id)
                        .limit(vendor.batch_limit(self.ctx))
                        .with_for_update(skip_locked=True)
                    )
                ).all()
            )
            if not ids:
                await session.commit()
                return []
            await session.execute(
                update(event)
                .where(event.id.in_(ids))
                .values(
                    lease_owner=self.ctx.instance_id,
                    leased_until=now + self.ctx.settings.lease_grace,
                )
            )
            rows = (
                await session.execute(
                    select(
                        event.id,
                        event.source,
                        event.subject_id,
                        event.event_type,
                        event.auth_context,
                        event.body,
                        event.received_at,
                        event.attempts,
                        event.state,
                    )
                    .where(event.id.in_(ids))
                    .order_by(event.id)
                )
            ).all()
            await session.commit()
        return [PendingEvent(*row) for row in rows]

    # --- applying --------------------------------------------------------------------------

    async def run_batch(self, source: str) -> int:
        """Claim and apply one batch of `source`'s due events; return how many were claimed."""
        vendor = self.vendors[source]
        events = await self._claim(vendor)
        if not events:
            return 0
        outcomes: dict[int, Outcome] = {}
        ready: list[tuple[PendingEvent, Any]] = []
        for event in events:
            if event.body is None:
                outcomes[event.id] = Outcome(REJECTED, "the body was purged before it was applied")
                continue
            try:
                ready.append((event, await vendor.prepare(self.ctx, event)))
            except Reject as exc:
                outcomes[event.id] = Outcome(REJECTED, exc.reason)
            except RetryLater as exc:
                outcomes[event.id] = self._retry(event, exc.reason, exc.at, exc.counts)
            except Exception as exc:
                if is_database_unavailable(exc):
                    await self._release([e.id for e in events])
                    raise
                outcomes[event.id] = self._failure(event, exc)
        try:
            async with self.ctx.session_factory() as session:
                applied = dict(outcomes)
                # Optional: a vendor may lock the batch's subjects in one statement.
                begin_batch = getattr(vendor, "begin_batch", None)
                if begin_batch is not None and ready:
                    await begin_batch(self.ctx, session, [prepared for _, prepared in ready])
                for event, prepared in ready:
                    effect = await vendor.apply(self.ctx, session, event, prepared)
                    applied[event.id] = _outcome(effect)
                await self._record(session, events, applied)
                await session.commit()
            outcomes = applied
        except Exception as exc:
            if is_database_unavailable(exc):
                await self._release([e.id for e in events])
                raise
            # One of them broke the shared transaction: apply each on its own, so one bad
            # event never holds up the others.
            outcomes = await self._one_by_one(vendor, events, ready, outcomes)
        self._observe(events, outcomes)
        return len(events)

    async def _one_by_one(
        self,
        vendor: VendorApplier,
        events: list[PendingEvent],
        ready: list[tuple[PendingEvent, Any]],
        outcomes: dict[int, Outcome],
    ) -> dict[int, Outcome]:
        for event, prepared in ready:
            try:
                async with self.ctx.session_factory() as session:
                    outcome = _outcome(await vendor.apply(self.ctx, session, event, prepared))
                    await self._record(session, [event], {event.id: outcome})
                    await session.commit()
            except Exception as exc:
                if is_database_unavailable(exc):
                    await self._release([e.id for e in events])
                    raise
                outcome = self._failure(event, exc)
                async with self.ctx.session_factory() as session:
                    await self._record(session, [event], {event.id: outcome})
                    await session.commit()
            outcomes[event.id] = outcome
        ready_ids = {event.id for event, _ in ready}
        rest = [event for event in events if event.id not in ready_ids]
        if rest:
            async with self.ctx.session_factory() as session:
                await self._record(session, rest, outcomes)
                await session.commit()
        return outcomes

    def _retry(
        self, event: PendingEvent, reason: str, at: datetime | None, counts: bool
    ) -> Outcome:
        attempts = event.attempts + (1 if counts else 0)
        if counts and attempts >= self.ctx.settings.apply_max_attempts:
            return Outcome(FAILED, reason, counts_attempt=True)
        when = at or utcnow() + retry_delay(attempts)
        return Outcome(PENDING, reason, retry_at=when, counts_attempt=counts)

    def _failure(self, event: PendingEvent, exc: BaseException) -> Outcome:
        reason = describe_error(exc)
        if _refused_data(exc):
            # The database refuses these values (class 22: data exception): retrying the
            # same bytes cannot help. A parser should have caught it; say so loudly.
            log.error(
                "inbound.apply.refused_data",
                extra={"inbound_event_id": event.id, "source": event.source, "error": reason},
            )
            return Outcome(REJECTED, reason, counts_attempt=True)
        log.error(
            "inbound.apply.failed",
            exc_info=exc,
            extra={
                "inbound_event_id": event.id,
                "source": event.source,
                "subject_id": event.subject_id,
                "attempt": event.attempts + 1,
                "error": reason,
            },
        )
        return self._retry(event, reason, None, True)

    async def _record(
        self, session: AsyncSession, events: Sequence[PendingEvent], outcomes: dict[int, Outcome]
    ) -> None:
        """Write each event's state (and release its lease) in `session`."""
        now = utcnow()
        final: dict[tuple[str, str | None, bool], list[int]] = {}
        for event in events:
            outcome = outcomes[event.id]
            if outcome.state == PENDING:
                await session.execute(
                    update(InboundEvent)
                    .where(InboundEvent.id == event.id)
                    .values(
                        error=outcome.error,
                        attempts=event.attempts + (1 if outcome.counts_attempt else 0),
                        next_attempt_at=outcome.retry_at,
                        lease_owner=None,
                        leased_until=None,
                    )
                )
                continue
            key = (outcome.state, outcome.error, outcome.counts_attempt)
            final.setdefault(key, []).append(event.id)
        for (state, error, counts), ids in final.items():
            values: dict[str, Any] = {
                "state": state,
                "error": error,
                "processed_at": now,
                "next_attempt_at": None,
                "lease_owner": None,
                "leased_until": None,
            }
            if counts:
                values["attempts"] = InboundEvent.attempts + 1
            await session.execute(
                update(InboundEvent).where(InboundEvent.id.in_(ids)).values(**values)
            )

    async def _release(self, ids: list[int]) -> None:
        with contextlib.suppress(Exception):
            async with self.ctx.session_factory() as session:
                await session.execute(
                    update(InboundEvent)
                    .where(
                        InboundEvent.id.in_(ids),
                        InboundEvent.lease_owner == self.ctx.instance_id,
                    )
                    .values(lease_owner=None, leased_until=None)
                )
                await session.commit()

    def _observe(self, events: list[PendingEvent], outcomes: dict[int, Outcome]) -> None:
        now = utcnow()
        for event in events:
            outcome = outcomes[event.id]
            INBOUND_APPLIED.labels(event.source, outcome.state).inc()
            if outcome.state in (APPLIED, UNCHANGED, REJECTED):
                lag = (now - event.received_at).total_seconds()
                APPLY_LAG_SECONDS.labels(event.source).observe(max(lag, 0.0))
            if outcome.state == REJECTED:
                log.info(
                    "inbound.event.rejected",
                    extra={
                        "inbound_event_id": event.id,
                        "source": event.source,
                        "subject_id": event.subject_id,
                        "reason": outcome.error,
                    },
                )
            elif outcome.state == FAILED:
                log.error(
                    "inbound.event.parked",
                    extra={
                        "inbound_event_id": event.id,
                        "source": event.source,
                        "subject_id": event.subject_id,
                        "error": outcome.error,
                    },
                )

    # --- replaying ------------------------------------------------------------------------

    async def replay(self, event_id: int) -> InboundEvent:
        """Apply one stored event again, whatever its state, through the same transition.

        Replaying an event whose effect is already there changes nothing (`unchanged`, or it
        stays `applied`); a parked or rejected event that now applies becomes `applied`.
        """
        async with self.ctx.session_factory() as session:
            row = await session.get(InboundEvent, event_id)
            await session.commit()
        if row is None:
            raise ReplayError(f"no inbound event with id {event_id}")
        if row.body is None:
            purged = row.body_purged_at.isoformat() if row.body_purged_at else "earlier"
            raise ReplayError(
                f"inbound event {event_id} cannot be replayed: its body was purged by "
                f"retention ({purged}); only the metadata row is kept"
            )
        vendor = self.vendors.get(row.source)
        if vendor is None:
            raise ReplayError(f"inbound event {event_id} has unknown source {row.source!r}")
        event = PendingEvent(
            row.id,
            row.source,
            row.subject_id,
            row.event_type,
            row.auth_context,
            row.body,
            row.received_at,
            row.attempts,
            row.state,
            is_replay=True,
        )
        try:
            prepared = await vendor.prepare(self.ctx, event)
        except Reject as exc:
            outcome = Outcome(REJECTED, exc.reason)
        except RetryLater as exc:
            raise ReplayError(
                f"inbound event {event_id} cannot be applied now: {exc.reason}"
            ) from None
        else:
            try:
                async with self.ctx.session_factory() as session:
                    effect = await vendor.apply(self.ctx, session, event, prepared)
                    state = APPLIED if effect.changed or row.state == APPLIED else UNCHANGED
                    outcome = Outcome(state, effect.note)
                    await self._record(session, [event], {event.id: outcome})
                    await session.commit()
            except Exception as exc:
                if is_database_unavailable(exc):
                    raise
                reason = describe_error(exc)
                log.error(
                    "inbound.replay.failed",
                    exc_info=exc,
                    extra={"inbound_event_id": event_id, "error": reason},
                )
                raise ReplayError(f"inbound event {event_id} failed again: {reason}") from None
        if outcome.state == REJECTED:
            async with self.ctx.session_factory() as session:
                await self._record(session, [event], {event.id: outcome})
                await session.commit()
        log.info(
            "inbound.replayed",
            extra={
                "inbound_event_id": event_id,
                "source": row.source,
                "subject_id": row.subject_id,
                "state": outcome.state,
            },
        )
        async with self.ctx.session_factory() as session:
            refreshed = await session.get(InboundEvent, event_id)
            await session.commit()
        assert refreshed is not None
        return refreshed

    # --- running ---------------------------------------------------------------------------

    async def drain(self) -> int:
        """Apply until no event is due now (for `printhook apply`, tests and shutdown)."""
        total = 0
        while True:
            claimed = 0
            for source in self.vendors:
                claimed += await self.run_batch(source)
            total += claimed
            if not claimed:
                return total

    async def run(self, stopping: asyncio.Event) -> None:
        """One lane per source until `stopping` is set."""
        lanes = [
            asyncio.create_task(self._lane(source, stopping), name=f"applier-{source}")
            for source in self.vendors
        ]
        try:
            await asyncio.gather(*lanes)
        finally:
            for lane in lanes:
                lane.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)
            await self.release_all()

    async def _lane(self, source: str, stopping: asyncio.Event) -> None:
        wake = asyncio.Event()
        self.ctx.arrival_listeners.add(wake)
        failures = 0
        try:
            while not stopping.is_set():
                wake.clear()
                try:
                    claimed = await self.run_batch(source)
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failures += 1
                    claimed = 0
                    log.warning(
                        "inbound.applier.unavailable",
                        extra={"source": source, "error_class": type(exc).__name__},
                    )
                    wake.clear()
                if claimed:
                    await asyncio.sleep(0)
                    continue
                timeout = IDLE_POLL_SECONDS if not failures else min(5.0, 0.5 * 2**failures)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await _first(wake, stopping)
        finally:
            self.ctx.arrival_listeners.discard(wake)

    async def release_all(self) -> None:
        """Give back every lease this process holds (shutdown): others take over at once."""
        with contextlib.suppress(Exception):
            async with self.ctx.session_factory() as session:
                await session.execute(
                    update(InboundEvent)
                    .where(
                        InboundEvent.lease_owner == self.ctx.instance_id,
                        InboundEvent.state == PENDING,
                    )
                    .values(lease_owner=None, leased_until=None)
                )
                await session.commit()


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
