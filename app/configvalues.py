"""Parsers for setting values: one duration syntax for every duration, and trusted-proxy entries.

They raise ValueError with a message for people (pydantic reports it under the variable's name).
"""

from __future__ import annotations

import ipaddress
import math
import re
from datetime import timedelta

from pydantic import TypeAdapter, ValidationError

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
DURATION_FORMS = "seconds (300) or a number with s, m, h or d (300s, 5m, 24h, 7d)"


def parse_duration(value: object) -> timedelta:
    """One duration syntax for every setting: `300`, `300s`, `5m`, `24h`, `7d` or ISO 8601 `P7D`.

    Raises ValueError naming the accepted forms (never a parser's internal wording).
    """
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError("must not be negative")
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{value!r} is not a duration: use {DURATION_FORMS}")
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip().lower()
        match = _DURATION.fullmatch(text)
        if match:
            return timedelta(seconds=float(match[1]) * _UNITS[match[2]])
        if text.startswith("p"):
            try:
                parsed = _ISO_DURATION.validate_python(text.upper())
            except ValidationError:
                pass
            else:
                if parsed >= timedelta(0):
                    return parsed
    raise ValueError(f"{value!r} is not a duration: use {DURATION_FORMS}")


_ISO_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)


def proxy_entry(entry: str) -> str:
    """An IP address or a CIDR network, exactly as uvicorn's proxy middleware reads it."""
    try:
        if "/" in entry:
            ipaddress.ip_network(entry)
        else:
            ipaddress.ip_address(entry)
    except ValueError:
        if "/" in entry:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                pass
            else:
                raise ValueError(
                    f"{entry!r} has host bits set; write the network as {network}"
                ) from None
        raise ValueError(
            f"{entry!r} is not an IP address or a CIDR network (e.g. 10.0.0.1, 172.16.0.0/12); "
            "separate entries with commas"
        ) from None
    return entry
