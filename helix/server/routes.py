"""The route table and the Quart app that serves it.

Every ``/sessions/...`` request goes through one dispatcher, in this order: parse the path (the session id
from the raw target, see :mod:`.paths`) -> custom endpoint, else built-in route (404 ``not_found``; 405
``method_not_allowed`` with ``Allow``) -> session id check (400) -> ``authorize`` -> handler ->
``transform_response`` (2xx JSON answers of built-in routes). Because ``authorize`` sits in the dispatcher
and not in the handlers, no route can skip it. ``HEAD`` is not served (405): ``/sse`` would never end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import trio
from quart import has_request_context, request, websocket
from quart_trio import QuartTrio
from quart_trio.wrappers import TrioResponse
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import PathConverter

from ..errors import HookFailedError
from ..runtime import check_session_id
from . import actions, reads, sse
from .call import Answer, Handler, SessionCall
from .endpoints import EndpointContext, to_response
from .errors import MethodNotAllowedError, RouteNotFoundError, UnavailableError
from .hooks import TransformContext
from .metrics import CONTENT_TYPE
from .paths import raw_target, session_path
from .responses import abort_response, error_response, json_response, json_text_response
from .services import ServerServices
from .websocket import serve_websocket


@dataclass(frozen=True, kw_only=True)
class Route:
    methods: tuple[str, ...]
    handler: Handler


ROUTES: dict[str, Route] = {
    "start": Route(methods=("POST",), handler=actions.http_command),
    "resume": Route(methods=("POST",), handler=actions.http_command),
    "retry": Route(methods=("POST",), handler=actions.http_command),
    "interrupt": Route(methods=("POST",), handler=actions.http_command),
    "abort": Route(methods=("POST",), handler=actions.http_command),
    "status": Route(methods=("GET",), handler=reads.status),
    "history": Route(methods=("GET",), handler=reads.history),
    "messages": Route(methods=("GET",), handler=reads.messages),
    "checkpoints": Route(methods=("GET",), handler=reads.checkpoints),
    "usage": Route(methods=("GET",), handler=reads.usage),
    "snapshot": Route(methods=("GET",), handler=reads.snapshot),
    "sse": Route(methods=("GET",), handler=sse.sse),
}
"""Built-in HTTP routes under ``/sessions/{sid}/``; ``ws`` is the WebSocket one (any HTTP method: 405)."""

WEBSOCKET_ROUTE = "ws"
HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]


class _AnythingConverter(PathConverter):
    """Like ``path`` but also matches an empty string or one starting with ``/`` (an empty session id
    must reach the dispatcher to be refused as a 400, not a 404)."""

    regex = r"[\s\S]*"  # newlines too: an encoded %0A must reach the session id check
    part_isolating = False


def build_app(services: ServerServices) -> QuartTrio:
    app = QuartTrio("helix.server", static_folder=None)  # no /static route that authorize never sees
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    app.url_map.converters["anything"] = _AnythingConverter
    app.config.update(
        MAX_CONTENT_LENGTH=services.limits.max_body_bytes,
        BODY_TIMEOUT=services.limits.body_timeout,
        BACKGROUND_TASK_SHUTDOWN_TIMEOUT=60.0,
        PROPAGATE_EXCEPTIONS=False,
    )
    dispatcher = _Dispatcher(services)
    app.add_url_rule(
        "/sessions/<anything:tail>",
        "session",
        dispatcher.http,
        methods=HTTP_METHODS,
        provide_automatic_options=False,
    )
    app.add_websocket("/sessions/<anything:tail>", "session_ws", dispatcher.websocket)
    # No automatic OPTIONS: Werkzeug would answer it before authorize runs.
    app.add_url_rule(
        "/healthz", "healthz", dispatcher.healthz, methods=["GET"], provide_automatic_options=False
    )
    app.add_url_rule(
        "/metrics", "metrics", dispatcher.metrics, methods=["GET"], provide_automatic_options=False
    )
    app.register_error_handler(HTTPException, dispatcher.http_error)
    app.register_error_handler(Exception, dispatcher.unexpected_error)
    return app


class _Dispatcher:
    def __init__(self, services: ServerServices) -> None:
        self.services = services

    async def http(self, tail: str) -> Any:
        services = self.services
        req = request._get_current_object()  # type: ignore[attr-defined]
        try:
            path = session_path(req.scope)
            if path is None:
                raise RouteNotFoundError(raw_target(req.scope))
            body = await req.get_data()
            custom = services.endpoints.get(f"/{path.route}")
            if custom is not None:
                return await self._custom(req, custom, path.session_id, f"/{path.route}", body)
            route = ROUTES.get(path.route)
            if route is None:
                if path.route == WEBSOCKET_ROUTE:
                    raise MethodNotAllowedError(req.method, ["GET"], hint=" with a WebSocket upgrade")
                raise RouteNotFoundError(raw_target(req.scope))
            if req.method not in route.methods:
                raise MethodNotAllowedError(req.method, route.methods)
            call = SessionCall(
                services=services,
                request=req,
                session_id=check_session_id(path.session_id),
                route=path.route,
                body=body,
            )
            refusal = await services.authorize(
                request=req,
                route=call.route,
                method=req.method,
                transport="http",
                session_id=call.session_id,
                body=call.json_object_or_none(),
            )
            if refusal is not None:
                return abort_response(refusal)
            answer = await route.handler(call)
            return await self._render(call, answer)
        except trio.Cancelled:
            raise
        except Exception as exc:
            return error_response(exc, services.logger)

    async def _custom(self, req: Any, handler: Any, raw_session_id: str, key: str, body: bytes) -> Any:
        services = self.services
        session_id = check_session_id(raw_session_id)
        refusal = await services.authorize(
            request=req, route=key, method=req.method, transport="http", session_id=session_id
        )
        if refusal is not None:
            return abort_response(refusal)
        ctx = EndpointContext(
            env=services.env,
            session_id=session_id,
            execution_state=await services.execution_state(session_id),
            logger=services.logger,
            runtime=services.runtime,
            path=key,
            body=body,
        )
        return to_response(await handler(req, ctx))

    async def _render(self, call: SessionCall, answer: Answer | TrioResponse) -> TrioResponse:
        if not isinstance(answer, Answer):
            return answer
        hook = self.services.hooks.transform_response
        if hook is None or not 200 <= answer.status < 300:
            if answer.text is not None:
                return json_text_response(answer.text, answer.status, answer.headers)
            return json_response(answer.body, answer.status, answer.headers)
        ctx = TransformContext(
            env=self.services.env,
            request=call.request,
            transport="http",
            route=call.route,
            session_id=call.session_id,
            body=answer.body,
            status_code=answer.status,
        )
        replaced = await self.services.call_hook("transform_response", hook, ctx)
        if replaced is not None and not isinstance(replaced, dict | list):
            self.services.logger.error(
                "transform_response returned %r; expected JSON or None", type(replaced)
            )
            raise HookFailedError("transform_response")
        return json_response(answer.body if replaced is None else replaced, answer.status, answer.headers)

    async def websocket(self, tail: str) -> Any:
        ws = websocket._get_current_object()  # type: ignore[attr-defined]
        try:
            path = session_path(ws.scope)
        except Exception as exc:
            return error_response(exc, self.services.logger)
        return await serve_websocket(self.services, ws, path)

    async def healthz(self) -> TrioResponse:
        if not self.services.accepting:
            return error_response(UnavailableError())
        return json_response({"status": "ok"})

    async def metrics(self) -> Any:
        req = request._get_current_object()  # type: ignore[attr-defined]
        try:
            refusal = await self.services.authorize(
                request=req, route="metrics", method=req.method, transport="http", session_id=None
            )
        except Exception as exc:
            return error_response(exc, self.services.logger)
        if refusal is not None:
            return abort_response(refusal)
        return TrioResponse(self.services.metrics.render(), status=200, content_type=CONTENT_TYPE)

    async def http_error(self, exc: HTTPException) -> TrioResponse:
        """Quart's own routing errors (paths outside ``/sessions``), as JSON."""
        current = request if has_request_context() else websocket
        if isinstance(exc, MethodNotAllowed):
            return error_response(MethodNotAllowedError(current.method, sorted(exc.valid_methods or ())))
        if isinstance(exc, NotFound) or exc.code == 404:
            return error_response(RouteNotFoundError(current.path))
        status = exc.code or 500
        return json_response(
            {"error": {"code": _code_for(status), "message": exc.description or exc.name}}, status
        )

    async def unexpected_error(self, exc: Exception) -> TrioResponse:
        return error_response(exc, self.services.logger)


_CODES: Mapping[int, str] = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
}


def _code_for(status: int) -> str:
    return _CODES.get(status, "invalid_request" if status < 500 else "internal_error")
