"""Actor runtime errors. Each keeps the facts a caller needs as attributes and says what to do next.

    ActorError
    ├── DirectoryClosedError     the directory is shutting down or closed; it takes no new work
    ├── ActorStoppedError        the actor stopped before it handled the message (or spawned the task)
    └── GateClosedError          a write reached the output gate of an actor that has stopped

Errors from the store pass through unchanged: activating an actor whose file another process owns raises
``stores.SessionLockedError`` to every caller waiting for that activation. An exception raised by a
message handler reaches the caller of ``call()`` as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar


class ActorError(Exception):
    """Root of every error the actor runtime raises on purpose."""

    code: ClassVar[str] = "actor_error"


class DirectoryClosedError(ActorError):
    """The directory is shutting down (or has shut down) and accepts no new messages or activations."""

    code = "directory_closed"

    def __init__(self) -> None:
        super().__init__(
            "the actor directory is shutting down or closed and accepts no new work; "
            "send the request to a running directory"
        )


class ActorStoppedError(ActorError):
    """The actor stopped (for ``reason``) before it handled this message; nothing of it was applied."""

    code = "actor_stopped"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(
            f"actor {name!r} stopped ({reason}) before it handled the request; nothing of it was applied, "
            "so it is safe to send again once the directory is running"
        )
        self.name = name
        self.reason = reason


class GateClosedError(ActorError):
    """The output gate's actor has stopped; its store is closed, so the write cannot be made."""

    code = "gate_closed"

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"the output gate of {path} is closed because its actor stopped; get the actor from the "
            "directory again and write through its new gate"
        )
        self.path = path
