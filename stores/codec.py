"""JSON as the store writes it: compact, UTF-8, and strict (no NaN or Infinity, which are not JSON)."""

from __future__ import annotations

import json
from typing import Any

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def dumps(value: Any) -> str:
    """Encode ``value``; raises ``ValueError`` for NaN/Infinity and ``TypeError`` for non-JSON types."""
    return _ENCODER.encode(value)


def loads(text: str) -> Any:
    """Decode text this module wrote."""
    return json.loads(text)
