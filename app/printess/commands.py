"""`printhook simulate printess`."""

from __future__ import annotations

import argparse
from typing import Any

from app.config import Settings
from app.startup import serve_app


def _cmd_simulate_printess(settings: Settings, args: argparse.Namespace) -> int:
    from app.simulator.printess import SimulatorConfig, create_printess_simulator

    config = SimulatorConfig(
        token=args.token,
        delay=args.delay,
        fail_rate=args.fail_rate,
        lose_callback_rate=args.lose_callback_rate,
        throttle_rate=args.throttle_rate,
        callback_shape=args.callback_shape,
        produce_answer_status=args.produce_answer_status,
    )
    print(
        f"Printess simulator on http://{args.host}:{args.port} — set "
        f"PRINTHOOK_PRINTESS_API_URL=http://{args.host}:{args.port}",
        flush=True,
    )
    serve_app(create_printess_simulator(config), args.host, args.port)
    return 0


def register_simulator(simulators: Any) -> None:
    """Add `printhook simulate printess`."""
    printess = simulators.add_parser("printess", help="a local Printess backend API")
    printess.add_argument("--host", default="127.0.0.1", help="address to listen on")
    printess.add_argument("--port", type=int, default=9000, help="port to listen on")
    printess.add_argument("--delay", type=float, default=2.0, help="seconds until a job is final")
    printess.add_argument("--fail-rate", type=float, default=0.0, help="share of jobs that fail")
    printess.add_argument(
        "--lose-callback-rate", type=float, default=0.0, help="share of callbacks never sent"
    )
    printess.add_argument(
        "--throttle-rate",
        type=float,
        default=0.0,
        help="max status/get calls per second before 429 + Retry-After (0: off)",
    )
    printess.add_argument(
        "--callback-shape",
        choices=["callback", "status", "alternate"],
        default="callback",
        help="callback body: Printess's callback shape, the status/get shape, or both in turn",
    )
    printess.add_argument(
        "--produce-answer-status",
        type=int,
        default=None,
        help="enqueue each job, then answer produce with this status (e.g. 502: a lost answer)",
    )
    printess.add_argument(
        "--token", default=None, help="service token to require (default: any non-empty)"
    )
    printess.set_defaults(handler=_cmd_simulate_printess)
