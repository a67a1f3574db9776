"""Store errors. Each names the file it is about, so an operator knows which session to look at.

    StoreError
    ├── SessionLockedError       another process (or another open handle) owns the file
    ├── StoreFileError           the file is not a SQLite database, or is unreadable
    └── SchemaTooNewError        the file was written by a newer schema than this code knows
"""

from __future__ import annotations

from pathlib import Path


class StoreError(Exception):
    """Root of every error raised by ``stores``."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


class SessionLockedError(StoreError):
    """The session file is owned by another writer; only one may have it open at a time."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"session file {path} is locked by another writer (another process, or another open "
            "SessionStore in this one); stop that writer or route the session to it",
            path=path,
        )


class StoreFileError(StoreError):
    """The file exists but is not a usable SQLite database."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot open session file {path}: {reason}", path=path)
        self.reason = reason


class SchemaTooNewError(StoreError):
    """The file's ``user_version`` is newer than the newest schema this code can migrate to."""

    def __init__(self, path: Path, found: int, supported: int) -> None:
        super().__init__(
            f"session file {path} has schema version {found}, newer than the supported {supported}; "
            "upgrade helix-agents to read it",
            path=path,
        )
        self.found = found
        self.supported = supported
