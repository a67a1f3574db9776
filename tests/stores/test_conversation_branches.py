"""Reading the conversation at any checkpoint gives exactly the messages current when it was written."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from stores import Checkpoint, NewMessage, SessionStore, StoredMessage

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    json_scalars | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
# A small pool makes "the state did not change" common, so the state table's dedup is exercised too.
states = st.sampled_from([{}, {"count": 1}, {"notes": ["a", "b"]}]) | st.dictionaries(
    st.text(max_size=8), json_values, max_size=4
)
tool_calls = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.text(min_size=1, max_size=10),
            "name": st.text(min_size=1, max_size=10),
            "arguments": st.dictionaries(st.text(max_size=8), json_values, max_size=3),
        }
    ),
    max_size=2,
)
new_messages = st.one_of(
    st.builds(NewMessage, role=st.sampled_from(["user", "assistant"]), content=st.text()),
    st.builds(NewMessage, role=st.just("assistant"), content=st.text(max_size=50), tool_calls=tool_calls),
    st.builds(
        NewMessage, role=st.just("tool"), content=st.text(), tool_call_id=st.text(min_size=1, max_size=10)
    ),
)


class ConversationBranches(RuleBasedStateMachine):
    """Model: the current branch is a list of the messages on it; each checkpoint remembers the list and the
    state it was written with. Forking sets the current branch to a checkpoint's list."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp())
        self.path = self.directory / "session.sqlite3"
        self.store = SessionStore.open(self.path)
        self.branch: list[StoredMessage] = []
        self.written: list[tuple[Checkpoint, list[StoredMessage], Any]] = []

    @property
    def head(self) -> int | None:
        return self.branch[-1].id if self.branch else None

    @rule(messages=st.lists(new_messages, min_size=1, max_size=3))
    def append(self, messages: list[NewMessage]) -> None:
        with self.store.transaction():
            stored = self.store.messages.append(self.head, messages)
        assert [(m.role, m.content, m.tool_call_id) for m in stored] == [
            (m.role, m.content, m.tool_call_id) for m in messages
        ]
        assert [list(m.tool_calls) for m in stored] == [list(m.tool_calls) for m in messages]
        self.branch = [*self.branch, *stored]

    @rule(state=states)
    def checkpoint(self, state: Any) -> None:
        with self.store.transaction():
            checkpoint = self.store.checkpoints.add(
                run_id="run",
                step=len(self.written) + 1,
                parent_id=self.written[-1][0].id if self.written else None,
                head_message_id=self.head,
                state_id=self.store.checkpoints.put_state(state),
                status="completed",
            )
        self.written.append((checkpoint, list(self.branch), state))

    @precondition(lambda self: self.written)
    @rule(choice=st.integers(min_value=0))
    def fork_from_earlier_checkpoint(self, choice: int) -> None:
        checkpoint, messages, _ = self.written[choice % len(self.written)]
        assert checkpoint.head_message_id == (messages[-1].id if messages else None)
        self.branch = list(messages)

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = SessionStore.open(self.path)

    @invariant()
    def every_checkpoint_reads_back_its_conversation_and_state(self) -> None:
        for checkpoint, messages, state in self.written:
            assert self.store.checkpoints.get(checkpoint.id) == checkpoint
            assert self.store.messages.conversation(checkpoint.head_message_id) == messages
            assert self.store.checkpoints.get_state(checkpoint.state_id) == state

    @invariant()
    def current_branch_reads_back(self) -> None:
        assert self.store.messages.conversation(self.head) == self.branch

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def test_conversation_at_every_checkpoint_is_what_was_current_when_written_on_every_branch() -> None:
    run_state_machine_as_test(
        ConversationBranches, settings=settings(max_examples=60, stateful_step_count=40, deadline=None)
    )


def test_conversation_of_unknown_or_no_head_is_empty(store: SessionStore) -> None:
    stored = store.messages.append(None, [NewMessage(role="user", content="hi")])
    assert store.messages.conversation(None) == []
    assert store.messages.conversation(stored[-1].id + 1000) == []
    assert store.messages.conversation(stored[-1].id) == stored


def test_branches_share_their_prefix_instead_of_copying_it(store: SessionStore) -> None:
    prefix = store.messages.append(None, [NewMessage(role="user", content=f"m{i}") for i in range(5)])
    left = store.messages.append(prefix[-1].id, [NewMessage(role="assistant", content="left")])
    right = store.messages.append(prefix[2].id, [NewMessage(role="assistant", content="right")])

    assert store.messages.conversation(left[-1].id) == [*prefix, *left]
    assert store.messages.conversation(right[-1].id) == [*prefix[:3], *right]
    assert store._db.execute("SELECT count(*) FROM messages").fetchone()[0] == 7


def test_append_below_unknown_parent_is_refused_and_writes_nothing(store: SessionStore) -> None:
    root = store.messages.append(None, [NewMessage(role="user", content="hi")])
    with pytest.raises(ValueError, match=f"below message {root[-1].id + 1}"):
        store.messages.append(root[-1].id + 1, [NewMessage(role="assistant", content="orphan")])
    assert store._db.execute("SELECT count(*) FROM messages").fetchone()[0] == 1
    assert store.messages.conversation(root[-1].id) == root


def test_messages_read_back_are_the_same_frozen_values_that_append_returned(store: SessionStore) -> None:
    call = {"id": "c1", "name": "lookup", "arguments": {"item": "widget"}}
    appended = store.messages.append(
        None,
        [
            NewMessage(role="user", content="hi"),
            NewMessage(role="assistant", content="", tool_calls=[call]),
            NewMessage(role="tool", content="3 in stock", tool_call_id="c1"),
        ],
    )
    read = store.messages.conversation(appended[-1].id)

    assert read == appended
    assert [vars(m) for m in read] == [vars(m) for m in appended]
    assert {f.name for f in dataclasses.fields(StoredMessage)} == set(vars(read[0]))
    assert hash(read[0]) == hash(appended[0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        read[0].content = "changed"  # type: ignore[misc]


def test_messages_appended_outside_a_transaction_are_one_commit(
    store: SessionStore, commits: list[str]
) -> None:
    store.messages.append(None, [NewMessage(role="user", content=str(i)) for i in range(5)])
    assert len(commits) == 1
