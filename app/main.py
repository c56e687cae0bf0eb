"""The printhook ASGI application."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.background import BackgroundWorkers, LoopTask, PeriodicTask
from app.config import Settings, load_settings
from app.context import AppContext
from app.errors import install_error_handlers
from app.feed.notifier import notifier_task
from app.feed.router import router as feed_router
from app.inbound.applier import Applier, VendorApplier
from app.inbound.retention import retention_task
from app.inbound.router import router as inbound_router
from app.logging import register_secrets, settings_secrets
from app.openapi import install_openapi
from app.ops.fastlane import FastLane
from app.ops.http import RequestContextMiddleware, RootPathMiddleware
from app.ops.limits import BodyLimitMiddleware
from app.ops.router import router as ops_router
from app.printess.callbacks import PrintessApplier, callback_route
from app.printess.reconciler import reconciler_task as printess_reconciler_task
from app.printess.router import router as printess_router
from app.printmotor.reconciler import reconciler_task as printmotor_reconciler_task
from app.printmotor.router import router as printmotor_router
from app.printmotor.webhook import PrintmotorApplier, webhook_route

WORKER_STOP_GRACE_SECONDS = 2.0


def vendor_appliers() -> list[VendorApplier]:
    """What each vendor registers with the applier (`app/inbound` imports no vendor)."""
    return [PrintessApplier(), PrintmotorApplier()]


def applier(ctx: AppContext) -> Applier:
    return Applier(ctx, vendor_appliers())


async def _run_applier(ctx: AppContext, stopping: asyncio.Event) -> None:
    await applier(ctx).run(stopping)


def background_tasks(ctx: AppContext) -> list[PeriodicTask | LoopTask]:
    """Everything that runs in the background, in the web process or `printhook worker`."""
    return [
        LoopTask("applier", _run_applier),
        retention_task(),
        printess_reconciler_task(ctx),
        printmotor_reconciler_task(ctx),
        notifier_task(ctx),
    ]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    register_secrets(settings_secrets(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = AppContext.create(settings)
        app.state.ctx = ctx
        app.state.applier = applier(ctx)
        workers = BackgroundWorkers(ctx, background_tasks(ctx) if settings.run_workers else [])
        # Started, not awaited: background work never delays readiness. Events acknowledged
        # before a crash are still pending: the applier picks them up from the log.
        workers.start()
        # Everything built so far (modules, mappers, routes) lives as long as the process:
        # keep it out of the collector's full passes, which otherwise set the webhook's p99.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            # Background work only reads from vendors: a pass cut short loses nothing (its
            # leases are given back on cancellation), so shutdown does not wait for it long.
            await workers.stop(grace=WORKER_STOP_GRACE_SECONDS)
            await ctx.aclose()

    app = FastAPI(
        title="printhook",
        summary="Durable, verified Printess and Printmotor callbacks for print shops",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_openapi(app)
    app.include_router(ops_router)
    app.include_router(printess_router)
    app.include_router(printmotor_router)
    app.include_router(inbound_router)
    app.include_router(feed_router)
    # The vendors' ack endpoints are bare ASGI routes (see FastLane).
    app.router.routes.extend([webhook_route, callback_route])
    # Last added runs first: proxy headers fix the client address before the access log
    # records it, and the request id is bound before anything else can log.
    app.add_middleware(FastLane, routes=[webhook_route, callback_route])
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    if settings.root_path:
        app.add_middleware(RootPathMiddleware, root_path=settings.root_path)
    return app
