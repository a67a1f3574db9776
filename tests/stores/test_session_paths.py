"""A session's file comes from sha256 of its name; no name can reach outside the data dir."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from stores import SessionStore, file_for_id, file_for_name, id_for_name, ids_on_disk

DATA_DIR = Path("/srv/helix/data")


def test_file_for_name_is_data_dir_then_first_two_hex_digits_then_sha256() -> None:
    digest = hashlib.sha256(b"user-42/chat").hexdigest()
    assert id_for_name("user-42/chat") == digest
    assert file_for_name(DATA_DIR, "user-42/chat") == DATA_DIR / digest[:2] / f"{digest}.sqlite3"


@settings(max_examples=300)
@given(name=st.text())
@example(name="../../etc/passwd")
@example(name="/etc/passwd")
@example(name="..")
@example(name="\x00")
@example(name="a\x00b")
@example(name="%2e%2e%2f%2e%2e")
@example(name="..\\..\\windows")
@example(name="x" * 10_000)
@example(name="")
def test_no_session_name_names_a_path_outside_the_data_dir(name: str) -> None:
    path = file_for_name(DATA_DIR, name)
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()
    assert path.parent.parent == DATA_DIR
    assert path.resolve().is_relative_to(DATA_DIR.resolve())
    assert path.relative_to(DATA_DIR).parts == (digest[:2], f"{digest}.sqlite3")


@given(name=st.text(alphabet=st.characters(categories=["Cs"]), min_size=1))
def test_name_that_is_not_valid_unicode_text_is_rejected_with_value_error(name: str) -> None:
    with pytest.raises(ValueError):
        file_for_name(DATA_DIR, name)


@given(storage_id=st.text().filter(lambda s: not re.fullmatch(r"[0-9a-f]{64}", s)))
@example(storage_id="A" * 64)
@example(storage_id="a" * 63)
@example(storage_id="a" * 65)
@example(storage_id="a" * 64 + "\n")
@example(storage_id="../" + "a" * 61)
@example(storage_id="a" * 62 + "/.")
def test_file_for_id_rejects_anything_but_64_lowercase_hex_digits(storage_id: str) -> None:
    with pytest.raises(ValueError, match="64 lowercase hex"):
        file_for_id(DATA_DIR, storage_id)


def test_ids_on_disk_lists_the_ids_of_the_session_files_and_nothing_else(tmp_path: Path) -> None:
    names = ["alpha", "beta", "../gamma"]
    for name in names:
        SessionStore.open(file_for_name(tmp_path, name)).close()
    (tmp_path / "zz").mkdir()
    (tmp_path / "zz" / "not-an-id.sqlite3").write_text("stray")
    (tmp_path / "README.txt").write_text("stray")

    assert ids_on_disk(tmp_path) == sorted(id_for_name(name) for name in names)
    assert ids_on_disk(tmp_path / "missing") == []
