"""The agent loop of one run (DESIGN §4): stream a model step, run its tools, commit the step, repeat.

Streaming chunks go through the actor's output gate as they are produced (small coalesced commits, each
released to listeners only after it is durable). Everything a step decides — its messages, the new state,
the checkpoint, usage and the closing chunks — is committed in one transaction at the end of the step, so
a step that is interrupted or crashes leaves nothing behind but the chunks it streamed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonpatch
import pydantic
import trio

from actors import OutputGate
from stores import ChunkDraft, SessionStore, StoredChunk, UsageEntry

from . import chunks
from .agent import Agent, OutputValidationError
from .conversation import from_stored, to_new_message
from .errors import HelixError
from .llm import (
    LLMAdapter,
    LLMEvent,
    Message,
    ReasoningDelta,
    StepFinished,
    StepRequest,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from .run_terminal import RunTerminal
from .session_head import SessionHead
from .tools import ToolArgumentsError, ToolContext, tool_result_text
from .watchdog import SilenceWatchdog

OUTPUT_RETRY_PROMPT = (
    "Your final answer must be a JSON value that matches the output schema. It did not: {error}. "
    "Answer again with the JSON only."
)


class StepTimeoutError(HelixError):
    code, status = "step_timeout", 504


class OutputSchemaError(HelixError):
    code, status = "output_validation_failed", 422


@dataclass(frozen=True, kw_only=True)
class Completed:
    output: Any


@dataclass(frozen=True, kw_only=True)
class MaxStepsReached:
    steps: int


Outcome = Completed | MaxStepsReached


@dataclass(kw_only=True)
class RunContext:
    """What a run works on. ``head`` is updated after every committed step."""

    session_id: str
    run_id: str
    agent: Agent
    adapter: LLMAdapter
    gate: OutputGate[StoredChunk]
    head: SessionHead
    conversation: list[Message]
    state: dict[str, Any] | None
    step_timeout: float
    terminal: RunTerminal


@dataclass(kw_only=True)
class _StepResult:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    invalid_calls: dict[str, str] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    duration_ms: float = 0.0


class RunLoop:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self._output_retried = False
        self._drafts: list[ChunkDraft] = []
        self._model_streaming = False

    # -- emitting --------------------------------------------------------------------------------

    def emit(self, chunk_type: str, **payload: Any) -> None:
        """Queue a streaming chunk; it reaches listeners after its (coalesced) commit.

        Chunks emitted before the gate's next flush share one queued write (one INSERT batch)."""
        self._drafts.append(chunks.draft(self.ctx.run_id, chunk_type, **payload))
        if len(self._drafts) == 1:
            # Only the model's stream commits a lone chunk at once (the gate's eager mode): what the loop
            # emits around it (a step's start, tool results) is followed by a commit it can join.
            self.ctx.gate.write(self._append_drafts, eager=self._model_streaming)

    def _append_drafts(self, store: SessionStore) -> list[StoredChunk]:
        drafts, self._drafts = self._drafts, []
        return store.chunks.append(drafts)

    # -- the loop --------------------------------------------------------------------------------

    async def execute(self) -> Outcome:
        agent = self.ctx.agent
        step = 0
        while True:
            if step >= agent.max_steps:
                return MaxStepsReached(steps=step)
            step += 1
            self.emit(chunks.STEP_STARTED, step=step)
            result = await self._stream_model(step)
            tool_messages, tool_usage = await self._run_tools(result)
            assistant = Message(role="assistant", content=result.text, tool_calls=tuple(result.tool_calls))
            new_messages = [assistant, *tool_messages]
            outcome: Outcome | None = None
            if not result.tool_calls:
                try:
                    outcome = Completed(output=_json_ready(agent.parse_output(result.text)))
                except OutputValidationError as exc:
                    if self._output_retried:
                        raise OutputSchemaError(
                            f"the model's final answer failed the output schema twice: {exc}"
                        ) from exc
                    self._output_retried = True
                    new_messages.append(Message(role="user", content=OUTPUT_RETRY_PROMPT.format(error=exc)))
            await self._commit_step(step, new_messages, result, tool_usage, outcome)
            if outcome is not None:
                return outcome

    async def _stream_model(self, step: int) -> _StepResult:
        agent = self.ctx.agent
        request = StepRequest(
            system_prompt=agent.render_system_prompt(self._state_value()),
            messages=tuple(self.ctx.conversation),
            tools=agent.tool_specs(),
            model=agent.model,
            output_schema=agent.output_json_schema(),
            step=step,
        )
        result = _StepResult()
        text_parts: list[str] = []
        started = time.perf_counter()
        events = self.ctx.adapter.stream_step(request)
        # The watchdog: a model that goes silent for step_timeout fails the step, so no session stays
        # "running" forever behind a hung connection.
        timeout = self.ctx.step_timeout
        watchdog = SilenceWatchdog(timeout)
        with watchdog.scope:
            async with contextlib.aclosing(events):  # type: ignore[type-var]  # adapters yield async generators
                self._model_streaming = True
                try:
                    async for event in events:
                        watchdog.feed()
                        self._on_event(event, result, text_parts)
                finally:
                    self._model_streaming = False
        if watchdog.scope.cancelled_caught:
            raise StepTimeoutError(f"the model sent nothing for {timeout:g} s in step {step}")
        result.text = "".join(text_parts)
        result.duration_ms = (time.perf_counter() - started) * 1000
        return result

    def _on_event(self, event: LLMEvent, result: _StepResult, text_parts: list[str]) -> None:
        if isinstance(event, TextDelta):
            if event.text:
                text_parts.append(event.text)
                self.emit(chunks.TEXT_DELTA, delta=event.text)
        elif isinstance(event, ReasoningDelta):
            if event.text:
                self.emit(chunks.REASONING_DELTA, delta=event.text)
        elif isinstance(event, ToolCallStart):
            self.emit(chunks.TOOL_CALL_START, toolCallId=event.id, toolName=event.name)
        elif isinstance(event, ToolCallDelta):
            self.emit(chunks.TOOL_CALL_DELTA, toolCallId=event.id, argumentsDelta=event.arguments_delta)
        elif isinstance(event, ToolCallEnd):
            call = ToolCall(id=event.id, name=event.name, arguments=event.arguments)
            result.tool_calls.append(call)
            if event.error is not None:
                result.invalid_calls[event.id] = event.error
            self.emit(
                chunks.TOOL_CALL_END,
                toolCallId=event.id,
                toolName=event.name,
                arguments=event.arguments,
            )
        elif isinstance(event, StepFinished):
            result.usage = event.usage
            result.model = event.model

    # -- tools -----------------------------------------------------------------------------------

    async def _run_tools(self, result: _StepResult) -> tuple[list[Message], list[UsageEntry]]:
        calls = result.tool_calls
        if not calls:
            return [], []
        outputs: list[tuple[str, bool, float]] = [("", False, 0.0)] * len(calls)

        async def run_one(index: int, call: ToolCall) -> None:
            started = time.perf_counter()
            content, is_error = await self._invoke_tool(call, result.invalid_calls.get(call.id))
            outputs[index] = (content, is_error, (time.perf_counter() - started) * 1000)
            self.emit(
                chunks.TOOL_RESULT, toolCallId=call.id, toolName=call.name, result=content, isError=is_error
            )

        with trio.fail_after(self.ctx.step_timeout):
            if len(calls) == 1:
                await run_one(0, calls[0])  # nothing to run beside it: no nursery, no task to schedule
            else:
                async with trio.open_nursery() as nursery:
                    for index, call in enumerate(calls):
                        nursery.start_soon(run_one, index, call)
        messages = [
            Message(role="tool", content=content, tool_call_id=call.id)
            for call, (content, _, _) in zip(calls, outputs, strict=True)
        ]
        usage = [
            UsageEntry(kind="tool", name=call.name, run_id=self.ctx.run_id, duration_ms=duration)
            for call, (_, _, duration) in zip(calls, outputs, strict=True)
        ]
        return messages, usage

    async def _invoke_tool(self, call: ToolCall, invalid_arguments: str | None) -> tuple[str, bool]:
        """Run one tool call. Anything the tool raises becomes an error result the model reads; only
        cancellation (interrupt, abort, shutdown) propagates."""
        if invalid_arguments is not None:
            return f"Error: the arguments were not a JSON object: {invalid_arguments}", True
        tool = self.ctx.agent.tool(call.name)
        if tool is None:
            names = ", ".join(t.name for t in self.ctx.agent.tools) or "none"
            return f"Error: there is no tool named {call.name!r}; available tools: {names}", True
        context = ToolContext(
            session_id=self.ctx.session_id,
            run_id=self.ctx.run_id,
            tool_call_id=call.id,
            get_state=self._state_value,
            update_state=self._update_state,
            emit=self._emit_custom,
        )
        try:
            value = await tool.invoke(call.arguments, context)
        except ToolArgumentsError as exc:
            return f"Error: {exc}", True
        except Exception as exc:  # a tool's failure is the model's to handle, not the run's
            return f"Error: {type(exc).__name__}: {exc}", True
        return tool_result_text(value), False

    # -- state -----------------------------------------------------------------------------------

    def _state_value(self) -> Any:
        return self.ctx.agent.validate_state(self.ctx.state)

    async def _update_state(self, patch: dict[str, Any]) -> None:
        if not isinstance(patch, dict):
            raise TypeError("update_state takes a dict of the fields to change")
        before = self.ctx.state or {}
        merged = {**before, **patch}
        try:
            after = self.ctx.agent.dump_state(self.ctx.agent.validate_state(merged)) or {}
        except pydantic.ValidationError as exc:
            raise ValueError(f"the state update does not match the state schema: {exc}") from exc
        operations = jsonpatch.make_patch(before, after).patch
        self.ctx.state = after
        if operations:
            self.emit(chunks.STATE_PATCH, patch=operations)

    async def _emit_custom(self, event_type: str, payload: Any = None) -> None:
        self.emit(chunks.CUSTOM, name=event_type, payload=payload)

    # -- committing a step -----------------------------------------------------------------------

    async def _commit_step(
        self,
        step: int,
        new_messages: Sequence[Message],
        result: _StepResult,
        tool_usage: Sequence[UsageEntry],
        outcome: Outcome | None,
    ) -> None:
        ctx = self.ctx
        llm_usage = UsageEntry(
            kind="llm",
            model=result.model or ctx.agent.model,
            run_id=ctx.run_id,
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            cached_tokens=result.usage.cached_tokens,
            reasoning_tokens=result.usage.reasoning_tokens,
            duration_ms=result.duration_ms,
        )
        stored_messages: list[Message] = []

        def write(store: SessionStore) -> list[StoredChunk]:
            stored = store.messages.append(ctx.head.message_id, [to_new_message(m) for m in new_messages])
            checkpoint = ctx.head.advance(
                store,
                run_id=ctx.run_id,
                step=step,
                message_id=stored[-1].id,
                state=ctx.state,
                status="completed" if isinstance(outcome, Completed) else "running",
            )
            store.usage.add(llm_usage)
            for entry in tool_usage:
                store.usage.add(entry)
            usage_payload = {
                "inputTokens": llm_usage.input_tokens,
                "outputTokens": llm_usage.output_tokens,
                "cachedTokens": llm_usage.cached_tokens,
                "reasoningTokens": llm_usage.reasoning_tokens,
            }
            drafts = [
                chunks.draft(ctx.run_id, chunks.STEP_FINISHED, step=step, usage=usage_payload),
                chunks.draft(ctx.run_id, chunks.CHECKPOINT, checkpointId=checkpoint.id, step=step),
            ]
            stored_messages.extend(from_stored(m) for m in stored)
            out = store.chunks.append(drafts)
            if isinstance(outcome, Completed):
                out += ctx.terminal.completed(store, outcome.output)
            return out

        # The step is complete: committing it must not be torn by an interrupt that arrives meanwhile.
        # The interrupt takes effect at the next checkpoint of the loop instead.
        with trio.CancelScope(shield=True):
            try:
                await ctx.gate.commit(write)
            except BaseException:
                ctx.terminal.rolled_back()  # the end this write may have claimed did not commit
                raise
        ctx.conversation.extend(stored_messages)


def _json_ready(output: Any) -> Any:
    """Structured output is stored and sent as JSON: a validated model becomes its JSON form."""
    if isinstance(output, pydantic.BaseModel):
        return output.model_dump(mode="json")
    return output
