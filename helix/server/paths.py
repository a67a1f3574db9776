"""Session paths: ``/sessions/{sessionId}/{route}`` read from the raw request target.

The ASGI ``path`` is already percent-decoded, so ``/sessions/a%2Fb/status`` would look like four segments.
The session id is therefore cut from ``raw_path`` (one raw segment) and then decoded: a session id may
hold any printable character, ``/`` included, when the client percent-encodes it. Percent-escapes that are
not UTF-8 are a 400. The id is opaque: it never becomes a file path (only its sha256 does).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, unquote_to_bytes, urlsplit

from ..errors import InvalidRequestError

PREFIX = "/sessions/"


@dataclass(frozen=True, kw_only=True)
class SessionPath:
    session_id: str
    """Decoded, not yet validated (see :func:`helix.runtime.check_session_id`)."""
    route: str
    """The decoded rest of the path after the session id: ``"status"``, ``"my-endpoint"``, ``""``..."""


def raw_target(scope: Mapping[str, Any]) -> str:
    """The request path as sent (percent-escapes kept), without the mount prefix (``root_path``)."""
    raw = scope.get("raw_path")
    text = raw.decode("latin-1") if isinstance(raw, bytes | bytearray) else quote(str(scope.get("path", "")))
    if not text.startswith("/"):
        text = urlsplit(text).path or "/"
    root = str(scope.get("root_path") or "")
    if root:
        text = _strip_root(text, root)
    return text


def _strip_root(text: str, root: str) -> str:
    root = root.rstrip("/")
    if not root:
        return text
    ends = [i for i, ch in enumerate(text) if ch == "/"] + [len(text)]
    for end in ends:
        if unquote(text[:end]) == root:
            return text[end:] or "/"
    return text


def session_path(scope: Mapping[str, Any]) -> SessionPath | None:
    """The session id and route of a ``/sessions/...`` request, ``None`` for any other path."""
    text = raw_target(scope)
    if not text.startswith(PREFIX):
        return None
    segment, _, rest = text[len(PREFIX) :].partition("/")
    try:
        session_id = unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestError("the session id in the path is not valid percent-encoded UTF-8") from None
    return SessionPath(session_id=session_id, route=unquote(rest))
