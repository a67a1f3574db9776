"""Actor addresses. An id is derived from a name exactly as a session file's storage id is, so the actor
for a name and the file it owns can never disagree."""

from __future__ import annotations

from typing import NewType

from stores import id_for_name

ActorId = NewType("ActorId", str)
"""``sha256(name.encode("utf-8")).hexdigest()``: 64 lowercase hex digits, like a Durable Object id."""


def id_from_name(name: str) -> ActorId:
    """The id of the actor called ``name`` (equal to ``stores.id_for_name(name)``).

    Raises ``UnicodeEncodeError`` (a ``ValueError``) for a name that is not valid Unicode text (a lone
    surrogate), because it has no UTF-8 form to hash.
    """
    return ActorId(id_for_name(name))
