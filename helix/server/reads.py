"""The read routes: status, history, messages, checkpoints, usage, snapshot. Reads of a session that does
not exist answer as for an empty, idle session and create nothing."""

from __future__ import annotations

from ..runtime import HISTORY_PAGE_LIMIT
from . import wire
from .call import Answer, SessionCall
from .requests import parse_count, query_value


async def status(call: SessionCall) -> Answer:
    return Answer(body=(await call.services.runtime.status(call.session_id)).to_wire())


async def history(call: SessionCall) -> Answer:
    from_seq = parse_count(query_value(call.args, "fromSeq"), "fromSeq", default=1)
    limit = parse_count(query_value(call.args, "limit"), "limit", default=HISTORY_PAGE_LIMIT, minimum=1)
    page = await call.services.runtime.history(call.session_id, from_seq=from_seq, limit=limit)
    return (
        Answer(body=None, text=wire.history_text(page))
        if _untransformed(call)
        else Answer(body=wire.history(page))
    )


def _untransformed(call: SessionCall) -> bool:
    return call.services.hooks.transform_response is None


async def messages(call: SessionCall) -> Answer:
    checkpoint_id = query_value(call.args, "checkpointId")
    found = await call.services.runtime.messages(call.session_id, checkpoint_id=checkpoint_id)
    return Answer(body=wire.messages(found))


async def checkpoints(call: SessionCall) -> Answer:
    return Answer(body=wire.checkpoints(await call.services.runtime.checkpoints(call.session_id)))


async def usage(call: SessionCall) -> Answer:
    entries, rollup = await call.services.runtime.usage(call.session_id)
    return Answer(body=wire.usage(entries, rollup))


async def snapshot(call: SessionCall) -> Answer:
    return Answer(body=wire.snapshot(await call.services.runtime.snapshot(call.session_id)))
