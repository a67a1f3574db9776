"""The in-process execution handle: one run of one session, without HTTP.

:class:`helix.client.AgentExecutionHandle` offers the same methods over HTTP and WebSocket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from stores import Checkpoint

from . import chunks as chunk_types
from .errors import InvalidRunStateError
from .status import RunInfo

if TYPE_CHECKING:
    from .commands import InputMessage
    from .runtime import AgentRuntime


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """How a run ended: ``status`` is ``completed``, ``failed`` or ``interrupted``."""

    run_id: str
    status: str
    output: Any = None
    error: dict[str, Any] | None = None
    reason: str | None = None

    @classmethod
    def from_terminal_chunk(cls, chunk: dict[str, Any]) -> RunResult:
        """What a run's terminal chunk (``run_completed`` / ``run_failed`` / ``run_interrupted``) says."""
        return cls(
            run_id=chunk["runId"],
            status=_FINAL_STATUS[chunk["type"]],
            output=chunk.get("output"),
            error=chunk.get("error"),
            reason=chunk.get("reason"),
        )


_FINAL_STATUS = {
    chunk_types.RUN_COMPLETED: "completed",
    chunk_types.RUN_FAILED: "failed",
    chunk_types.RUN_INTERRUPTED: "interrupted",
}


class AgentExecutionHandle:
    """A run of a session, in this process."""

    def __init__(self, runtime: AgentRuntime, info: RunInfo) -> None:
        self._runtime = runtime
        self.info = info
        self.session_id = info.session_id
        self.run_id = info.run_id
        self.stream_id = info.stream_id or info.run_id

    async def stream(self, from_seq: int | None = None) -> AsyncIterator[dict[str, Any]]:
        """The session's chunks from ``from_seq`` (default: this run's first chunk), ending after this
        run's terminal chunk."""
        start = from_seq if from_seq is not None else await self._first_seq()
        async with self._runtime.subscribe(self.session_id, from_seq=start) as stored_chunks:
            async for stored in stored_chunks:
                yield stored.as_dict()
                if stored.run_id == self.run_id and stored.type in chunk_types.TERMINAL_TYPES:
                    return

    async def result(self) -> RunResult:
        """Wait for this run's end: its terminal chunk is committed, and from then on the session counts the
        run as over (``status()``, and ``resume()`` or ``retry()`` right after)."""
        start = await self._first_seq()
        async with self._runtime.subscribe(self.session_id, from_seq=start) as stored_chunks:
            async for stored in stored_chunks:
                if stored.run_id == self.run_id and stored.type in chunk_types.TERMINAL_TYPES:
                    return RunResult.from_terminal_chunk(stored.as_dict())
        raise RuntimeError("the stream ended before the run did")  # pragma: no cover - streams never end

    async def _first_seq(self) -> int:
        """Where this run's chunks start; a handle made by ``get_handle(session_id)`` binds to the session's
        latest run here, on first use."""
        if self.info.first_seq is None:
            record = await self._runtime.run_record(self.session_id, self.run_id or None)
            if record is None:
                raise InvalidRunStateError("this session has no run yet; start one", status="idle")
            self.info = replace(self.info, run_id=record.id, first_seq=record.first_seq)
            self.run_id = record.id
        return self.info.first_seq or 1

    async def interrupt(self, reason: str = "user_requested") -> RunInfo:
        return await self._runtime.interrupt(self.session_id, reason)

    async def abort(self, reason: str = "aborted") -> RunInfo:
        return await self._runtime.abort(self.session_id, reason)

    async def can_resume(self) -> tuple[bool, str | None]:
        """``(True, None)`` or ``(False, why)``."""
        status = await self._runtime.status(self.session_id)
        return status.can_resume, status.resume_blocked_reason

    async def resume(
        self,
        *,
        mode: str = "continue",
        checkpoint_id: str | None = None,
        message: str | None = None,
        modify_state: dict[str, Any] | None = None,
        append_messages: Sequence[InputMessage] = (),
        agent_type: str | None = None,
    ) -> AgentExecutionHandle:
        if message is not None and mode == "continue":
            mode = "with_message"
        return await self._runtime.resume(
            self.session_id,
            agent_type=agent_type,
            mode=mode,
            checkpoint_id=checkpoint_id,
            message=message,
            modify_state=modify_state,
            append_messages=append_messages,
        )

    async def retry(
        self, *, mode: str = "from_checkpoint", message: str | None = None
    ) -> AgentExecutionHandle:
        return await self._runtime.retry(self.session_id, mode=mode, message=message)

    async def send(self, message: str, *, agent_type: str | None = None) -> AgentExecutionHandle:
        """Continue the conversation with a new user message (a follow-up run)."""
        if agent_type is None:
            agent_type = (await self._runtime.status(self.session_id)).agent_type
        if agent_type is None:
            raise ValueError("this session has no run yet; pass agent_type")
        return await self._runtime.start(self.session_id, agent_type=agent_type, message=message)

    async def get_state(self) -> Any:
        return await self._runtime.state(self.session_id)

    async def checkpoints(self) -> list[Checkpoint]:
        return await self._runtime.checkpoints(self.session_id)
