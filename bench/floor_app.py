"""The floor: the least an HTTP endpoint can do for a signed webhook and still be durable.

A raw ASGI app (no framework): read the body, verify the HMAC-SHA256 header against one key,
`INSERT ... ON CONFLICT DO NOTHING` the raw bytes with asyncpg (autocommit) into a table with
nothing but a text primary key (`floor_events(key text primary key, body bytea)`, created by
bench/common.py in the bench database), answer `{"ok":true}`. Served by uvicorn exactly like
printhook, so the gap between the two is what printhook's full path costs. Configured by
FLOOR_DATABASE_URL, FLOOR_SECRET, FLOOR_POOL_SIZE.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

import asyncpg

KEY = os.environ.get("FLOOR_SECRET", "").encode()
DSN = os.environ.get("FLOOR_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
POOL_SIZE = int(os.environ.get("FLOOR_POOL_SIZE", "20"))
INSERT = "INSERT INTO floor_events (key, body) VALUES ($1, $2) ON CONFLICT DO NOTHING"
OK = b'{"ok":true}'
_pool: Any = None


async def _send(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _pool
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _pool = await asyncpg.create_pool(DSN, min_size=POOL_SIZE, max_size=POOL_SIZE)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await _pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    header = b""
    for name, value in scope["headers"]:
        if name == b"x-printmotor-hmac-sha256":
            header = value
    expected = base64.b64encode(hmac.new(KEY, body, hashlib.sha256).digest())
    if not hmac.compare_digest(expected, header):
        await _send(send, 401, b'{"ok":false}')
        return
    digest = hashlib.sha256(body).hexdigest()
    await _pool.execute(INSERT, digest, body)
    await _send(send, 200, OK)
