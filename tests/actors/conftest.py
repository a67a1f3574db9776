from __future__ import annotations

from pathlib import Path

import pytest

from .support import Journal


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def journal() -> Journal:
    return Journal()
