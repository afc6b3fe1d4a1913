"""Lava backend (exporters/lava/: backend.py, worker.py, watchdog.py, cleanup.py).

Every Lava run happens in a child process started by ``run_lava``; this test process never
imports Lava. The reference below is an independent numpy transcription of the neuron
equations in snn2hw/quantize/qnet.py (not the torch simulator), including the idle steps t < depth
and the per-sample reset.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from snn2hw.errors import BackendError, HardwareLimitError
from snn2hw.exporters.lava import backend as lava_backend
from snn2hw.exporters.lava.watchdog import run_lava
from snn2hw.quantize.qnet import IntSynapse, QuantizedNetwork, QuantLayer

ROOT = Path(__file__).resolve().parents[1]
FAULTY = Path(__file__).resolve().parent / "lava_faulty" / "faulty_procs.py"
TEST_PROCESS_ENV = "SNN2HW_LAVA_TEST_PROCESS"
N, T = 3, 16


# --------------------------------------------------------------------------------------
# Independent numpy reference
# --------------------------------------------------------------------------------------

def conv_out_hw(h, w, k, stride, padding, dilation):
    top, left, bottom, right = padding
    ho = (h + top + bottom - dilation[0] * (k[0] - 1) - 1) // stride[0] + 1
    wo = (w + left + right - dilation[1] * (k[1] - 1) - 1) // stride[1] + 1
    return ho, wo


def np_conv(x, weight, stride, padding, dilation, groups):
    """Direct cross-correlation like torch: x (M, C, H, W), weight (Co, C/g, kH, kW)."""
    top, left, bottom, right = padding
    x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    m, c_in, h, w = x.shape
    c_out, c_in_g, kh, kw = weight.shape
    ho = (h - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((m, c_out, ho, wo), dtype=np.result_type(x, weight))
    c_out_g = c_out // groups
    for co in range(c_out):
        g = co // c_out_g
        for oy in range(ho):
            for ox in range(wo):
                ys = oy * stride[0] + dilation[0] * np.arange(kh)
                xs = ox * stride[1] + dilation[1] * np.arange(kw)
                patch = x[:, g * c_in_g:(g + 1) * c_in_g][:, :, ys][:, :, :, xs]
                out[:, co, oy, ox] = (patch * weight[co]).sum(axis=(1, 2, 3))
    return out


def synapse_current(syn, src, dtype):
    """src (N, T, in_size) -> (N, T, out_size) of W @ src[t - lag] (0 for t < lag)."""
    n, t, _ = src.shape
    out = np.zeros((n, t, syn.out_size), dtype=dtype)
    lagged = src[:, :t - syn.lag].astype(dtype) if syn.lag < t else src[:, :0].astype(dtype)
    flat = lagged.reshape(-1, syn.in_size)
    if syn.kind == "conv":
        y = np_conv(flat.reshape(-1, *syn.in_shape), np.asarray(syn.weight, dtype),
                    syn.stride, syn.padding, syn.dilation, syn.groups)
    else:
        y = flat @ syn.csr.toarray().astype(dtype).T
    out[:, syn.lag:] = y.reshape(n, -1, syn.out_size)
    return out


def wrap24(x):
    half = 1 << 23
    x = np.where(x > half, x - 2 * half, x)
    return np.where(x <= -half, x + 2 * half, x)


def reference(qnet, spikes, fixed=True):
    """Spikes (N, T, size) of every layer, per sample from rest."""
    dtype = np.int64 if fixed else np.float64
    n, t, _ = spikes.shape
    trains = {qnet.input: spikes.astype(dtype)}
    for layer in sorted(qnet.layers, key=lambda la: la.depth):
        a = sum(synapse_current(s, trains[s.source], dtype) for s in layer.synapses)
        if layer.bias_mant is None:
            bias = np.zeros(layer.size, dtype)
        elif fixed:
            bias = np.asarray(layer.bias_mant, np.int64).reshape(-1) << layer.bias_exp
        else:
            bias = np.asarray(layer.bias_mant, np.float64).reshape(-1)
        thr = (int(layer.threshold) << 6) if fixed else float(layer.threshold)
        v = np.zeros((n, layer.size), dtype)
        s = np.zeros((n, t, layer.size), dtype)
        for step in range(layer.depth, t):
            if fixed:
                u = wrap24(a[:, step] << 6)
                v = np.clip(v + u + bias, -(2 ** 23 - 1), 2 ** 23 - 1)
            else:
                v = v + a[:, step] + bias
            fired = v > thr
            if qnet.reset == "subtract":
                v[fired] -= thr
            else:
                v[fired] = 0
            s[:, step] = fired
        trains[layer.name] = s
    return {la.name: trains[la.name].astype(np.int8) for la in qnet.layers}


# --------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------

def rand_csr(rng, out_size, in_size, density, lo, hi, dtype=np.int32):
    dense = rng.integers(lo, hi + 1, size=(out_size, in_size))
    dense[rng.random((out_size, in_size)) > density] = 0
    return sp.csr_matrix(dense.astype(dtype))


def signed_spikes(rng, n, t, size, rate=0.35):
    active = rng.random((n, t, size)) < rate
    sign = np.where(rng.random((n, t, size)) < 0.7, 1, -1)
    return (active * sign).astype(np.int8)


def conv_net(seed=1, fixed=True):
    """input (2, 7, 6) -> conv (stride (2, 1), asymmetric padding) -> matrix -> matrix."""
    rng = np.random.default_rng(seed)
    in_shape = (2, 7, 6)
    stride, padding, dilation = (2, 1), (1, 0, 2, 1), (1, 1)
    ho, wo = conv_out_hw(7, 6, (3, 3), stride, padding, dilation)
    c1_shape = (4, ho, wo)
    w1 = rng.integers(-40, 56, size=(4, 2, 3, 3))
    scale = 1 if fixed else 0.125       # dyadic floats: every float sum is exact
    c1_size = int(np.prod(c1_shape))
    c1 = QuantLayer("c1", c1_shape, 1, [IntSynapse(
        "input", 1, in_shape, c1_shape, "conv", weight=(w1 * scale).astype(
            np.int32 if fixed else np.float64), stride=stride, padding=padding,
        dilation=dilation)], 60 if fixed else 7.5, None)
    m2 = rand_csr(rng, 20, c1_size, 0.4, -60, 90, np.int32 if fixed else np.float64)
    bias2 = rng.integers(-6, 12, size=20)
    f2 = QuantLayer("f2", (20,), 2, [IntSynapse("c1", 1, c1_shape, (20,), "matrix",
                                                csr=m2 * scale)],
                    100 if fixed else 12.5,
                    bias2.astype(np.int32) if fixed else bias2 * 0.125, 6)
    m3 = rand_csr(rng, 6, 20, 0.6, -80, 120, np.int32 if fixed else np.float64)
    f3 = QuantLayer("f3", (6,), 3, [IntSynapse("f2", 1, (20,), (6,), "matrix",
                                               csr=m3 * scale)],
                    90 if fixed else 11.25, None, is_output=True)
    qnet = QuantizedNetwork("input", in_shape, 1.0, [c1, f2, f3], "test")
    return qnet, signed_spikes(rng, N, T, int(np.prod(in_shape)))


def residual_net(seed=2):
    """input -> a -> b -> out, plus a -> out (lag 2) and input -> out (lag 3): delayed
    synapses from a spiking layer and from the signed input."""
    rng = np.random.default_rng(seed)
    a = QuantLayer("a", (24,), 1, [IntSynapse("input", 1, (30,), (24,), "matrix",
                                              csr=rand_csr(rng, 24, 30, 0.5, -50, 80))],
                   60, rng.integers(-3, 8, size=24).astype(np.int32), 6)
    b = QuantLayer("b", (18,), 2, [IntSynapse("a", 1, (24,), (18,), "matrix",
                                              csr=rand_csr(rng, 18, 24, 0.5, -60, 100))],
                   80, None)
    out = QuantLayer("out", (8,), 3, [
        IntSynapse("b", 1, (18,), (8,), "matrix", csr=rand_csr(rng, 8, 18, 0.5, -60, 110)),
        IntSynapse("a", 2, (24,), (8,), "matrix", csr=rand_csr(rng, 8, 24, 0.4, -50, 90)),
        IntSynapse("input", 3, (30,), (8,), "matrix",
                   csr=rand_csr(rng, 8, 30, 0.4, -256, 255)),
    ], 120, None, is_output=True)
    qnet = QuantizedNetwork("input", (30,), 1.0, [a, b, out], "test")
    return qnet, signed_spikes(rng, N, T, 30)


def assert_same_spikes(result, expected):
    assert set(result.spikes) == set(expected)
    for name, want in expected.items():
        got = result.spikes[name]
        assert got.shape == want.shape and got.dtype == np.int8
        # The test is only meaningful if layers are neither silent nor saturated.
        assert 0 < want.mean() < 0.9, (name, want.mean())
        diff = np.argwhere(got != want)
        assert diff.size == 0, f"{name}: {len(diff)} spikes differ, first (n, t, i) {diff[:5]}"


# --------------------------------------------------------------------------------------
# Helpers for the failure tests
# --------------------------------------------------------------------------------------

def shm_names():
    try:
        return set(os.listdir("/dev/shm"))
    except OSError:
        return set()


def shm_in_use():
    used = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/maps", "rb") as fh:
                used.update(line.split(b"/dev/shm/", 1)[1].split()[0].decode()
                            for line in fh if b"/dev/shm/" in line)
        except OSError:
            pass
    return used


def leaked_shm(before):
    """New /dev/shm entries that no live process uses (a concurrent Lava run's are)."""
    return (shm_names() - before) - shm_in_use()


def group_gone(pgid, wait=5.0):
    deadline = time.monotonic() + wait
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


# --------------------------------------------------------------------------------------
# Tests without Lava
# --------------------------------------------------------------------------------------

def conv_synapse(weight) -> IntSynapse:
    return IntSynapse("x", 1, (4, 7, 6), (6, 3, 3), "conv", weight=weight, stride=(2, 2),
                      padding=(1, 0, 0, 1), dilation=(1, 2), groups=2)


def probed_np_conv(syn, dtype) -> np.ndarray:
    """The conv's matrix: np_conv (above) applied to every unit vector."""
    eye = np.eye(syn.in_size, dtype=dtype).reshape(-1, *syn.in_shape)
    out = np_conv(eye, np.asarray(syn.weight, dtype), syn.stride, syn.padding, syn.dilation,
                  syn.groups)
    return out.reshape(syn.in_size, -1).T


def test_fixed_pt_synapse_matrix_of_a_conv_is_the_exact_int32_conv():
    syn = conv_synapse(np.random.default_rng(5).integers(-9, 10, size=(6, 2, 3, 2)))
    ours = lava_backend.synapse_matrix(syn, "fixed_pt")
    assert ours.dtype == np.int32
    np.testing.assert_array_equal(ours.toarray(), probed_np_conv(syn, np.int64))


def test_floating_pt_synapse_matrix_of_a_conv_keeps_float_weights():
    syn = conv_synapse(np.random.default_rng(6).normal(size=(6, 2, 3, 2)) / 7)
    ours = lava_backend.synapse_matrix(syn, "floating_pt")
    assert ours.dtype == np.float64
    np.testing.assert_array_equal(ours.toarray(), probed_np_conv(syn, np.float64))


def test_input_packing_is_sample_major():
    spikes = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 3 - 1
    data = lava_backend.pack_input(spikes.astype(np.int8))
    assert data.shape == (4, 6)
    assert (data[:, 1 * 3 + 2] == spikes[1, 2]).all()
    back = lava_backend.unpack_output(data != 0, 2, 3, depth=1)
    assert (back[:, 0] == 0).all() and (back[:, 1:] == (spikes[:, 1:] != 0)).all()


def test_weights_outside_9_bits_are_rejected_before_running():
    qnet, spikes = residual_net()
    qnet.layers[1].synapses[0].csr.data[0] = 300
    with pytest.raises(HardwareLimitError, match=r"weight range \[-256, 255\]"):
        run_lava(qnet, spikes, T)


# --------------------------------------------------------------------------------------
# Lava runs
# --------------------------------------------------------------------------------------

@pytest.mark.lava
def test_fixed_conv_network_matches_reference():
    qnet, spikes = conv_net()
    result = run_lava(qnet, spikes, T)
    assert_same_spikes(result, reference(qnet, spikes))
    assert result.steps_per_second > 0


@pytest.mark.lava
def test_residual_network_with_delays_matches_reference():
    qnet, spikes = residual_net()
    assert_same_spikes(run_lava(qnet, spikes, T), reference(qnet, spikes))


@pytest.mark.lava
@pytest.mark.parametrize("tag", ["fixed_pt", "floating_pt"])
def test_reset_by_subtraction_matches_reference(tag):
    # LIFResetSubtract (exporters/lava/procs): Lava's LIFReset models with v -= vth.
    if tag == "fixed_pt":
        qnet, spikes = residual_net(seed=5)
    else:
        qnet, spikes = conv_net(seed=6, fixed=False)
    qnet.reset = "subtract"
    expected = reference(qnet, spikes, fixed=tag == "fixed_pt")
    qnet.reset = "zero"
    as_zero = reference(qnet, spikes, fixed=tag == "fixed_pt")
    assert any((expected[k] != as_zero[k]).any() for k in expected), "reset made no difference"
    qnet.reset = "subtract"
    assert_same_spikes(run_lava(qnet, spikes, T, tag=tag), expected)


@pytest.mark.lava
def test_loihi_variant_delaysparse_binary_spikes_sink_matches_reference():
    # The Loihi-faithful graph: DelaySparse for lags > 1, binary spikes between layers,
    # plus RingBuffer sinks instead of extractors.
    qnet, spikes = residual_net(seed=3)
    result = run_lava(qnet, spikes, T, hidden_message_bits=0, delay="delaysparse",
                      reader="sink", record=["b", "out"])
    expected = reference(qnet, spikes)
    assert_same_spikes(result, {k: expected[k] for k in ("b", "out")})


@pytest.mark.lava
def test_floating_pt_matches_float_reference():
    qnet, spikes = conv_net(seed=4, fixed=False)
    result = run_lava(qnet, spikes, T, tag="floating_pt")
    assert_same_spikes(result, reference(qnet, spikes, fixed=False))


@pytest.mark.lava
def test_process_model_exception_is_a_backend_error(monkeypatch):
    monkeypatch.setenv(TEST_PROCESS_ENV, f"{FAULTY}:RaisingProcess")
    qnet, spikes = residual_net()
    before, pids = shm_names(), []
    start = time.monotonic()
    with pytest.raises(BackendError, match="deliberate failure") as info:
        run_lava(qnet, spikes, T, timeout=60, on_start=pids.append)
    assert time.monotonic() - start < 40
    assert info.value.exit_code == 4
    assert "\n" not in str(info.value)
    assert group_gone(pids[0])
    assert not leaked_shm(before)


@pytest.mark.lava
def test_hanging_process_times_out(monkeypatch):
    monkeypatch.setenv(TEST_PROCESS_ENV, f"{FAULTY}:HangingProcess")
    qnet, spikes = residual_net()
    before, pids = shm_names(), []
    start = time.monotonic()
    with pytest.raises(BackendError, match=r"timed out after 8 s"):
        run_lava(qnet, spikes, T, timeout=8, on_start=pids.append)
    assert time.monotonic() - start < 8 + 10
    assert group_gone(pids[0])
    assert not leaked_shm(before)


SIGINT_SCRIPT = """
import os, sys
import numpy as np, scipy.sparse as sp
os.environ["{env}"] = "{faulty}:HangingProcess"
from snn2hw.quantize.qnet import IntSynapse, QuantizedNetwork, QuantLayer
from snn2hw.exporters.lava.watchdog import run_lava
csr = sp.csr_matrix(np.full((4, 5), 3, dtype=np.int32))
layer = QuantLayer("a", (4,), 1, [IntSynapse("input", 1, (5,), (4,), "matrix", csr=csr)],
                   2, None, is_output=True)
qnet = QuantizedNetwork("input", (5,), 1.0, [layer], "test")
spikes = np.ones((1, 50, 5), dtype=np.int8)
try:
    run_lava(qnet, spikes, 50, timeout=300,
             on_start=lambda pid: print("WORKER", pid, flush=True))
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
    raise
"""


@pytest.mark.lava
def test_ctrl_c_kills_the_worker_group(tmp_path):
    script = tmp_path / "interrupt_me.py"
    script.write_text(textwrap.dedent(SIGINT_SCRIPT.format(env=TEST_PROCESS_ENV,
                                                           faulty=FAULTY)))
    before = shm_names()
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        assert line.startswith("WORKER"), line + proc.stderr.read()
        worker = int(line.split()[1])
        # Wait until Lava has forked its processes (the worker is no longer alone).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out = subprocess.run(["ps", "-o", "pid=", "-g", str(worker)],
                                 capture_output=True, text=True).stdout.split()
            if len(out) >= 4:
                break
            time.sleep(0.2)
        else:
            pytest.fail("Lava never started")
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
        assert time.monotonic() - sent < 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert "INTERRUPTED" in stdout, stderr
    assert "KeyboardInterrupt" in stderr
    assert group_gone(worker)
    assert not leaked_shm(before)
