"""Output files: stale temporary files of dead runs, unwritable or missing directories,
outputs that are inputs under another name (hard links, external data)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import onnx_builders as ob  # noqa: E402

from snn2hw import fileio  # noqa: E402
from snn2hw.errors import InputError  # noqa: E402
from snn2hw.fileio import (  # noqa: E402
    atomic_path, check_output_path, stale_temp_files, write_text)


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_temp_file_name_carries_the_pid(tmp_path):
    with atomic_path(tmp_path / "out.json") as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(f".out.json.{os.getpid()}.") and tmp.name.endswith(".tmp")
        tmp.write_text("x")


def test_stale_temp_of_a_dead_process_is_removed_by_the_next_write(tmp_path):
    stale = tmp_path / f".out.json.{dead_pid()}.abc123.tmp"
    stale.write_text("half written")
    (tmp_path / "out.json").write_text("old")
    write_text(tmp_path / "out.json", "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    assert (tmp_path / "out.json").read_text() == "new"


def test_temp_of_a_live_process_is_kept(tmp_path):
    live = tmp_path / f".out.json.{os.getppid()}.abc123.tmp"
    live.write_text("being written by another run")
    write_text(tmp_path / "out.json", "new")
    assert live.read_text() == "being written by another run"


@pytest.mark.parametrize("name", [".out.json.x.{pid}.abc.tmp",  # another target's
                                  ".out.jsonx.{pid}.abc.tmp",
                                  ".out.json.abc.tmp",  # no pid (older snn2hw)
                                  ".out.json.{pid}.abc.tmp.keep",
                                  "out.json.{pid}.abc.tmp"])
def test_other_files_are_never_taken_for_stale_temps(tmp_path, name):
    other = tmp_path / name.format(pid=dead_pid())
    other.write_text("someone else's")
    assert stale_temp_files(tmp_path / "out.json") == []
    write_text(tmp_path / "out.json", "new")
    assert other.read_text() == "someone else's"


def test_pid_check_treats_a_foreign_process_as_alive(monkeypatch):
    def denied(pid, sig):
        raise PermissionError
    monkeypatch.setattr(fileio.os, "kill", denied)
    assert fileio._pid_alive(1)


def test_unwritable_directory_is_refused_by_the_check(tmp_path, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(fileio.os, "access", lambda path, mode: (
        False if Path(path) == tmp_path and mode == os.W_OK else real_access(path, mode)))
    with pytest.raises(InputError, match="is not writable") as info:
        check_output_path(tmp_path / "out.h5")
    assert str(tmp_path) in str(info.value)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root ignores directory permissions")
def test_read_only_directory_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(InputError, match="is not writable"):
            check_output_path(ro / "out.h5")
        with pytest.raises(InputError, match="cannot create a file in"):
            write_text(ro / "out.h5", "x")
    finally:
        ro.chmod(0o755)


def test_failing_temp_file_creation_is_an_input_error(tmp_path, monkeypatch):
    """What a read-only file system or a permission change after the check gives."""
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(fileio.tempfile, "mkstemp", refuse)
    with pytest.raises(InputError, match="cannot create a file in .*Permission denied"):
        write_text(tmp_path / "out.json", "x")
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_is_refused(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        check_output_path(tmp_path / "absent" / "out.h5")


def test_directory_as_output_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        check_output_path(tmp_path / "d")


def test_output_equal_to_an_input_is_refused(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model")
    with pytest.raises(InputError, match="overwrite the input file"):
        check_output_path(tmp_path / "." / "m.onnx", (str(model),))


def test_output_hard_linked_to_an_input_is_refused(tmp_path):
    data = tmp_path / "d.npz"
    data.write_bytes(b"data")
    os.link(data, tmp_path / "alias.npz")
    with pytest.raises(InputError, match="overwrite the input file"):
        check_output_path(tmp_path / "alias.npz", (None, str(data)))


def test_output_equal_to_a_models_external_data_is_refused(tmp_path):
    model = ob.tiny_torch_onnx(tmp_path / "m.onnx", dataset=None)
    proto = onnx.load(str(model))
    onnx.save(proto, str(model), save_as_external_data=True, location="m.weights",
              size_threshold=0)
    assert (tmp_path / "m.weights").is_file()
    with pytest.raises(InputError, match="m.weights, the external data of the input model"):
        check_output_path(tmp_path / "m.weights", (str(model),))
