"""Where a session's file lives. A session id never becomes a path by itself: only its sha256 does."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

_HEX_ID = re.compile(r"[0-9a-f]{64}")


def id_for_name(name: str) -> str:
    """The storage id of a name: ``sha256(name.encode("utf-8")).hexdigest()`` (lowercase hex)."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


def file_for_id(data_dir: Path, storage_id: str) -> Path:
    """``<data_dir>/<id[:2]>/<id>.sqlite3``. Raises ``ValueError`` for anything but 64 lowercase hex digits,
    so no caller can smuggle a path through an id."""
    if not _HEX_ID.fullmatch(storage_id):
        raise ValueError(f"storage id must be 64 lowercase hex digits, got {storage_id!r}")
    return Path(data_dir) / storage_id[:2] / f"{storage_id}.sqlite3"


def file_for_name(data_dir: Path, name: str) -> Path:
    """The file of the session called ``name``."""
    return file_for_id(data_dir, id_for_name(name))


def ids_on_disk(data_dir: Path) -> list[str]:
    """Storage ids of every session file under ``data_dir``."""
    root = Path(data_dir)
    if not root.is_dir():
        return []
    return sorted(p.stem for p in root.glob("??/*.sqlite3") if _HEX_ID.fullmatch(p.stem))
