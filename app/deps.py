"""FastAPI dependencies shared by every router."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.context import AppContext
from app.errors import Unauthorized


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_settings(ctx: ContextDep) -> Settings:
    return ctx.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(ctx: ContextDep) -> AsyncIterator[AsyncSession]:
    """One session per request. The route commits explicitly before it answers, so a 2xx is
    only ever sent for committed work; anything not committed is rolled back on close."""
    async with ctx.session_factory() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def constant_time_member(candidate: str, secrets: list[str]) -> bool:
    """True if `candidate` equals any of `secrets`; compares against all, in constant time."""
    raw = candidate.encode()
    found = False
    for secret in secrets:
        found |= hmac.compare_digest(raw, secret.encode())
    return found


# Declares the scheme (so every route that needs a key says so in the OpenAPI document); the
# check itself is ours, so every refusal is the same problem+json.
bearer_scheme = HTTPBearer(
    scheme_name="bearer",
    description="A key from PRINTHOOK_API_KEYS: `Authorization: Bearer <key>`.",
    auto_error=False,
)


def require_shop_key(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> str:
    keys = [key.get_secret_value() for key in settings.api_keys]
    token = credentials.credentials.strip() if credentials is not None else ""
    if not token or not keys:
        raise Unauthorized(
            "send Authorization: Bearer <key> with a key from PRINTHOOK_API_KEYS",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not constant_time_member(token, keys):
        raise Unauthorized("unknown API key", headers={"WWW-Authenticate": "Bearer"})
    return "shop"


ShopKey = Annotated[str, Depends(require_shop_key)]
