"""Custom endpoints: ``endpoints={"/my-endpoint": handler}`` serves ``/sessions/{sid}/my-endpoint``.

``async def handler(request, ctx: EndpointContext)`` answers every HTTP method (check
``request.method``) and is matched before the built-in routes, so it can replace one. After the session
id check and ``authorize``, its result becomes the answer:

- a ``dict`` or ``list``: 200 JSON;
- ``(body, status)`` or ``(body, status, headers)``: that status, ``body`` as JSON (dict, list), text
  (str) or bytes;
- a Quart ``Response``: sent as it is;
- ``None``: 204.

Raising a :class:`~helix.errors.HelixError` answers its usual JSON error; anything else is a 500
``internal_error`` (logged). The request body has already been read (within ``max_body_bytes``);
``await request.get_data()`` returns it and :meth:`EndpointContext.json` parses it strictly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quart.wrappers.response import Response as QuartResponse
from werkzeug.wrappers import Response as WerkzeugResponse

from .hooks import ExecutionState
from .requests import parse_json
from .responses import body_response, json_response

if TYPE_CHECKING:
    from ..runtime import AgentRuntime


@dataclass(frozen=True, kw_only=True)
class EndpointContext:
    env: Any
    session_id: str
    execution_state: ExecutionState
    logger: logging.Logger
    runtime: AgentRuntime
    path: str
    body: bytes = b""

    def json(self) -> Any:
        """The request body as strict JSON (``None`` when empty); a 400 ``invalid_request`` otherwise."""
        return parse_json(self.body) if self.body.strip() else None


def check_endpoints(endpoints: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate ``endpoints`` when the server is built: keys are paths starting with ``/``."""
    checked: dict[str, Any] = {}
    for path, handler in (endpoints or {}).items():
        if not isinstance(path, str) or not path.startswith("/") or len(path) < 2 or path.endswith("/"):
            raise ValueError(
                f"endpoint path {path!r} must look like '/name' (a leading '/', no trailing '/')"
            )
        if not callable(handler):
            raise TypeError(f"endpoint {path!r} needs an async function (request, ctx), got {handler!r}")
        checked[path] = handler
    return checked


def to_response(result: Any) -> Any:
    """The answer for what a handler returned (see the module docstring)."""
    if isinstance(result, QuartResponse | WerkzeugResponse):
        return result
    if result is None:
        return body_response(None, 204)
    if isinstance(result, tuple) and len(result) in (2, 3) and isinstance(result[1], int):
        headers = result[2] if len(result) == 3 else None
        return body_response(result[0], result[1], headers)
    if isinstance(result, dict | list):
        return json_response(result)
    if isinstance(result, str | bytes):
        return body_response(result, 200)
    raise TypeError(
        f"an endpoint returned {type(result).__name__}; return a dict, a list, a tuple or a Response"
    )
