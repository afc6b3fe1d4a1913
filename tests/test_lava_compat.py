"""lava-nc 0.10 on Python 3.11 through snn2hw.exporters.lava.compat, and Lava's timing convention.

Lava runs in a fresh child process: it starts its own worker processes, and the import
fix must be installed before the first ``import lava`` of that process.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from snn2hw.exporters.lava import compat as lava_compat

pytestmark = pytest.mark.lava

LAVA_SCRIPT = textwrap.dedent("""
    import json, sys
    import snn2hw.exporters.lava  # the Lava backend installs the var_model fix
    from snn2hw.exporters.lava import compat as lava_compat

    calls = []
    for name in ("_cache_bytecode", "set_data"):
        def spy(self, *args, _name=name, **kw):
            calls.append(_name)
        setattr(lava_compat._PatchedLoader, name, spy)

    import lava.magma.compiler.var_model as vm
    loader = type(vm.__loader__).__name__

    import numpy as np
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF

    cfg = json.loads(sys.argv[1])
    T = cfg["steps"]
    src = Source(data=np.array(cfg["spikes"], dtype=np.int32))
    dense = Dense(weights=np.array(cfg["weights"]))
    lif = LIF(shape=(len(cfg["weights"]),), du=4095, dv=0, vth=cfg["vth"],
              bias_mant=np.array(cfg["bias"]), bias_exp=6)
    sink = Sink(shape=(len(cfg["weights"]),), buffer=T)
    src.s_out.connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    lif.s_out.connect(sink.a_in)
    try:
        sink.run(condition=RunSteps(num_steps=T),
                 run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        got = sink.data.get()
    finally:
        sink.stop()
    print("RESULT " + json.dumps({"spikes": np.asarray(got).astype(int).tolist(),
                                  "loader": loader, "cache_calls": calls}))
""")


def var_model_origin() -> Path:
    spec = importlib.util.find_spec("lava.magma.compiler.var_model")
    assert spec is not None and spec.origin is not None, "lava-nc is not installed"
    return Path(spec.origin)


def expected_spikes(spikes, weights, bias, vth, hops=1):
    """Lava's convention, one hop per synapse: the source sends column t-1 at step t, the
    Dense sends at step t what it received at step t-1 (so its output is 0 at step 1), the
    LIF (du=4095: u = input; dv=0: no leak; bias_exp=6 and the x64 scaling of input and
    threshold cancel) integrates v += W s[t-2] + b, fires if v > vth, resets to 0; the
    sink stores the LIF's spikes of step t in column t-1."""
    n_out, steps = len(weights), len(spikes[0])
    v = [0] * n_out
    out = [[0] * steps for _ in range(n_out)]
    for t in range(1, steps + 1):
        for i in range(n_out):
            a = 0
            if t - 1 - hops >= 0:
                a = sum(weights[i][j] * spikes[j][t - 1 - hops] for j in range(len(spikes)))
            v[i] += a + bias[i]
            if v[i] > vth:
                out[i][t - 1] = 1
                v[i] = 0
    return out


def test_lava_runs_through_the_compat_fix_with_one_hop_per_synapse():
    pyc = importlib.util.cache_from_source(str(var_model_origin()))
    before = (Path(pyc).stat().st_mtime_ns, hashlib.sha256(Path(pyc).read_bytes()).digest()) \
        if os.path.exists(pyc) else None
    cfg = {"steps": 12, "vth": 7,
           "spikes": [[0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1],
                      [0, 1, 0, 1, 0, 0, 1, 1, 1, 1, 0, 0],
                      [1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1]],
           "weights": [[4, 2, -2], [6, -4, 2], [2, 2, 2]],  # even: 8-bit mixed-sign exact
           "bias": [1, 0, 3]}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run([sys.executable, "-c", LAVA_SCRIPT, json.dumps(cfg)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT "):])
    want = expected_spikes(cfg["spikes"], cfg["weights"], cfg["bias"], cfg["vth"])
    assert result["spikes"] == want
    assert any(result["spikes"][0]) and not all(result["spikes"][2])
    # the one-hop delay matters for this input: without it the spikes would differ
    assert result["spikes"] != expected_spikes(cfg["spikes"], cfg["weights"], cfg["bias"],
                                               cfg["vth"], hops=0)
    assert result["loader"] == "_PatchedLoader"
    assert result["cache_calls"] == []
    after = (Path(pyc).stat().st_mtime_ns, hashlib.sha256(Path(pyc).read_bytes()).digest()) \
        if os.path.exists(pyc) else None
    assert after == before, "the patched var_model must not be cached as .pyc"


def test_patch_source_rewrites_bytencoder_defaults():
    src = ("@dataclass\n"
           "class Addr:\n"
           "    x: ByteEncoder = ByteEncoder()\n"
           "    lo:ByteEncoder=ByteEncoder()  \n"
           "    n: int = 0\n"
           "    enc: ByteEncoder = ByteEncoder(3)\n")
    out = lava_compat.patch_source(src)
    lines = out.splitlines()
    assert lines[2] == ("    x: ByteEncoder = __import__('dataclasses')"
                        ".field(default_factory=ByteEncoder)")
    assert lines[3] == ("    lo:ByteEncoder = __import__('dataclasses')"
                        ".field(default_factory=ByteEncoder)")
    assert lines[4] == "    n: int = 0"
    assert lines[5] == "    enc: ByteEncoder = ByteEncoder(3)"  # not a plain default
    assert len(lines) == len(src.splitlines())


def test_patched_class_is_a_valid_dataclass_with_fresh_defaults():
    src = textwrap.dedent("""
        from dataclasses import dataclass

        @dataclass
        class ByteEncoder:  # eq=True makes instances unhashable, like Lava's
            n: int = 0

        @dataclass
        class Addr:
            x: ByteEncoder = ByteEncoder()
            y: ByteEncoder = ByteEncoder()
    """)
    if sys.version_info >= (3, 11):
        with pytest.raises(ValueError, match="mutable default"):
            exec(compile(src, "<orig>", "exec"), {})
    ns: dict = {}
    exec(compile(lava_compat.patch_source(src), "<patched>", "exec"), ns)
    a, b = ns["Addr"](), ns["Addr"]()
    assert isinstance(a.x, ns["ByteEncoder"]) and a.x is not b.x and a.x is not a.y


def test_patch_source_keeps_line_numbers_of_the_real_module():
    source = var_model_origin().read_text()
    assert lava_compat.patch_source(source).count("\n") == source.count("\n")


def test_install_is_idempotent():
    import snn2hw.exporters.lava  # noqa: F401  (installs on import)

    assert lava_compat.install() is True
    assert lava_compat.install() is True
    finders = [f for f in sys.meta_path if isinstance(f, lava_compat._VarModelFinder)]
    assert len(finders) == 1


def test_not_needed_on_python_310(monkeypatch):
    monkeypatch.setattr(sys, "version_info", (3, 10, 14, "final", 0))
    assert lava_compat.needed() is False
    before = list(sys.meta_path)
    assert lava_compat.install() is False
    assert sys.meta_path == before


def test_finder_ignores_other_modules():
    finder = lava_compat._VarModelFinder()
    assert finder.find_spec("lava.magma.compiler.compiler", None) is None
    spec = finder.find_spec(lava_compat.TARGET_MODULE,
                            [str(var_model_origin().parent)])
    assert isinstance(spec.loader, lava_compat._PatchedLoader)
