"""The session actor: one per session id, owner of the session file, runner of its runs (DESIGN §5).

Commands (start, resume, retry, interrupt, abort) arrive through the actor's mailbox and are handled one
at a time. A run executes as a task the actor owns; interrupt and abort cancel that task's scope, and the
run writes its one terminal chunk together with its terminal status. Crash recovery runs at activation,
before the directory lets any request reach the actor.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic
import trio

from actors import Actor, ActorContext
from stores import NewMessage, SessionStore, StoredChunk

from . import chunks
from .agent import Agent
from .commands import InputMessage, ResumeCommand, RetryCommand, StartCommand, StopCommand
from .conversation import from_stored
from .errors import CheckpointNotFoundError, HelixError, InvalidRequestError, InvalidRunStateError
from .llm import AdapterFactory, LLMAdapterContext, Message
from .registry import AgentFactoryContext, AgentRegistry, AgentResolver, resolve_agent
from .run_loop import Completed, MaxStepsReached, Outcome, RunContext, RunLoop
from .run_terminal import RunTerminal
from .session_head import SessionHead
from .status import ResumeMode, RetryMode, RunInfo, RunStatus, SessionStatus

logger = logging.getLogger("helix.session")

# How long a run that was told to stop may take to record its end once cancelled (it only commits).
_TERMINAL_WRITE_GRACE = 10.0


@dataclass(frozen=True, kw_only=True)
class RunFinished:
    """Given to the runtime's ``on_run_finished`` callback when a run has written its end."""

    session_id: str
    run_id: str
    agent_type: str
    status: str
    output: Any = None
    error: dict[str, Any] | None = None


@dataclass(kw_only=True)
class SessionServices:
    """What every session actor of one runtime shares; built by the runtime, never global."""

    agents: AgentRegistry | AgentResolver
    adapter_factory: AdapterFactory
    env: Any
    step_timeout: float
    publish: Callable[[str, list[StoredChunk]], None]
    on_run_finished: Callable[[RunFinished], Awaitable[None]] | None = None
    runs_active: int = 0


@dataclass(kw_only=True)
class ActiveRun:
    run_id: str
    agent_type: str
    terminal: RunTerminal
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)
    stop: StopCommand | None = None


def new_run_id() -> str:
    return f"run_{secrets.token_hex(8)}"


class SessionActor(Actor):
    def __init__(self, ctx: ActorContext, services: SessionServices) -> None:
        super().__init__(ctx)
        self.services = services
        self.head = SessionHead()
        self.active: ActiveRun | None = None
        self.gate.set_deliver(self._deliver)

    def _deliver(self, stored: list[StoredChunk]) -> None:
        if stored:
            self.services.publish(self.name, stored)

    # -- lifecycle -------------------------------------------------------------------------------

    async def on_activate(self) -> None:
        self.head.load(self.store)
        crashed = self.store.runs.with_status(RunStatus.RUNNING)
        if crashed:
            # The process that ran these died mid-run (nothing else leaves a run "running" in the file):
            # each gets its one terminal chunk now, before any request sees the session.
            def write(store: SessionStore) -> list[StoredChunk]:
                out: list[StoredChunk] = []
                for run in crashed:
                    out += RunTerminal(run.id).interrupted(store, "crash")
                return out

            await self.gate.commit(write)
            logger.warning("session %r: recovered %d run(s) interrupted by a crash", self.name, len(crashed))

    async def on_shutdown(self, reason: str) -> None:
        active = self.active
        if active is not None:
            if active.stop is None:
                active.stop = StopCommand(kind="interrupt", reason=reason)
            active.scope.cancel(reason=f"interrupt: {reason}")
            await active.done.wait()

    async def on_message(self, message: Any) -> Any:
        if isinstance(message, StartCommand):
            return await self._start(message)
        if isinstance(message, ResumeCommand):
            return await self._resume(message)
        if isinstance(message, RetryCommand):
            return await self._retry(message)
        if isinstance(message, StopCommand):
            return await self._stop(message)
        raise TypeError(f"session actor got an unknown message {type(message).__name__}")

    # -- commands --------------------------------------------------------------------------------

    async def _start(self, command: StartCommand) -> RunInfo:
        await self._require_idle("start")
        run_id = new_run_id()
        agent = await self._resolve(command.agent_type, run_id)
        state = self._merged_state(agent, self.head.state(self.store), command.state)
        new_messages = [_new_message(m) for m in command.messages]
        if command.message is not None:
            new_messages.append(NewMessage(role="user", content=command.message))
        payload: dict[str, Any] = {"agentType": command.agent_type}
        if command.message is not None:
            payload["input"] = {"message": command.message}
        return await self._begin(
            agent,
            run_id=run_id,
            mode="start",
            new_messages=new_messages,
            state=state,
            base_message_id=self.head.message_id,
            base_checkpoint_id=self.head.checkpoint_id,
            first_chunk=(chunks.RUN_STARTED, payload),
            metadata=command.metadata,
            answer_status="started",
        )

    async def _resume(self, command: ResumeCommand) -> RunInfo:
        await self._require_idle("resume")
        latest = self.store.runs.latest()
        time_travel = command.mode in (ResumeMode.FROM_CHECKPOINT, ResumeMode.BRANCH)
        base_checkpoint_id: str | None
        if time_travel:
            if not command.checkpoint_id:
                raise InvalidRequestError(f"resume mode {command.mode.value!r} needs a checkpointId")
            checkpoint = self.store.checkpoints.get(command.checkpoint_id)
            if checkpoint is None:
                raise CheckpointNotFoundError(command.checkpoint_id)
            base_message_id, base_checkpoint_id = checkpoint.head_message_id, checkpoint.id
            base_state = self.store.checkpoints.get_state(checkpoint.state_id)
        else:
            if latest is None:
                raise InvalidRunStateError(
                    "there is no run to resume in this session; start one", status="idle"
                )
            if not latest.resumable:
                raise InvalidRunStateError(
                    f"the latest run cannot be resumed: {latest.resume_blocked_reason}; "
                    "retry it or resume from a checkpoint instead",
                    status=latest.status,
                )
            if command.mode is ResumeMode.WITH_MESSAGE and not command.message:
                raise InvalidRequestError("resume mode 'with_message' needs a message")
            base_message_id, base_checkpoint_id = self.head.message_id, self.head.checkpoint_id
            base_state = self.head.state(self.store)
        agent_type = command.agent_type or (latest.agent_type if latest else None)
        if agent_type is None:
            raise InvalidRequestError("resume needs an agentType")
        run_id = new_run_id()
        agent = await self._resolve(agent_type, run_id)
        state = self._merged_state(agent, base_state, command.modify_state)
        new_messages = [_new_message(m) for m in command.append_messages]
        if command.message:
            new_messages.append(NewMessage(role="user", content=command.message))
        payload: dict[str, Any] = {"mode": command.mode.value, "agentType": agent_type}
        if time_travel:
            payload["checkpointId"] = base_checkpoint_id
        return await self._begin(
            agent,
            run_id=run_id,
            mode=command.mode.value,
            new_messages=new_messages,
            state=state,
            base_message_id=base_message_id,
            base_checkpoint_id=base_checkpoint_id,
            first_chunk=(chunks.RUN_RESUMED, payload),
            answer_status="resumed",
        )

    async def _retry(self, command: RetryCommand) -> RunInfo:
        await self._require_idle("retry")
        latest = self.store.runs.latest()
        if latest is None or latest.status != RunStatus.FAILED:
            raise InvalidRunStateError(
                "only a failed run can be retried; use resume for an interrupted one",
                status=latest.status if latest else "idle",
            )
        if command.mode is RetryMode.FROM_START:
            base_message_id = latest.start_head_id
            base_state = self.store.checkpoints.get_state(latest.start_state_id)
            base_checkpoint_id = latest.from_checkpoint_id
        else:
            last = self.store.checkpoints.latest(latest.id)
            if last is not None:
                base_message_id, base_checkpoint_id = last.head_message_id, last.id
                base_state = self.store.checkpoints.get_state(last.state_id)
            else:
                # The run failed before its first step completed: its start point is its last good state.
                base_message_id = self.head.message_id
                base_checkpoint_id = self.head.checkpoint_id
                base_state = self.head.state(self.store)
        agent_type = command.agent_type or latest.agent_type
        run_id = new_run_id()
        agent = await self._resolve(agent_type, run_id)
        new_messages = []
        if command.message:
            new_messages.append(NewMessage(role="user", content=command.message))
        payload: dict[str, Any] = {
            "mode": command.mode.value,
            "retry": True,
            "retriedRunId": latest.id,
            "agentType": agent_type,
        }
        if base_checkpoint_id is not None:
            payload["checkpointId"] = base_checkpoint_id
        return await self._begin(
            agent,
            run_id=run_id,
            mode=f"retry_{command.mode.value}",
            new_messages=new_messages,
            state=self._merged_state(agent, base_state, None),
            base_message_id=base_message_id,
            base_checkpoint_id=base_checkpoint_id,
            first_chunk=(chunks.RUN_RESUMED, payload),
            answer_status="resumed",
        )

    async def _stop(self, command: StopCommand) -> RunInfo:
        await self._settle_ended_run()
        active = self.active
        if active is None:
            latest = self.store.runs.latest()
            raise InvalidRunStateError(
                f"nothing is running in this session, so there is nothing to {command.kind}",
                status=latest.status if latest else "idle",
            )
        if active.stop is None:
            active.stop = command
        active.scope.cancel(reason=f"{command.kind}: {command.reason}")
        # Answer once the run has written its end, so the caller can start or resume right away.
        await active.done.wait()
        status = active.terminal.status or RunStatus.INTERRUPTED
        return RunInfo(session_id=self.name, run_id=active.run_id, status=status.value)

    # -- starting a run --------------------------------------------------------------------------

    async def _begin(
        self,
        agent: Agent,
        *,
        run_id: str,
        mode: str,
        new_messages: Sequence[NewMessage],
        state: dict[str, Any] | None,
        base_message_id: int | None,
        base_checkpoint_id: str | None,
        first_chunk: tuple[str, dict[str, Any]],
        answer_status: str,
        metadata: dict[str, Any] | None = None,
    ) -> RunInfo:
        adapter = self.services.adapter_factory(
            self.services.env, LLMAdapterContext(session_id=self.name, agent_type=agent.name, run_id=run_id)
        )
        head = self.head
        first_seq: list[int] = []

        def write(store: SessionStore) -> list[StoredChunk]:
            message_id = base_message_id
            if new_messages:
                message_id = store.messages.append(base_message_id, new_messages)[-1].id
            head.move(store, message_id=message_id, state=state, checkpoint_id=base_checkpoint_id)
            out = store.chunks.append([chunks.draft(run_id, first_chunk[0], **first_chunk[1])])
            # The run's start point includes its input: that is what `retry from_start` goes back to.
            store.runs.create(
                run_id=run_id,
                agent_type=agent.name,
                status=RunStatus.RUNNING,
                mode=mode,
                from_checkpoint_id=base_checkpoint_id,
                start_head_id=head.message_id,
                start_state_id=head.state_id,
                first_seq=out[0].seq,
                metadata=metadata,
            )
            first_seq.append(out[0].seq)
            return out

        try:
            await self.gate.commit(write)
        except BaseException:
            head.load(self.store)
            raise
        conversation = [from_stored(m) for m in self.store.messages.conversation(head.message_id)]
        active = ActiveRun(run_id=run_id, agent_type=agent.name, terminal=RunTerminal(run_id))
        context = RunContext(
            session_id=self.name,
            run_id=run_id,
            agent=agent,
            adapter=adapter,
            gate=self.gate,
            head=head,
            conversation=conversation,
            state=state,
            step_timeout=self.services.step_timeout,
            terminal=active.terminal,
        )
        self.active = active
        self.services.runs_active += 1
        self.spawn(self._drive, active, context, name=f"run {run_id}")
        return RunInfo(
            session_id=self.name,
            run_id=run_id,
            stream_id=run_id,
            status=answer_status,
            first_seq=first_seq[0],
        )

    async def _drive(self, active: ActiveRun, context: RunContext) -> None:
        outcome: Outcome | None = None
        failure: tuple[str, str] | None = None
        try:
            with active.scope:
                outcome = await RunLoop(context).execute()
        except HelixError as exc:
            failure = (exc.code, exc.message)
        except Exception as exc:
            logger.exception("session %r run %s failed", self.name, active.run_id)
            failure = ("internal_error", f"{type(exc).__name__}: {exc}")
        terminal = active.terminal
        try:
            with trio.move_on_after(_TERMINAL_WRITE_GRACE) as guard:
                guard.shield = True
                if not terminal.written:
                    await self._write_end(active, outcome, failure)
        finally:
            self.head.load(self.store)
            self.active = None
            self.services.runs_active -= 1
            active.done.set()
        if self.services.on_run_finished is not None and terminal.status is not None:
            record = self.store.runs.get(active.run_id)
            try:
                await self._report_finished(active, terminal, record)
            except Exception:  # a user's callback must not take the actor down with it
                logger.exception("session %r: on_run_finished raised for run %s", self.name, active.run_id)

    async def _report_finished(self, active: ActiveRun, terminal: RunTerminal, record: Any) -> None:
        assert self.services.on_run_finished is not None and terminal.status is not None
        await self.services.on_run_finished(
            RunFinished(
                session_id=self.name,
                run_id=active.run_id,
                agent_type=active.agent_type,
                status=terminal.status.value,
                output=record.output if record else None,
                error=record.error if record else None,
            )
        )

    async def _write_end(
        self, active: ActiveRun, outcome: Outcome | None, failure: tuple[str, str] | None
    ) -> None:
        terminal = active.terminal
        stop = active.stop
        write: Callable[[SessionStore], list[StoredChunk]]
        if failure is not None:
            code, message = failure
            write = lambda store: terminal.failed(store, code=code, message=message)  # noqa: E731
        elif isinstance(outcome, MaxStepsReached):
            write = lambda store: terminal.interrupted(store, "max_steps")  # noqa: E731
        elif isinstance(outcome, Completed):
            return  # written by the final step's own transaction
        elif stop is not None and stop.kind == "abort":
            blocked = f"the run was aborted: {stop.reason}"
            write = lambda store: terminal.failed(  # noqa: E731
                store, code="aborted", message=stop.reason, blocked_reason=blocked
            )
        else:
            reason = stop.reason if stop is not None else "cancelled"
            write = lambda store: terminal.interrupted(store, reason)  # noqa: E731
        try:
            await self.gate.commit(write)
        except BaseException:
            terminal.rolled_back()
            raise

    # -- helpers ---------------------------------------------------------------------------------

    async def _settle_ended_run(self) -> None:
        """Wait out a run whose end is committed but whose task is still wrapping up. Its terminal chunk
        may already have reached a listener, who may act on it at once (retry, resume, start, interrupt);
        only the run's own bookkeeping is left, and it does not wait on us."""
        active = self.active
        if active is not None and active.terminal.written:
            await active.done.wait()

    async def _require_idle(self, action: str) -> None:
        await self._settle_ended_run()
        if self.active is not None:
            raise InvalidRunStateError(
                f"cannot {action}: run {self.active.run_id} is executing; interrupt or abort it first",
                status=RunStatus.RUNNING,
            )

    async def _resolve(self, agent_type: str, run_id: str) -> Agent:
        ctx = AgentFactoryContext(
            agent_type=agent_type, session_id=self.name, env=self.services.env, run_id=run_id
        )
        return await resolve_agent(self.services.agents, agent_type, ctx)

    def _merged_state(self, agent: Agent, base: Any, changes: dict[str, Any] | None) -> dict[str, Any] | None:
        """The state a run starts from: ``base`` (or the agent's initial state) with ``changes`` merged in,
        validated against the agent's ``state_schema``."""
        current = base if base is not None else agent.dump_state(agent.initial_state())
        merged = {**(current or {}), **(changes or {})}
        if not merged and agent.state_schema is None:
            return None
        try:
            return agent.dump_state(agent.validate_state(merged))
        except pydantic.ValidationError as exc:
            raise InvalidRequestError(
                f"the state does not match {agent.name}'s state schema",
                details=exc.errors(include_url=False, include_context=False),
            ) from exc

    # -- reads -----------------------------------------------------------------------------------

    def status(self) -> SessionStatus:
        latest = self.store.runs.latest()
        if latest is None:
            return SessionStatus(session_id=self.name, status=RunStatus.IDLE.value, can_resume=False)
        # A run whose end is committed has ended for every reader, though its task may still be wrapping up.
        executing = self.active is not None and not self.active.terminal.written
        can_resume = not executing and latest.resumable
        blocked: str | None = None
        if executing:
            blocked = "a run is executing"
        elif not latest.resumable:
            blocked = latest.resume_blocked_reason or "the latest run cannot be resumed"
        return SessionStatus(
            session_id=self.name,
            run_id=latest.id,
            agent_type=latest.agent_type,
            status=latest.status,
            output=latest.output,
            error=latest.error,
            step_count=self.store.checkpoints.count(latest.id),
            checkpoint_id=self.head.checkpoint_id,
            is_executing=executing,
            can_resume=can_resume,
            resume_blocked_reason=blocked,
        )

    def conversation(self, checkpoint_id: str | None = None) -> list[Message]:
        """The messages at the head, or at ``checkpoint_id`` (raises :class:`CheckpointNotFoundError`)."""
        head_id = self.head.message_id
        if checkpoint_id is not None:
            checkpoint = self.store.checkpoints.get(checkpoint_id)
            if checkpoint is None:
                raise CheckpointNotFoundError(checkpoint_id)
            head_id = checkpoint.head_message_id
        return [from_stored(m) for m in self.store.messages.conversation(head_id)]

    def state(self) -> Any:
        return self.head.state(self.store)


def _new_message(message: InputMessage) -> NewMessage:
    return NewMessage(role=message.role, content=message.content, tool_call_id=message.tool_call_id)
