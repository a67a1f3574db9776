"""Server hooks: user code that runs around requests and runs, each given one context object.

Order for a command (start, resume, retry; over HTTP or as a WebSocket command)::

    authorize -> transform_request -> validation -> before_<command> -> the command
              -> after_<command> -> transform_response -> answer

Rules:

- ``authorize(ctx: AuthorizeContext)`` runs for every route (commands, reads, SSE, the WebSocket handshake
  and each WebSocket command, custom endpoints, ``/metrics``; never ``/healthz``). Return ``None`` to let
  the request through or an :class:`AbortResult` to answer instead (:meth:`AbortResult.unauthorized` and
  :meth:`AbortResult.forbidden` build the usual ones).
- ``before_start`` / ``before_resume`` / ``before_retry`` (:class:`HookContext`) may return an
  :class:`AbortResult`: the client receives exactly that and the session is untouched.
- A hook that raises gives a 500 ``hook_failed`` and the session is untouched, except ``after_*`` hooks
  (the run has started; the error is logged and the client still gets its 202 and ``runId``) and
  ``on_complete`` (logged).
- ``transform_request(ctx: TransformContext)`` may return a replacement body dict for a command;
  ``transform_response`` a replacement for a successful JSON answer of a built-in route. ``None`` keeps
  the original.
- ``on_complete(ctx: CompleteContext)`` runs when a run ends (completed, failed or interrupted).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from stores import UsageEntry

from ..errors import InvalidRunStateError
from ..status import RunInfo, SessionStatus

if TYPE_CHECKING:
    from ..handle import AgentExecutionHandle
    from ..runtime import AgentRuntime

Transport = Literal["http", "websocket"]


@dataclass(frozen=True, kw_only=True)
class AbortResult:
    """An answer a hook gives instead of the normal one: ``status``, a ``body`` (dict or list as JSON, str
    as text, bytes as they are, ``None`` for none) and optional ``headers``."""

    status: int
    body: Any = None
    headers: Mapping[str, str] | None = None

    @classmethod
    def error(
        cls, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> AbortResult:
        return cls(status=status, body={"error": {"code": code, "message": message}}, headers=headers)

    @classmethod
    def unauthorized(cls, message: str = "missing or invalid credentials") -> AbortResult:
        return cls.error(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})

    @classmethod
    def forbidden(cls, message: str = "you may not access this session") -> AbortResult:
        return cls.error(403, "forbidden", message)


class ExecutionState:
    """What a session is doing when a hook or endpoint runs, and the controls to change it.

    The fields are read once, when the context is built; call :meth:`refresh` for a newer view.
    """

    def __init__(self, runtime: AgentRuntime, status: SessionStatus) -> None:
        self._runtime = runtime
        self._apply(status)

    def _apply(self, status: SessionStatus) -> None:
        self.session_id: str = status.session_id
        self.run_id: str | None = status.run_id
        self.status: str = status.status
        self.is_executing: bool = status.is_executing
        self.can_resume: bool = status.can_resume
        self.agent_type: str | None = status.agent_type

    @classmethod
    async def load(cls, runtime: AgentRuntime, session_id: str) -> ExecutionState:
        return cls(runtime, await runtime.status(session_id))

    async def refresh(self) -> ExecutionState:
        self._apply(await self._runtime.status(self.session_id))
        return self

    def get_handle(self) -> AgentExecutionHandle:
        """An in-process handle on the session's latest run."""
        return self._runtime.get_handle(self.session_id, self.run_id)

    async def interrupt(self, reason: str = "user_requested") -> RunInfo | None:
        """Interrupt the executing run and wait until it has recorded its end; ``None`` if nothing ran."""
        try:
            info = await self._runtime.interrupt(self.session_id, reason)
        except InvalidRunStateError:
            info = None
        await self.refresh()
        return info

    async def abort(self, reason: str = "aborted") -> RunInfo | None:
        """Abort the executing run (not resumable); ``None`` if nothing ran."""
        try:
            info = await self._runtime.abort(self.session_id, reason)
        except InvalidRunStateError:
            info = None
        await self.refresh()
        return info

    def __repr__(self) -> str:
        return (
            f"ExecutionState(session_id={self.session_id!r}, run_id={self.run_id!r}, status={self.status!r}, "
            f"is_executing={self.is_executing})"
        )


@dataclass(frozen=True, kw_only=True)
class AuthorizeContext:
    """``route`` is the built-in route name (``"start"``, ``"history"``, ``"sse"``, ``"ws"``, ...), the
    custom endpoint's path (``"/my-endpoint"``) or ``"metrics"``; ``session_id`` and ``execution_state`` are
    ``None`` for ``/metrics``. ``body`` is the JSON body as a dict when it is one, else ``None``."""

    env: Any
    request: Any
    route: str
    method: str
    transport: Transport
    session_id: str | None
    execution_state: ExecutionState | None
    body: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class HookContext:
    """For ``before_*`` and ``after_*``. ``action`` is ``"start"``, ``"resume"`` or ``"retry"``; ``body`` the
    request's JSON as sent (after ``transform_request``). ``run_id``, ``status`` (``"started"`` /
    ``"resumed"``) and ``result`` (the answer body) are set for ``after_*`` only."""

    env: Any
    request: Any
    transport: Transport
    action: str
    session_id: str
    agent_type: str | None
    body: dict[str, Any]
    execution_state: ExecutionState
    run_id: str | None = None
    status: str | None = None
    result: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class TransformContext:
    """For ``transform_request`` (``status_code`` is ``None``) and ``transform_response``."""

    env: Any
    request: Any
    transport: Transport
    route: str
    session_id: str
    body: Any
    status_code: int | None = None


@dataclass(frozen=True, kw_only=True)
class CompleteContext:
    """For ``on_complete``: ``status`` is ``completed``, ``failed`` or ``interrupted``; ``result`` the run's
    output, ``error`` its ``{code, message}``. There is no request: the run ended on its own time."""

    env: Any
    session_id: str
    run_id: str
    agent_type: str
    status: str
    result: Any
    error: dict[str, Any] | None
    execution_state: ExecutionState
    request: None = None


AuthorizeHook = Callable[[AuthorizeContext], Awaitable["AbortResult | None"]]
BeforeHook = Callable[[HookContext], Awaitable["AbortResult | None"]]
AfterHook = Callable[[HookContext], Awaitable[None]]
TransformHook = Callable[[TransformContext], Awaitable[Any]]
CompleteHook = Callable[[CompleteContext], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class ServerHooks:
    """Async callables, each of one context object; every one is optional. See the module docstring."""

    authorize: AuthorizeHook | None = None
    before_start: BeforeHook | None = None
    after_start: AfterHook | None = None
    before_resume: BeforeHook | None = None
    after_resume: AfterHook | None = None
    before_retry: BeforeHook | None = None
    after_retry: AfterHook | None = None
    on_complete: CompleteHook | None = None
    transform_request: TransformHook | None = None
    transform_response: TransformHook | None = None


class UsageStore(Protocol):
    """An external sink for usage (``create_agent_server(usage_store=...)``): after every run it receives
    that run's entries. The session file keeps its own copy, which ``/usage`` serves."""

    async def record(
        self, *, session_id: str, run_id: str, agent_type: str, entries: Sequence[UsageEntry]
    ) -> None:
        """Store the usage entries of one finished run. Errors are logged, never raised to clients."""
