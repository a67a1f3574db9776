"""Building Quart responses: JSON answers, error answers and hook refusals."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from quart_trio.wrappers import TrioResponse

from .errors import error_headers, error_payload
from .hooks import AbortResult
from .wire import dumps

JSON = "application/json"


def json_text_response(
    text: str, status: int = 200, headers: Mapping[str, str] | None = None
) -> TrioResponse:
    return TrioResponse(text, status=status, headers=dict(headers or {}), content_type=JSON)


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> TrioResponse:
    return json_text_response(dumps(body), status, headers)


def error_response(exc: BaseException, logger: logging.Logger | None = None) -> TrioResponse:
    status, payload = error_payload(exc, logger)
    return json_response(payload, status, error_headers(exc))


def body_response(body: Any, status: int, headers: Mapping[str, str] | None = None) -> TrioResponse:
    """``body`` as given: dict or list as JSON, str as text, bytes as they are, ``None`` as nothing."""
    merged = dict(headers or {})
    if isinstance(body, dict | list):
        return json_response(body, status, merged)
    if body is None:
        return TrioResponse(b"", status=status, headers=merged)
    typed = any(key.lower() == "content-type" for key in merged)
    if isinstance(body, str):
        if not typed:
            merged["Content-Type"] = "text/plain; charset=utf-8"
        return TrioResponse(body, status=status, headers=merged)
    if isinstance(body, bytes | bytearray):
        if not typed:
            merged["Content-Type"] = "application/octet-stream"
        return TrioResponse(bytes(body), status=status, headers=merged)
    return json_response(body, status, merged)


def abort_response(result: AbortResult) -> TrioResponse:
    return body_response(result.body, result.status, result.headers)
