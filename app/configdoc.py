"""docs/CONFIGURATION.md and .env.example, generated from the Settings class.

    python -m app.configdoc           rewrite both files
    python -m app.configdoc --check   exit 1 if either differs from what the code says

The test suite runs the check, so neither file can drift from `app/config.py`.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le
from pydantic.fields import FieldInfo

from app.config import DURATION_FORMS, PLACEHOLDER_SECRETS, Settings

ROOT = Path(__file__).resolve().parent.parent
CONFIGURATION_MD = ROOT / "docs" / "CONFIGURATION.md"
ENV_EXAMPLE = ROOT / ".env.example"

# The field each section starts with; later fields belong to the section above them.
SECTIONS = {
    "environment": "General",
    "printess_api_url": "Printess",
    "printmotor_api_url": "Printmotor",
    "body_timeout": "Inbound events (ack path and applier)",
    "notify_url": "Outbound webhooks to the shop",
    "run_workers": "Background work",
    "max_body_bytes": "HTTP edge",
}
# Durations kept as float seconds for their users, written like every other duration.
SECONDS_FIELDS = frozenset({"reconcile_interval"})
# Lists whose entries are checked as more than text.
LIST_KINDS = {
    "notify_schedule": "durations, comma-separated",
    "trusted_proxies": "IPs and CIDRs, comma-separated",
}


def variable(name: str) -> str:
    return f"PRINTHOOK_{name.upper()}"


def sections() -> list[tuple[str, list[tuple[str, FieldInfo]]]]:
    grouped: list[tuple[str, list[tuple[str, FieldInfo]]]] = []
    for name, field in Settings.model_fields.items():
        if name in SECTIONS or not grouped:
            grouped.append((SECTIONS.get(name, "General"), []))
        grouped[-1][1].append((name, field))
    return grouped


def _duration(seconds: float) -> str:
    whole = int(seconds)
    if whole != seconds:
        return f"{seconds:g}s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole and whole % size == 0 and (unit != "d" or whole >= 2 * size):
            return f"{whole // size}{unit}"
    return f"{whole}s"


def is_duration(name: str, field: FieldInfo) -> bool:
    return field.annotation is timedelta or name in SECONDS_FIELDS


def default(name: str, field: FieldInfo) -> str:
    """The default as it would be written in the variable ("" when there is none)."""
    value: Any = field.get_default(call_default_factory=True)
    if value is None or value == []:
        return ""
    if isinstance(value, timedelta):
        return _duration(value.total_seconds())
    if name in SECONDS_FIELDS:
        return _duration(float(value))
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def accepts(name: str, field: FieldInfo) -> str:
    """What kind of value the variable takes, with its bounds."""
    text = repr(field.annotation)
    if name in LIST_KINDS:
        kind = LIST_KINDS[name]
    elif is_duration(name, field):
        kind = "duration"
    elif "Literal" in text:
        kind = " \\| ".join(f"`{choice}`" for choice in field.annotation.__args__)  # type: ignore[union-attr]
    elif "list[pydantic.types.SecretStr]" in text:
        kind = "secrets, comma-separated"
    elif "SecretStr" in text:
        kind = "secret"
    elif "list[str]" in text:
        kind = "comma-separated list"
    elif "bool" in text:
        kind = "`true` \\| `false`"
    elif field.annotation is int:
        kind = "integer"
    elif field.annotation is float:
        kind = "number"
    elif name.endswith("_url"):
        kind = "URL"
    else:
        kind = "text"
    bounds = []
    for rule in field.metadata:
        if isinstance(rule, Ge):
            bounds.append(f"≥ {rule.ge:g}")
        elif isinstance(rule, Gt):
            bounds.append(f"> {rule.gt:g}")
        elif isinstance(rule, Le):
            bounds.append(f"≤ {rule.le:g}")
    return kind + (f", {' and '.join(bounds)}" if bounds and kind != "duration" else "")


def markdown() -> str:
    lines = [
        "# Configuration",
        "",
        "<!-- Generated from app/config.py by `python -m app.configdoc`; do not edit by hand. -->",
        "",
        "Every setting is an environment variable prefixed `PRINTHOOK_`, or a line in `./.env`",
        "(the environment wins). printhook reads them once, at start: **restart it after any",
        "change** (`printhook serve`, `printhook worker`, or `docker compose up -d` for compose).",
        "An invalid value stops it at start with one line naming the variable (exit code 2).",
        "",
        f"- **Durations** take {DURATION_FORMS}, or ISO 8601 (`P7D`).",
        "- **Lists** are comma-separated (`a,b`); secrets in a list allow rotation.",
        "- With `PRINTHOOK_ENVIRONMENT=production` every secret must be at least 16 characters",
        "  and none of the placeholders ("
        + ", ".join(f"`{p}`" for p in sorted(PLACEHOLDER_SECRETS) if p)
        + "); `PRINTHOOK_API_KEYS` must be set.",
        "- At start `serve` and `worker` log one `config.summary` line (counts and on/off, never",
        "  a value) and a `config.warning` for each missing piece that makes an endpoint refuse",
        "  everything.",
        "",
        "[.env.example](../.env.example) lists every setting with its default, commented out.",
    ]
    for title, fields in sections():
        lines += [
            "",
            f"## {title}",
            "",
            "| Variable | Default | Accepts | Meaning |",
            "|---|---|---|---|",
        ]
        for name, field in fields:
            shown = default(name, field)
            lines.append(
                f"| `{variable(name)}` | {f'`{shown}`' if shown else '—'} | "
                f"{accepts(name, field)} | {field.description or ''} |"
            )
    return "\n".join(lines) + "\n"


ENV_EXAMPLE_HEAD = """\
# printhook settings: copy to .env and uncomment what you change. printhook reads ./.env at
# start (restart after a change), and so does docker compose. The same file is safe for both:
# docker-compose.yml itself sets production mode, the database URL and Docker's proxy range
# for the containers, so a local `printhook serve` in this folder stays in development on SQLite.
# Generated from app/config.py by `python -m app.configdoc`; every line shows the default;
# reference: docs/CONFIGURATION.md. Make secrets with
#   python3 -c 'import secrets; print(secrets.token_urlsafe(32))'
"""

ENV_EXAMPLE_TAIL = """
# --- docker compose only ---------------------------------------------------------------------
# Password of the bundled PostgreSQL (URL-safe characters: it goes into the database URL).
# printhook ignores it; under compose PRINTHOOK_ENVIRONMENT=production also requires
# PRINTHOOK_API_KEYS and real secrets (16+ characters) above.
POSTGRES_PASSWORD=
"""


def env_example() -> str:
    lines = [ENV_EXAMPLE_HEAD.rstrip("\n")]
    for title, fields in sections():
        lines += ["", f"# --- {title} " + "-" * max(3, 92 - len(title))]
        for name, field in fields:
            meaning = (field.description or "").replace("`", "")
            lines += textwrap.wrap(meaning, 98, initial_indent="# ", subsequent_indent="#   ")
            lines.append(f"# {variable(name)}={default(name, field)}")
    return "\n".join(lines) + "\n" + ENV_EXAMPLE_TAIL


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.configdoc", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument(
        "--check", action="store_true", help="only compare; exit 1 if a file is out of date"
    )
    args = parser.parse_args(argv)
    stale = []
    for path, text in ((CONFIGURATION_MD, markdown()), (ENV_EXAMPLE, env_example())):
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        names = ", ".join(str(p) for p in stale)
        print(f"out of date: {names}; run `python -m app.configdoc`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
