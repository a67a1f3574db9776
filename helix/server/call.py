"""One HTTP request to a session route, as the route handlers see it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from quart_trio.wrappers import TrioRequest, TrioResponse

from ..errors import InvalidRequestError
from .requests import parse_json_object
from .services import ServerServices

_UNPARSED = object()


@dataclass(kw_only=True)
class SessionCall:
    services: ServerServices
    request: TrioRequest
    session_id: str
    route: str
    body: bytes
    _json: Any = field(default=_UNPARSED, repr=False)

    def json_object(self) -> dict[str, Any]:
        """The body as a strict JSON object (an empty body is ``{}``); 400 otherwise. Parsed once."""
        if self._json is _UNPARSED:
            try:
                self._json = parse_json_object(self.body, max_depth=self.services.limits.json_max_depth)
            except InvalidRequestError as exc:
                self._json = exc
        if isinstance(self._json, InvalidRequestError):
            raise self._json
        result: dict[str, Any] = self._json
        return result

    def json_object_or_none(self) -> dict[str, Any] | None:
        try:
            return self.json_object()
        except InvalidRequestError:
            return None

    @property
    def args(self) -> Any:
        return self.request.args


@dataclass(frozen=True, kw_only=True)
class Answer:
    """A JSON answer of a built-in route, before ``transform_response``. ``text``, when set, is ``body``
    already encoded (the history page splices stored chunk JSON in as is)."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None


Handler = Callable[[SessionCall], Awaitable["Answer | TrioResponse"]]
