"""`snn2hw export --format netx`: the file is loaded by lava-dl's own loader
(``lava.lib.dl.netx.hdf5.Network``, in a child process under a timeout) and run on Lava;
its spikes must equal snn2hw's fixed-point reference (Lava-exact) on the same signed input
spikes, with netx's conventions (du = iDecay - 1, reset_interval / reset_offset). What netx
cannot hold is refused with exit 3 and one line."""
from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from snn2hw import backends, data
from snn2hw.snn import simulate
from snn2hw.cli import main
from snn2hw.steps.deploy import export_model
from snn2hw.snn.encoders import make_encoder


def poisson(x, input_scale, seed, stream):  # the evaluation stream is 1
    return make_encoder("poisson", x, input_scale=input_scale, seed=seed, stream=stream)
from snn2hw.quantize.fixed import prepare_fixed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_builders import export_torch  # noqa: E402
from test_export_cli import make_calibration  # noqa: E402


def pooled_net() -> nn.Module:
    """conv -> avgpool -> conv (the pooling folds into it) -> flatten -> dense, biases."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                             nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(96, 10))


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        a = torch.relu(self.a(x))
        return self.fc(torch.flatten(torch.relu(self.b(a)) + a, 1))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("netx")
    out = {}
    for name, module in (("pooled", pooled_net()), ("residual", Residual())):
        path = export_torch(module, d / f"{name}.onnx")  # no data set: no evaluation
        make_calibration(path, d / f"{name}.calib.h5")
        out[name] = (path, str(d / f"{name}.calib.h5"))
    return d, out


@pytest.fixture(scope="module")
def pooled_export(models):
    d, paths = models
    model, cal = paths["pooled"]
    writer = backends.writer("netx")
    art = export_model(model, "loihi_sim", calibration_file=cal, output_format="netx")
    path = d / "pooled.net"
    writer.write(path, art, {"timesteps": 12})
    return path, art


def test_file_holds_pytorch_layout_integers_and_if_neurons(pooled_export):
    path, art = pooled_export
    q = art.qnet
    with h5py.File(path) as f:
        layers = f["layer"]
        assert [layers[str(i)]["type"][0] for i in range(len(layers))] == [
            b"input", b"conv", b"conv", b"flatten", b"dense"]
        first = layers["1"]
        np.testing.assert_array_equal(first["weight"][()], q.layers[0].synapses[0].weight)
        assert first["neuron/vThMant"][()] == q.layers[0].threshold
        assert (first["neuron/iDecay"][()], first["neuron/vDecay"][()]) == (4096, 0)
        # the folded pooling: sum-pool 2 then conv W == conv kron(W, ones(2, 2)), stride 2
        second, syn = layers["2"], q.layers[1].synapses[0]
        assert syn.pool == (2, 2)
        np.testing.assert_array_equal(second["weight"][()][:, :, ::2, ::2], syn.weight)
        assert list(second["stride"][()]) == [2, 2] and list(second["padding"][()]) == [2, 2]
        assert f["simulation/tSample"][()] == 12
    weights = np.concatenate([s.values() for la in q.layers for s in la.synapses])
    assert weights.max() <= 254  # netx's range, given to the quantiser


@pytest.mark.lava
def test_lava_dl_runs_the_file_spike_for_spike_like_the_fixed_reference(pooled_export):
    from snn2hw.exporters.netx.runner import run_netx

    path, art = pooled_export
    q, t = art.qnet, 12
    x = data.load("digits", q.input_shape, 10, data.Preprocess((0.3,), (1.0,))).x_test[:3]
    spikes = poisson(x, q.input_scale, 5, 1).full(0, len(x), t)
    assert (spikes < 0).any()  # signed input spikes reach netx as graded messages
    names = [la.name for la in q.layers]
    ref = simulate.simulate(prepare_fixed(q), poisson(x, q.input_scale, 5, 1), t,
                            record=names)
    got = run_netx(str(path), spikes.reshape(len(x), t, -1), q.input_shape, t, timeout=240)
    assert len(got) == len(names)
    for name, spikes_netx in zip(names, got):
        assert ref.records[name].sum() > 0, name
        np.testing.assert_array_equal(spikes_netx, ref.records[name], err_msg=name)


def test_a_residual_network_is_exit_3_in_one_line(models, tmp_path, capsys):
    _, paths = models
    model, cal = paths["residual"]
    out = tmp_path / "res.net"
    code = main(["export", model, "--calibration", cal, "--format", "netx", "-o", str(out)])
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert code == 3
    assert len(err) == 1 and err[0].startswith("error: netx holds chains only: layer ")
    assert "residual junction" in err[0]
    assert not out.exists()


def test_reset_by_subtraction_is_exit_3(models, tmp_path, capsys):
    from snn2hw.exporters.netx.checks import check_network

    _, paths = models
    model, cal = paths["pooled"]
    art = export_model(model, "loihi_sim", calibration_file=cal)
    art.qnet.reset = "subtract"
    from snn2hw.errors import HardwareLimitError

    with pytest.raises(HardwareLimitError, match="reset to zero; this network resets by "
                       "subtraction") as exc:
        check_network(art.qnet)
    assert exc.value.exit_code == 3


@pytest.mark.parametrize("option", [{"v_init": 0.5}, {"coding": "direct"},
                                    {"readout": "membrane"}])
def test_conversion_options_netx_cannot_carry_are_exit_3(option):
    from snn2hw.errors import HardwareLimitError
    from snn2hw.exporters.netx.checks import check_options

    with pytest.raises(HardwareLimitError) as exc:
        check_options(option)
    assert exc.value.exit_code == 3
    check_options({})  # the defaults: the paper's configuration
