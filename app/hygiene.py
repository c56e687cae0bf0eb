"""What strings printhook accepts from the shop API: the rules, as types and as patterns.

PostgreSQL refuses a NUL character in text and JSON, and no database can store a lone
surrogate, so such input is refused where it is parsed (400/422), never left to become a
database error. Each rule is a pydantic type whose JSON Schema carries the same rule as a
`pattern`, so the OpenAPI document says exactly what is accepted.

Lone surrogates need no pattern: pydantic refuses them in every `str` it validates, and JSON
text that is valid UTF-8 cannot carry them except as a `\\ud800` escape.
"""

from __future__ import annotations

from typing import Annotated, TypeAlias

from pydantic import BeforeValidator, Field
from typing_extensions import TypeAliasType

# Anything but NUL: free text, passed through or stored as sent.
TEXT_PATTERN = r"^[^\u0000]*$"
# An identifier: no control characters at all.
IDENTIFIER_PATTERN = r"^[^\u0000-\u001F\u007F]+$"
# An identifier that is one segment of a URL path: besides control characters, no `/` (a
# decoded `%2F` would split the segment) and not `.` or `..` (clients collapse dot segments).
# (Written without look-ahead: pydantic's regex engine has none.)
_SEGMENT_CHAR = r"[^/\u0000-\u001F\u007F]"
_SEGMENT_START = (
    r"([^./\u0000-\u001F\u007F]|\.[^./\u0000-\u001F\u007F]|\.\.[^/\u0000-\u001F\u007F])"
)
PATH_SEGMENT_PATTERN = f"^{_SEGMENT_START}{_SEGMENT_CHAR}*$"

Text = Annotated[str, Field(pattern=TEXT_PATTERN)]


def identifier(max_length: int) -> object:
    """Field constraints of an identifier of at most `max_length` characters."""
    return Field(min_length=1, max_length=max_length, pattern=IDENTIFIER_PATTERN)


def path_segment(max_length: int) -> dict[str, object]:
    """Constraints (for `Path(...)`) of an identifier that appears as one path segment."""
    return {"min_length": 1, "max_length": max_length, "pattern": PATH_SEGMENT_PATTERN}


def _integral_float(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# A JSON Schema `integer` of 32 bits (Printess's int32): 3 and 3.0 alike, but "3" and true
# are refused.
JsonInt32: TypeAlias = Annotated[
    int, Field(ge=-(2**31), le=2**31 - 1), BeforeValidator(_integral_float)
]

FiniteNumber: TypeAlias = Annotated[float, Field(allow_inf_nan=False)]

# Any JSON value whose strings (keys included) hold no NUL: what pass-through fields carry.
JsonValue = TypeAliasType(
    "JsonValue",
    "Text | bool | int | FiniteNumber | list[JsonValue] | dict[Text, JsonValue] | None",
)


def has_nul(raw: bytes) -> bool:
    """True if a raw path or query string carries NUL, literally or percent-encoded (the
    only spelling of NUL in percent-encoding is `%00`)."""
    return b"\x00" in raw or b"%00" in raw
