"""Large values go in and come back intact."""

from __future__ import annotations

from stores import ChunkDraft, NewMessage, SessionStore

FIVE_MB = 5 * 1024 * 1024


def big_text(seed: str) -> str:
    pattern = f'{seed}: héllo wörld ✓ 数据 🚀 \x00 "quoted" \\ '
    text = (pattern * (FIVE_MB // len(pattern.encode()) + 1))[: FIVE_MB // 2]
    return text + text[::-1]  # not one repeated block: a truncation or reordering would show


def test_five_mb_message_state_and_chunk_are_stored_and_read_back_intact(store: SessionStore) -> None:
    content, note, delta = big_text("message"), big_text("state"), big_text("chunk")
    assert min(len(s.encode()) for s in (content, note, delta)) >= FIVE_MB

    with store.transaction():
        (message,) = store.messages.append(None, [NewMessage(role="user", content=content)])
        state_id = store.checkpoints.put_state({"note": note})
        (chunk,) = store.chunks.append(
            [ChunkDraft(run_id="run", type="text_delta", ts=1.0, payload={"delta": delta})]
        )

    store.close()
    reopened = SessionStore.open(store.path)
    try:
        assert reopened.messages.conversation(message.id)[0].content == content
        assert reopened.checkpoints.get_state(state_id) == {"note": note}
        assert reopened.chunks.read(chunk.seq)[0].as_dict()["delta"] == delta
        assert reopened.chunks.read(chunk.seq)[0].json == chunk.json
    finally:
        reopened.close()
