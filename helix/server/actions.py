"""The five commands (start, resume, retry, interrupt, abort) with their hooks, shared by the HTTP routes
and the WebSocket.

A command goes: ``transform_request`` -> validation -> ``before_<command>`` -> the runtime ->
``after_<command>``. A refusal by a ``before_*`` hook returns the :class:`AbortResult` before the runtime is
touched, so the session is unchanged; so does any error before the runtime call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio
from pydantic import BaseModel
from quart_trio.wrappers import TrioResponse

from ..errors import HookFailedError, InvalidRequestError
from ..status import RunInfo
from .call import Answer, SessionCall
from .hooks import AbortResult, AfterHook, BeforeHook, HookContext, TransformContext, Transport
from .requests import ResumeBody, RetryBody, StartBody, StopBody, validate
from .responses import abort_response
from .services import ServerServices

ACCEPTED = 202
FIRST_SEQ_HEADER = "Helix-First-Seq"


@dataclass(frozen=True, kw_only=True)
class ActionRequest:
    services: ServerServices
    action: str
    session_id: str
    body: dict[str, Any]
    request: Any
    transport: Transport


@dataclass(frozen=True, kw_only=True)
class ActionAnswer:
    """A command that took effect: ``body`` is ``{sessionId, runId, streamId?, status}``; ``first_seq``
    the seq of the new run's first chunk (``None`` for interrupt and abort)."""

    body: dict[str, Any]
    info: RunInfo
    status: int = ACCEPTED


Runner = Callable[[ActionRequest, Any, str | None], Awaitable[RunInfo]]


@dataclass(frozen=True, kw_only=True)
class Action:
    model: type[BaseModel]
    run: Runner
    before: str | None = None
    after: str | None = None


async def _start(req: ActionRequest, body: StartBody, agent_type: str | None) -> RunInfo:
    assert agent_type is not None
    handle = await req.services.runtime.start(
        req.session_id,
        agent_type=agent_type,
        message=body.input.message,
        state=body.input.state,
        messages=[m.to_input() for m in body.input.messages],
        metadata=body.run_metadata(),
    )
    return handle.info


async def _resume(req: ActionRequest, body: ResumeBody, agent_type: str | None) -> RunInfo:
    options = body.options
    mode = "with_message" if options.mode == "continue" and options.message else options.mode
    handle = await req.services.runtime.resume(
        req.session_id,
        agent_type=agent_type,
        mode=mode,
        checkpoint_id=options.checkpoint_id,
        modify_state=options.modify_state,
        append_messages=[m.to_input() for m in options.append_messages],
        message=options.message,
    )
    return handle.info


async def _retry(req: ActionRequest, body: RetryBody, agent_type: str | None) -> RunInfo:
    handle = await req.services.runtime.retry(
        req.session_id, agent_type=agent_type, mode=body.options.mode, message=body.options.message
    )
    return handle.info


async def _interrupt(req: ActionRequest, body: StopBody, agent_type: str | None) -> RunInfo:
    return await req.services.runtime.interrupt(req.session_id, body.reason or "user_requested")


async def _abort(req: ActionRequest, body: StopBody, agent_type: str | None) -> RunInfo:
    return await req.services.runtime.abort(req.session_id, body.reason or "aborted")


ACTIONS: dict[str, Action] = {
    "start": Action(model=StartBody, run=_start, before="before_start", after="after_start"),
    "resume": Action(model=ResumeBody, run=_resume, before="before_resume", after="after_resume"),
    "retry": Action(model=RetryBody, run=_retry, before="before_retry", after="after_retry"),
    "interrupt": Action(model=StopBody, run=_interrupt),
    "abort": Action(model=StopBody, run=_abort),
}


async def perform(req: ActionRequest) -> ActionAnswer | AbortResult:
    """Run one command. Raises :class:`~helix.errors.HelixError` subclasses for refusals the runtime or
    validation makes, :class:`HookFailedError` when a hook raised."""
    services, hooks = req.services, req.services.hooks
    action = ACTIONS[req.action]
    body = req.body
    if hooks.transform_request is not None:
        ctx = TransformContext(
            env=services.env,
            request=req.request,
            transport=req.transport,
            route=req.action,
            session_id=req.session_id,
            body=body,
        )
        replaced = await services.call_hook("transform_request", hooks.transform_request, ctx)
        if replaced is not None:
            if not isinstance(replaced, dict):
                services.logger.error(
                    "transform_request returned %r; expected a dict or None", type(replaced)
                )
                raise HookFailedError("transform_request")
            body = replaced
    parsed = validate(action.model, body)
    agent_type: str | None = getattr(parsed, "agent_type", None)
    if req.action == "start" and agent_type is None:
        agent_type = (await services.runtime.status(req.session_id)).agent_type
        if agent_type is None:
            raise InvalidRequestError(
                "agentType is required to start the first run of a session",
                details=[{"loc": ["agentType"], "msg": "Field required", "type": "missing"}],
            )
    before: BeforeHook | None = getattr(hooks, action.before) if action.before else None
    if before is not None:
        assert action.before is not None
        ctx_before = await _hook_context(req, body, agent_type)
        refusal = await services.call_hook(action.before, before, ctx_before)
        if isinstance(refusal, AbortResult):
            return refusal
        if refusal is not None:
            services.logger.error("%s returned %r; expected None or an AbortResult", action.before, refusal)
            raise HookFailedError(action.before)
    info = await action.run(req, parsed, agent_type)
    answer = info.to_wire()
    after: AfterHook | None = getattr(hooks, action.after) if action.after else None
    if after is not None:
        await _after(req, after, body, agent_type, info, answer)
    return ActionAnswer(body=answer, info=info)


async def _hook_context(
    req: ActionRequest,
    body: dict[str, Any],
    agent_type: str | None,
    info: RunInfo | None = None,
    answer: dict[str, Any] | None = None,
) -> HookContext:
    return HookContext(
        env=req.services.env,
        request=req.request,
        transport=req.transport,
        action=req.action,
        session_id=req.session_id,
        agent_type=agent_type,
        body=body,
        execution_state=await req.services.execution_state(req.session_id),
        run_id=info.run_id if info else None,
        status=info.status if info else None,
        result=answer,
    )


async def _after(
    req: ActionRequest,
    hook: AfterHook,
    body: dict[str, Any],
    agent_type: str | None,
    info: RunInfo,
    answer: dict[str, Any],
) -> None:
    """The run exists now, so a failing ``after_*`` hook is logged, not answered as an error: the client
    must still learn the ``runId`` it started."""
    try:
        ctx = await _hook_context(req, body, agent_type, info, dict(answer))
        await hook(ctx)
    except trio.Cancelled:
        raise
    except Exception as exc:
        req.services.logger.error("the after_%s hook raised (the run was started)", req.action, exc_info=exc)


async def http_command(call: SessionCall) -> Answer | TrioResponse:
    """POST start / resume / retry / interrupt / abort: 202 with ``{sessionId, runId, streamId?, status}``.
    A new run's answer also carries the ``Helix-First-Seq`` header: the seq of the run's first chunk,
    where a client streams it from."""
    outcome = await perform(
        ActionRequest(
            services=call.services,
            action=call.route,
            session_id=call.session_id,
            body=call.json_object(),
            request=call.request,
            transport="http",
        )
    )
    if isinstance(outcome, AbortResult):
        return abort_response(outcome)
    headers: dict[str, str] = {}
    if outcome.info.first_seq is not None:
        headers[FIRST_SEQ_HEADER] = str(outcome.info.first_seq)
    return Answer(body=outcome.body, status=outcome.status, headers=headers)
