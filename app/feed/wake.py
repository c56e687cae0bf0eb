"""Waking this process's notifier as soon as a transaction that appended events commits.

Other replicas find new events by polling (about once a second); this only shortens the wait
in the process that recorded the change. Commits happen on the event loop's thread, but a
notifier may belong to another loop (another app in the same process), so a wake is handed
to the notifier's own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

_APPENDED = "printhook.feed.appended"


class Waker:
    """An asyncio.Event that commits of new events set; created inside the loop that waits."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        _wakers.add(self)

    def wake(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._event.set()
            return
        # A closed loop's notifier is gone; nothing to wake.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._event.set)

    async def sleep(self, seconds: float) -> None:
        """Wait until woken or `seconds` passed; a wake during the last pass counts."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout=seconds)
        self._event.clear()


_wakers: weakref.WeakSet[Waker] = weakref.WeakSet()


def mark_appended(session: AsyncSession) -> None:
    """Note that this transaction appended an event (checked when it commits)."""
    session.info[_APPENDED] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_APPENDED, False):
        for waker in list(_wakers):
            waker.wake()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_APPENDED, None)
