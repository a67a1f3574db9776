"""Where a session's conversation stands: its head message, its state and its latest checkpoint.

The head is kept in the session file's ``meta`` table and mirrored in memory by the session actor. A
checkpoint stores only the head message id and a state id (states are deduplicated), never the
conversation.
"""

from __future__ import annotations

import json
from typing import Any

from stores import Checkpoint, SessionStore

_HEAD = "head"  # one meta row, {"message", "state", "checkpoint"}: one write per step, not three


class SessionHead:
    def __init__(self) -> None:
        self.message_id: int | None = None
        self.state_id: int | None = None
        self.checkpoint_id: str | None = None

    def load(self, store: SessionStore) -> None:
        """Re-read the head from the file (at activation, and after a failed commit)."""
        stored = store.get_meta(_HEAD)
        head = {} if stored is None else json.loads(stored)
        self.message_id = head.get("message")
        self.state_id = head.get("state")
        self.checkpoint_id = head.get("checkpoint")

    def state(self, store: SessionStore) -> Any:
        return store.checkpoints.get_state(self.state_id)

    def move(
        self,
        store: SessionStore,
        *,
        message_id: int | None,
        state: Any,
        checkpoint_id: str | None,
    ) -> None:
        """Point the head somewhere (a new message, a restored checkpoint). Call inside a transaction."""
        state_id = None if state is None else store.checkpoints.put_state(state)
        self._set(store, message_id, state_id, checkpoint_id)

    def _set(
        self, store: SessionStore, message_id: int | None, state_id: int | None, checkpoint_id: str | None
    ) -> None:
        self.message_id = message_id
        self.state_id = state_id
        self.checkpoint_id = checkpoint_id
        store.set_meta(
            _HEAD, json.dumps({"message": message_id, "state": state_id, "checkpoint": checkpoint_id})
        )

    def advance(
        self,
        store: SessionStore,
        *,
        run_id: str,
        step: int,
        message_id: int,
        state: Any,
        status: str,
    ) -> Checkpoint:
        """Write the checkpoint of a completed step and move the head to it. Call inside a transaction."""
        state_id = None if state is None else store.checkpoints.put_state(state)
        checkpoint = store.checkpoints.add(
            run_id=run_id,
            step=step,
            parent_id=self.checkpoint_id,
            head_message_id=message_id,
            state_id=state_id,
            status=status,
        )
        self._set(store, message_id, state_id, checkpoint.id)
        return checkpoint
