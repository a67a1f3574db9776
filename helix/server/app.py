"""``create_agent_server``: the ASGI app that serves an :class:`~helix.runtime.AgentRuntime`.

The returned :class:`AgentServer` is itself an ASGI app, so ``hypercorn -k trio myapp:server`` serves it,
and it works mounted under a path prefix (ASGI ``root_path``). Startup and shutdown run through ASGI
lifespan: startup opens the runtime in the app's nursery (quart-trio opens that nursery in lifespan), and
``/healthz`` answers 200 from then on; shutdown stops taking work, interrupts running runs (their
sessions stay resumable) and closes every session file. Without HTTP, ``async with server:`` opens the
same runtime for in-process use (``server.start(...)``, ``server.get_handle(...)``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import trio
from quart_trio import QuartTrio

from ..commands import InputMessage
from ..handle import AgentExecutionHandle
from ..llm import AdapterFactory
from ..registry import AgentRegistry, AgentResolver
from ..runtime import AgentRuntime
from ..session_actor import RunFinished
from ..status import RunInfo, SessionStatus
from .bodies import Message, Receive, Scope, Send, answer_early, read_body, replay
from .collector import collect_when_idle, tune_collector
from .endpoints import check_endpoints
from .hooks import CompleteContext, ExecutionState, ServerHooks, UsageStore
from .metrics import ServerMetrics
from .routes import build_app
from .services import EndpointHandler, ServerLimits, ServerServices


class AgentServer:
    """An ASGI app serving one runtime, plus that runtime's in-process API."""

    def __init__(self, *, runtime: AgentRuntime, services: ServerServices, tune_gc: bool = True) -> None:
        self.runtime = runtime
        self.services = services
        self.tune_gc = tune_gc
        self.app: QuartTrio = build_app(services)
        self._stop: trio.Event | None = None
        self._stopped: trio.Event | None = None
        self.app.before_serving(self._open_in_app_nursery)
        self.app.after_serving(self._close_in_app_nursery)

    # -- ASGI ------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            limits = self.services.limits
            read = await read_body(scope, receive, limits)
            if read.disconnected:
                return
            if read.too_large or read.timed_out:
                await answer_early(send, read, limits)
                return
            receive = replay(read.body, receive)
            send = _finishing_uncancelled(send)
        await self.app(scope, receive, send)  # type: ignore[arg-type]

    async def _open_in_app_nursery(self) -> None:
        self._stop, self._stopped = trio.Event(), trio.Event()
        await self.app.nursery.start(self._serve_runtime)

    async def _serve_runtime(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        assert self._stop is not None and self._stopped is not None
        try:
            async with self.runtime, trio.open_nursery() as nursery:
                if self.tune_gc:
                    tune_collector()
                    nursery.start_soon(collect_when_idle, self.runtime)
                self.services.accepting = True
                task_status.started()
                try:
                    await self._stop.wait()
                finally:
                    self.services.accepting = False
                    nursery.cancel_scope.cancel()
        finally:
            self._stopped.set()

    async def _close_in_app_nursery(self) -> None:
        if self._stop is not None and self._stopped is not None:
            self._stop.set()
            await self._stopped.wait()

    # -- in-process use --------------------------------------------------------------------------

    async def __aenter__(self) -> AgentServer:
        await self.runtime.__aenter__()
        self.services.accepting = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.services.accepting = False
        await self.runtime.__aexit__(*exc_info)

    async def start(
        self,
        session_id: str,
        *,
        agent_type: str,
        message: str | None = None,
        state: dict[str, Any] | None = None,
        messages: Sequence[InputMessage] = (),
        metadata: dict[str, Any] | None = None,
    ) -> AgentExecutionHandle:
        """Start a run in-process (no hooks: they belong to requests)."""
        return await self.runtime.start(
            session_id,
            agent_type=agent_type,
            message=message,
            state=state,
            messages=messages,
            metadata=metadata,
        )

    def get_handle(self, session_id: str, run_id: str | None = None) -> AgentExecutionHandle:
        return self.runtime.get_handle(session_id, run_id)

    async def status(self, session_id: str) -> SessionStatus:
        return await self.runtime.status(session_id)

    async def interrupt(self, session_id: str, reason: str = "user_requested") -> RunInfo:
        return await self.runtime.interrupt(session_id, reason)

    async def abort(self, session_id: str, reason: str = "aborted") -> RunInfo:
        return await self.runtime.abort(session_id, reason)

    # -- run completion --------------------------------------------------------------------------

    async def on_run_finished(self, finished: RunFinished) -> None:
        """Given to the runtime: ``on_complete`` and the usage store, with their errors logged (they run
        in the session's task and must never break it)."""
        services = self.services
        if services.hooks.on_complete is not None:
            try:
                ctx = CompleteContext(
                    env=services.env,
                    session_id=finished.session_id,
                    run_id=finished.run_id,
                    agent_type=finished.agent_type,
                    status=finished.status,
                    result=finished.output,
                    error=finished.error,
                    execution_state=await ExecutionState.load(self.runtime, finished.session_id),
                )
                await services.hooks.on_complete(ctx)
            except Exception as exc:
                services.logger.error("the on_complete hook raised", exc_info=exc)
        if services.usage_store is not None:
            try:
                entries, _ = await self.runtime.usage(finished.session_id)
                await services.usage_store.record(
                    session_id=finished.session_id,
                    run_id=finished.run_id,
                    agent_type=finished.agent_type,
                    entries=[e for e in entries if e.run_id == finished.run_id],
                )
            except Exception as exc:
                services.logger.error("the usage store raised", exc_info=exc)


def _finishing_uncancelled(send: Send) -> Send:
    """``send`` whose last message of a response (the final body) cannot be cancelled.

    Hypercorn finishes the connection inside that call: it tells the app the stream closed (the
    ``http.disconnect`` quart-trio waits for), then closes a ``Connection: close`` connection or arms
    the keep-alive idle timer. quart-trio cancels the task sending the response as soon as it sees that
    disconnect, so without the shield the close (or the timer) was cancelled half-way and the
    connection stayed open until the client left. Hypercorn already shields the socket write itself, so
    this never waits on a slow client longer than before."""

    async def send_finishing_uncancelled(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            with trio.CancelScope(shield=True):
                await send(message)
        else:
            await send(message)

    return send_finishing_uncancelled


def create_agent_server(
    *,
    llm_adapter: AdapterFactory,
    agents: AgentRegistry | AgentResolver,
    hooks: ServerHooks | None = None,
    endpoints: Mapping[str, EndpointHandler] | None = None,
    usage_store: UsageStore | None = None,
    logger: logging.Logger | None = None,
    env: Any = None,
    data_dir: str | Path = "./.helix",
    idle_timeout: float = 60.0,
    max_live_actors: int = 10_000,
    max_body_bytes: int | None = None,
    step_timeout: float = 300.0,
    limits: ServerLimits | None = None,
    tune_gc: bool = True,
) -> AgentServer:
    """Build the server: an ASGI app (``hypercorn -k trio module:server``) with the in-process API.

    ``llm_adapter`` is ``(env, LLMAdapterContext) -> LLMAdapter``; ``agents`` an :class:`AgentRegistry` or
    a resolver. ``max_body_bytes`` (default 8 MiB) bounds request bodies; the other limits are in
    ``limits`` (:class:`ServerLimits`; ``max_body_bytes``, when given, overrides its field). With
    ``tune_gc`` (the default), the server tunes the process's garbage collector when it starts serving
    (:mod:`helix.server.collector`: about a third of the chunk pipeline's CPU otherwise) and runs the full
    collection itself once per quiet spell (no run executing, no chunk committed for 0.25 s), so that its
    long pause falls between streams; in-process use (``async with server:``) never touches it. Raises
    ``ValueError`` / ``TypeError`` for a malformed ``endpoints`` mapping or limit.
    """
    chosen = limits or ServerLimits()
    if max_body_bytes is not None:
        chosen = dataclasses.replace(chosen, max_body_bytes=max_body_bytes)
    checked_endpoints = check_endpoints(endpoints)
    server_ref: list[AgentServer] = []

    async def on_run_finished(finished: RunFinished) -> None:
        await server_ref[0].on_run_finished(finished)

    runtime = AgentRuntime(
        llm_adapter=llm_adapter,
        agents=agents,
        env=env,
        data_dir=data_dir,
        idle_timeout=idle_timeout,
        max_live_actors=max_live_actors,
        step_timeout=step_timeout,
        on_run_finished=on_run_finished,
    )
    services = ServerServices(
        runtime=runtime,
        hooks=hooks or ServerHooks(),
        endpoints=checked_endpoints,
        limits=chosen,
        metrics=ServerMetrics(runtime),
        logger=logger or logging.getLogger("helix.server"),
        env=env,
        usage_store=usage_store,
    )
    server = AgentServer(runtime=runtime, services=services, tune_gc=tune_gc)
    server_ref.append(server)
    return server
