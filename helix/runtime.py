"""The in-process runtime: session actors on an actor directory, plus the reads and streams around them.

:class:`AgentRuntime` is what ``create_agent_server`` serves over HTTP, and what a Python program embeds
without HTTP::

    async with AgentRuntime(llm_adapter=factory, agents=registry, data_dir="./.helix") as runtime:
        handle = await runtime.start("session-1", agent_type="support", message="Where is my order?")
        async for chunk in handle.stream():
            print(chunk["type"])
        print(await handle.result())
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, aclosing, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from actors import ActorContext, ActorDirectory, ActorLimits, open_directory
from stores import Checkpoint, RunRecord, StoredChunk, UsageEntry, UsageRollup, file_for_name

from .commands import InputMessage, ResumeCommand, RetryCommand, StartCommand, StopCommand
from .errors import AgentNotFoundError, CheckpointNotFoundError, InvalidRequestError, InvalidRunStateError
from .feed import ChunkHub
from .handle import AgentExecutionHandle
from .llm import AdapterFactory, Message
from .registry import AgentRegistry, AgentResolver
from .session_actor import RunFinished, SessionActor, SessionServices
from .status import ResumeMode, RetryMode, RunInfo, RunStatus, SessionStatus

MAX_SESSION_ID_LENGTH = 256
HISTORY_PAGE_LIMIT = 1000


def check_session_id(session_id: str) -> str:
    """Accept 1-256 printable characters (any script; no control characters); raise
    :class:`InvalidRequestError` otherwise. The id is opaque: only its sha256 ever names a file."""
    # str.isprintable() is exactly that rule: false for control and separator characters except the
    # ASCII space, true for every other character of any script.
    if not (1 <= len(session_id) <= MAX_SESSION_ID_LENGTH) or not session_id.isprintable():
        raise InvalidRequestError(
            "a session id is 1-256 printable characters", details={"length": len(session_id)}
        )
    return session_id


@dataclass(frozen=True, kw_only=True)
class HistoryPage:
    chunks: list[StoredChunk]
    next_seq: int
    has_more: bool


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    status: SessionStatus
    messages: list[Message]
    state: Any
    last_seq: int
    pending_tool_calls: list[dict[str, Any]]


class AgentRuntime:
    """Session actors for one data directory. Use as an async context manager (or :meth:`serve` in a
    nursery); every method needs the runtime open."""

    def __init__(
        self,
        *,
        llm_adapter: AdapterFactory,
        agents: AgentRegistry | AgentResolver,
        env: Any = None,
        data_dir: str | Path = "./.helix",
        idle_timeout: float = 60.0,
        max_live_actors: int = 10_000,
        step_timeout: float = 300.0,
        on_run_finished: Callable[[RunFinished], Awaitable[None]] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.hub = ChunkHub()
        self.limits = ActorLimits(idle_timeout=idle_timeout, max_live_actors=max_live_actors)
        self.services = SessionServices(
            agents=agents,
            adapter_factory=llm_adapter,
            env=env,
            step_timeout=step_timeout,
            publish=self.hub.publish,
            on_run_finished=on_run_finished,
        )
        self._directory: ActorDirectory | None = None
        self._stack: AsyncExitStack | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> AgentRuntime:
        stack = AsyncExitStack()
        self._directory = await stack.enter_async_context(
            open_directory(data_dir=self.data_dir, actor_factory=self._new_actor, limits=self.limits)
        )
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._stack = self._stack, None
        try:
            if stack is not None:
                await stack.aclose()
        finally:
            self._directory = None

    def _new_actor(self, ctx: ActorContext) -> SessionActor:
        return SessionActor(ctx, self.services)

    @property
    def directory(self) -> ActorDirectory:
        if self._directory is None:
            raise RuntimeError("the runtime is not open; use `async with AgentRuntime(...)`")
        return self._directory

    async def _actor(self, session_id: str) -> SessionActor:
        actor = await self.directory.get(check_session_id(session_id))
        assert isinstance(actor, SessionActor)
        return actor

    async def _existing(self, session_id: str) -> SessionActor | None:
        """The session's actor if the session exists (or its actor is being activated, say by a listener
        that just attached: then once it is live); reads of unknown sessions create no file."""
        check_session_id(session_id)
        directory = self.directory
        if (
            directory.is_live(session_id)
            or directory.is_activating(session_id)
            or file_for_name(self.data_dir, session_id).exists()
        ):
            return await self._actor(session_id)
        return None

    # -- commands --------------------------------------------------------------------------------

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
        """Start a run (a follow-up start continues the conversation). Raises
        :class:`~helix.errors.InvalidRunStateError` while a run is executing,
        :class:`~helix.errors.AgentNotFoundError` for an unknown agent type."""
        command = StartCommand(
            agent_type=agent_type, message=message, state=state, messages=tuple(messages), metadata=metadata
        )
        agents = self.services.agents
        if isinstance(agents, AgentRegistry) and not agents.has(agent_type):
            # Refuse before activating: a refused start must not leave a new session file behind.
            raise AgentNotFoundError(agent_type, agents.types())
        return self._handle(await self.directory.call(check_session_id(session_id), command))

    async def resume(
        self,
        session_id: str,
        *,
        agent_type: str | None = None,
        mode: ResumeMode | str = ResumeMode.CONTINUE,
        checkpoint_id: str | None = None,
        modify_state: dict[str, Any] | None = None,
        append_messages: Sequence[InputMessage] = (),
        message: str | None = None,
    ) -> AgentExecutionHandle:
        """Resume: ``continue``, ``with_message``, or time travel (``from_checkpoint`` / ``branch`` with
        ``checkpoint_id``). ``modify_state`` and ``append_messages`` apply to the restored point."""
        await self._require_existing(session_id, "resume")
        command = ResumeCommand(
            agent_type=agent_type,
            mode=ResumeMode(mode),
            checkpoint_id=checkpoint_id,
            modify_state=modify_state,
            append_messages=tuple(append_messages),
            message=message,
        )
        return self._handle(await self.directory.call(check_session_id(session_id), command))

    async def retry(
        self,
        session_id: str,
        *,
        agent_type: str | None = None,
        mode: RetryMode | str = RetryMode.FROM_CHECKPOINT,
        message: str | None = None,
    ) -> AgentExecutionHandle:
        """Re-run a failed run from its last checkpoint or from its start."""
        await self._require_existing(session_id, "retry")
        command = RetryCommand(agent_type=agent_type, mode=RetryMode(mode), message=message)
        return self._handle(await self.directory.call(check_session_id(session_id), command))

    async def interrupt(self, session_id: str, reason: str = "user_requested") -> RunInfo:
        """Soft stop: the run ends ``interrupted`` at its last checkpoint and can be resumed."""
        await self._require_existing(session_id, "interrupt")
        info: RunInfo = await self.directory.call(
            check_session_id(session_id), StopCommand(kind="interrupt", reason=reason)
        )
        return info

    async def abort(self, session_id: str, reason: str = "aborted") -> RunInfo:
        """Hard stop: the run ends ``failed`` and cannot be resumed (retry or time travel still can)."""
        await self._require_existing(session_id, "abort")
        info: RunInfo = await self.directory.call(
            check_session_id(session_id), StopCommand(kind="abort", reason=reason)
        )
        return info

    async def _require_existing(self, session_id: str, action: str) -> None:
        """Commands other than start need a session with a run; refusing them for an unknown session
        without activating it keeps a stream of bad requests from creating session files."""
        if await self._existing(session_id) is None:
            raise InvalidRunStateError(
                f"cannot {action}: session {session_id!r} has no run; start one first", status="idle"
            )

    def _handle(self, info: RunInfo) -> AgentExecutionHandle:
        return AgentExecutionHandle(self, info)

    def get_handle(self, session_id: str, run_id: str | None = None) -> AgentExecutionHandle:
        """A handle on a session (its latest run unless ``run_id`` is given)."""
        info = RunInfo(session_id=check_session_id(session_id), run_id=run_id or "", status="unknown")
        return AgentExecutionHandle(self, info)

    # -- reads -----------------------------------------------------------------------------------

    async def status(self, session_id: str) -> SessionStatus:
        actor = await self._existing(session_id)
        if actor is None:
            return SessionStatus(session_id=session_id, status=RunStatus.IDLE.value)
        return actor.status()

    async def history(
        self, session_id: str, *, from_seq: int = 1, limit: int = HISTORY_PAGE_LIMIT
    ) -> HistoryPage:
        """A page of the stream: ``from_seq`` inclusive; ``next_seq`` is the last returned seq + 1."""
        limit = max(1, min(limit, HISTORY_PAGE_LIMIT))
        from_seq = max(from_seq, 1)
        actor = await self._existing(session_id)
        if actor is None:
            return HistoryPage(chunks=[], next_seq=from_seq, has_more=False)
        page = actor.store.chunks.read(from_seq, limit)
        next_seq = page[-1].seq + 1 if page else from_seq
        return HistoryPage(chunks=page, next_seq=next_seq, has_more=next_seq <= actor.store.chunks.last_seq)

    async def messages(self, session_id: str, *, checkpoint_id: str | None = None) -> list[Message]:
        actor = await self._existing(session_id)
        if actor is None:
            if checkpoint_id is not None:
                raise CheckpointNotFoundError(checkpoint_id)
            return []
        return actor.conversation(checkpoint_id)

    async def run_record(self, session_id: str, run_id: str | None = None) -> RunRecord | None:
        """A run of the session (its latest when ``run_id`` is ``None``), or ``None``."""
        actor = await self._existing(session_id)
        if actor is None:
            return None
        return actor.store.runs.latest() if run_id is None else actor.store.runs.get(run_id)

    async def checkpoints(self, session_id: str) -> list[Checkpoint]:
        actor = await self._existing(session_id)
        return [] if actor is None else actor.store.checkpoints.list()

    async def usage(self, session_id: str) -> tuple[list[UsageEntry], UsageRollup | None]:
        actor = await self._existing(session_id)
        if actor is None:
            return [], None
        return actor.store.usage.entries(), actor.store.usage.rollup()

    async def state(self, session_id: str) -> Any:
        actor = await self._existing(session_id)
        return None if actor is None else actor.state()

    async def snapshot(self, session_id: str) -> Snapshot:
        actor = await self._existing(session_id)
        if actor is None:
            status = SessionStatus(session_id=session_id, status=RunStatus.IDLE.value)
            return Snapshot(status=status, messages=[], state=None, last_seq=0, pending_tool_calls=[])
        messages = actor.conversation()
        answered = {m.tool_call_id for m in messages if m.role == "tool"}
        pending = [
            {"id": call.id, "name": call.name, "arguments": call.arguments}
            for m in messages
            if m.role == "assistant"
            for call in m.tool_calls
            if call.id not in answered
        ]
        return Snapshot(
            status=actor.status(),
            messages=messages,
            state=actor.state(),
            last_seq=actor.store.chunks.last_seq,
            pending_tool_calls=pending,
        )

    # -- streaming -------------------------------------------------------------------------------

    @asynccontextmanager
    async def subscribe(
        self, session_id: str, *, from_seq: int = 1
    ) -> AsyncIterator[AsyncIterator[StoredChunk]]:
        """Every chunk from ``from_seq`` (inclusive) on: the stored ones, then live ones as they commit,
        each exactly once and in order. The session counts as having an attached client meanwhile."""
        async with self.subscribe_batches(session_id, from_seq=from_seq) as batches:

            async def chunks() -> AsyncGenerator[StoredChunk, None]:
                async for batch in batches:
                    for stored in batch:
                        yield stored

            stream = chunks()
            async with aclosing(stream):
                yield stream

    @asynccontextmanager
    async def subscribe_batches(
        self, session_id: str, *, from_seq: int = 1
    ) -> AsyncIterator[AsyncIterator[list[StoredChunk]]]:
        """:meth:`subscribe` in groups: each item is every chunk available at that moment (up to a page,
        never empty), so a consumer that pays per wake-up — a socket send lock, a timeout — pays it once
        per group instead of once per chunk."""
        check_session_id(session_id)
        with self.directory.attach(session_id), self.hub.listen(session_id) as feed:

            async def batches() -> AsyncGenerator[list[StoredChunk], None]:
                next_seq = max(from_seq, 1)
                while True:
                    batch = feed.recent(next_seq, HISTORY_PAGE_LIMIT)
                    if batch is None:
                        batch = (await self._actor(session_id)).store.chunks.read(
                            next_seq, HISTORY_PAGE_LIMIT
                        )
                    if not batch:
                        await feed.wait_past(next_seq)
                        continue
                    yield batch
                    next_seq = batch[-1].seq + 1

            stream = batches()
            async with aclosing(stream):
                yield stream

    # -- observability ---------------------------------------------------------------------------

    @property
    def runs_active(self) -> int:
        """Runs executing now, across every session of this runtime."""
        return self.services.runs_active

    async def wait_idle(self, session_id: str) -> None:
        """Wait until the session has no executing run (for embedding and tests)."""
        actor = await self._actor(session_id)
        while actor.active is not None:
            await actor.active.done.wait()
            await trio.lowlevel.checkpoint()
