"""Conversions between the engine's :class:`~helix.llm.Message` and the store's message rows."""

from __future__ import annotations

from stores import NewMessage, StoredMessage

from .llm import Message, ToolCall


def to_new_message(message: Message) -> NewMessage:
    return NewMessage(
        role=message.role,
        content=message.content,
        tool_calls=[{"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls],
        tool_call_id=message.tool_call_id,
    )


def from_stored(stored: StoredMessage) -> Message:
    return Message(
        id=str(stored.id),
        role=stored.role,  # type: ignore[arg-type]  # the store only holds roles we wrote
        content=stored.content,
        tool_calls=tuple(
            ToolCall(id=c["id"], name=c["name"], arguments=c["arguments"]) for c in stored.tool_calls
        ),
        tool_call_id=stored.tool_call_id,
    )
