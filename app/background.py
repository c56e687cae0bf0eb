"""Background work (applier, reconcilers, retention), in the web process or `printhook worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass

from app.context import AppContext

log = logging.getLogger("printhook.background")


@dataclass(frozen=True)
class PeriodicTask:
    """`run_once` is called at start and then every `interval` seconds until stopped."""

    name: str
    interval: float
    run_once: Callable[[AppContext], Awaitable[object]]


@dataclass(frozen=True)
class LoopTask:
    """`run(ctx, stopping)` runs until `stopping` is set (the applier's lanes)."""

    name: str
    run: Callable[[AppContext, asyncio.Event], Awaitable[None]]


@dataclass
class PassSummary:
    """What one reconciler pass did (logged, and printed by `printhook reconcile --once`)."""

    polled: int = 0
    changed: int = 0
    unchanged: int = 0
    errors: int = 0
    abandoned: int = 0
    throttled: bool = False
    skipped: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class BackgroundWorkers:
    def __init__(self, ctx: AppContext, tasks: Sequence[PeriodicTask | LoopTask]) -> None:
        self._ctx = ctx
        self._tasks = tasks
        self._stopping = asyncio.Event()
        self._running: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for task in self._tasks:
            work = self._run_loop(task) if isinstance(task, LoopTask) else self._loop(task)
            self._running.append(asyncio.create_task(work, name=task.name))

    async def _run_loop(self, task: LoopTask) -> None:
        while not self._stopping.is_set():
            try:
                await task.run(self._ctx, self._stopping)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background.failed", extra={"task": task.name})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=1.0)

    async def _loop(self, task: PeriodicTask) -> None:
        while not self._stopping.is_set():
            try:
                await task.run_once(self._ctx)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background.failed", extra={"task": task.name})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=task.interval)

    async def stop(self, grace: float = 5.0) -> None:
        """Ask every loop to stop, give in-flight work `grace` seconds, then cancel it."""
        self._stopping.set()
        if not self._running:
            return
        _, pending = await asyncio.wait(self._running, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        self._running.clear()

    async def wait(self) -> None:
        """Run until stopped (for `printhook worker`)."""
        await self._stopping.wait()
