"""Per-session SQLite storage: one file per session holding its state, messages, checkpoints, chunk
stream, runs and usage. Imports no other project package."""

from .checkpoints import Checkpoint, new_checkpoint_id
from .chunks import ChunkDraft, StoredChunk
from .errors import SchemaTooNewError, SessionLockedError, StoreError, StoreFileError
from .messages import NewMessage, StoredMessage
from .paths import file_for_id, file_for_name, id_for_name, ids_on_disk
from .runs import RunRecord
from .schema import SCHEMA_VERSION
from .session_store import SessionStore
from .usage import UsageEntry, UsageRollup, UsageTotals

__all__ = [
    "SCHEMA_VERSION",
    "Checkpoint",
    "ChunkDraft",
    "NewMessage",
    "RunRecord",
    "SchemaTooNewError",
    "SessionLockedError",
    "SessionStore",
    "StoreError",
    "StoreFileError",
    "StoredChunk",
    "StoredMessage",
    "UsageEntry",
    "UsageRollup",
    "UsageTotals",
    "file_for_id",
    "file_for_name",
    "id_for_name",
    "ids_on_disk",
    "new_checkpoint_id",
]
