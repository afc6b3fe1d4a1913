"""The registry of input formats (by suffix, snn2hw/formats.py) and the one registry of
output formats (``--format``, snn2hw/backends.py): dispatch, duplicate names, and the CLI
choices they give."""
from __future__ import annotations

import pytest

from snn2hw import backends, formats
from snn2hw.cli import main
from snn2hw.steps.exchange import default_output


def test_input_formats_are_chosen_by_suffix():
    assert formats.input_format("net.nir").name == "nir"
    assert formats.input_format("NET.NIR").name == "nir"
    assert formats.input_format("model.onnx").name == "onnx"
    assert formats.is_spiking("a.nir") and not formats.is_spiking("a.onnx")


def test_an_unknown_suffix_is_read_as_onnx_whose_loader_names_the_problem(tmp_path, capsys):
    path = tmp_path / "model.bin"
    path.write_bytes(b"\x00garbage")
    assert main(["export", str(path), "--data", "digits", "-o", str(tmp_path / "o.h5")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {path}")


def test_a_suffix_registered_twice_is_an_error():
    with pytest.raises(ValueError, match="'.nir' is already taken"):
        formats.register_input(formats.INPUTS[".nir"])


def test_the_output_formats_are_ours_and_the_registered_writers():
    assert backends.output_formats()[:3] == ["h5", "netx", "nir"]
    assert backends.writer("h5").needs == "integer"
    assert backends.writer("nir").needs == "float"
    assert backends.writer("netx").needs == "integer"


def test_a_writer_name_registered_twice_is_an_error():
    with pytest.raises(ValueError, match="'nir' is already taken"):
        backends.register_writer(backends.writer("nir"))


def test_default_output_names_follow_the_format():
    assert default_output("m/net.onnx", "nir", "loihi_sim") == "m/net.nir"
    assert default_output("m/net.onnx", "netx", "loihi_sim") == "m/net.net"
    assert default_output("m/net.onnx", "h5", "hw/loihi_sim.toml") == "m/net.loihi_sim.h5"


def test_an_unknown_format_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["export", "m.onnx", "--format", "pt"])
    assert exc.value.code == 2
    assert "invalid choice: 'pt'" in capsys.readouterr().err
