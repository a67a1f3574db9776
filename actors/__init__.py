"""The generic actor runtime: one single-threaded actor per id, activation, hibernation, alarms.

Knows nothing of agents. ``helix`` subclasses :class:`Actor` and opens a directory with
:func:`open_directory`; everything else here is the machinery behind those two.
"""

from .actor import Actor, ActorContext
from .config import ActorLimits
from .directory import ActorDirectory, open_directory
from .errors import ActorError, ActorStoppedError, DirectoryClosedError, GateClosedError
from .gate import OutputGate, TransactionHeldError
from .ids import ActorId, id_from_name
from .stats import DirectoryStatistics, GateStatistics

__all__ = [
    "Actor",
    "ActorContext",
    "ActorDirectory",
    "ActorError",
    "ActorId",
    "ActorLimits",
    "ActorStoppedError",
    "DirectoryClosedError",
    "DirectoryStatistics",
    "GateClosedError",
    "GateStatistics",
    "OutputGate",
    "TransactionHeldError",
    "id_from_name",
    "open_directory",
]
