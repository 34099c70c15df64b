"""Reading a file a user names: capped, and only a regular file where one is wanted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from swarmboot.files import FileTooLarge, NotAFile, read_capped


def test_a_small_file_is_read_whole(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 10)
    assert read_capped(tmp_path / "a", 10) == b"x" * 10


def test_a_file_past_the_cap_is_refused_unread(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 11)
    with pytest.raises(FileTooLarge):
        read_capped(tmp_path / "a", 10)


@pytest.mark.parametrize("regular_only", [True, False])
def test_dev_zero_is_never_read_forever(regular_only):
    with pytest.raises(NotAFile if regular_only else FileTooLarge):
        read_capped(Path("/dev/zero"), 1024, regular_only=regular_only)


def test_a_fifo_without_a_writer_does_not_block(tmp_path):
    os.mkfifo(tmp_path / "f")
    with pytest.raises(NotAFile) as info:
        read_capped(tmp_path / "f", 1024)
    assert info.value.kind == "a FIFO"


def test_a_pipe_is_read_where_one_may_be():
    # As `plan <(envsubst < spec.toml)` gives it: /dev/fd/N of a pipe.
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"name = 1\n")
        os.close(write_end)
        assert read_capped(Path(f"/dev/fd/{read_end}"), 1024, regular_only=False) == b"name = 1\n"
    finally:
        os.close(read_end)


def test_a_directory_is_never_read(tmp_path):
    for regular_only in (True, False):
        with pytest.raises(NotAFile) as info:
            read_capped(tmp_path, 1024, regular_only=regular_only)
        assert info.value.kind == "a directory"


def test_a_missing_file_is_the_systems_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_capped(tmp_path / "missing", 10)
