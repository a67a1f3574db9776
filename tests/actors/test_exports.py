"""The actor runtime's public names are a contract: they change only on purpose."""

from __future__ import annotations

import dataclasses

import pytest

import actors

EXPECTED_API = [
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


def test_public_api_is_exactly_the_pinned_list() -> None:
    assert sorted(actors.__all__) == EXPECTED_API
    assert all(hasattr(actors, name) for name in actors.__all__)


def test_limits_are_frozen_keyword_only_and_validated() -> None:
    limits = actors.ActorLimits(idle_timeout=5.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.idle_timeout = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        actors.ActorLimits(5.0)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="alarm_retry"):
        actors.ActorLimits(alarm_retry_initial=10.0, alarm_retry_max=1.0)
    assert dataclasses.replace(limits, max_live_actors=3).max_live_actors == 3
