"""Serve printhook or the floor app for the benchmark, both exactly the same way.

`python bench/serve.py printhook|floor PORT`: one uvicorn process, uvloop + httptools, no
uvicorn access log. printhook gets its production logging (JSON lines at PRINTHOOK_LOG_LEVEL,
including its own one-line access log at INFO), like `printhook serve`.

With BENCH_GC_FREEZE=1 the heap built while importing and creating the app is moved out of
the garbage collector's sight (`gc.freeze()`), so full collections stop walking it; without
it, those collections are what sets printhook's p99 (tens of ms on a busy 2-core VM).
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import Any

import uvicorn

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    which, port = sys.argv[1], int(sys.argv[2])
    app: Any
    if which == "printhook":
        from app.config import load_settings
        from app.logging import configure_logging
        from app.main import create_app

        settings = load_settings()
        configure_logging(settings.log_level)
        app = create_app(settings)
    else:
        sys.path.insert(0, str(ROOT / "bench"))
        from floor_app import app as floor

        app = floor
    if os.environ.get("BENCH_GC_FREEZE") == "1":
        gc.collect()
        gc.freeze()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        server_header=False,
        backlog=2048,
    )


if __name__ == "__main__":
    main()
