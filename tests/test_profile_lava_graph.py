"""The numbers of a custom profile reach the parameters of the Lava process graph: weight
bits (and the shift that keeps integer weights exact), message bits of the input, hidden
and relay synapses, and the neuron decays. The graph is built in a child process (this
process never imports Lava); the expected values are the profile numbers written here.
"""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from snn2hw.quantize.qnet import IntSynapse, QuantizedNetwork, QuantLayer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from profile_builders import shipped, write_profile  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------------------

GRAPH_SCRIPT = """
import json, pickle, sys
import numpy as np
import snn2hw.exporters.lava  # installs the Python 3.11 fix before Lava is imported
import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401
from snn2hw.exporters.lava.backend import build_graph

cases = pickle.load(open(sys.argv[1], "rb"))
out = {}
for name, (qnet, profile, spikes) in cases.items():
    g = build_graph(qnet, spikes, spikes.shape[1], profile=profile)
    lif = {k: {"du": np.asarray(p.du.init).item(), "dv": np.asarray(p.dv.init).item(),
               "cls": type(p).__name__}
           for k, p in g.neurons.items()}
    syn = [{"bits": int(np.asarray(p.num_message_bits.init).item()),
            "weight_bits": p.proc_params.get("num_weight_bits"),
            "weight_exp": p.proc_params.get("weight_exp"),
            "weights": sorted(set(np.asarray(p.weights.init.data).tolist()))}
           for p in g.synapses]
    out[name] = {"lif": lif, "synapses": syn}
print("RESULT" + json.dumps(out))
"""


def residual_qnet() -> QuantizedNetwork:
    """input -> a -> out, plus input -> out with lag 2 (one relay)."""
    a = QuantLayer("a", (3,), 1, [IntSynapse("input", 1, (4,), (3,), "matrix",
                                             csr=sp.csr_matrix(np.full((3, 4), 3, np.int32)))],
                   5, None)
    out = QuantLayer("out", (2,), 2, [
        IntSynapse("a", 1, (3,), (2,), "matrix", csr=sp.csr_matrix(np.full((2, 3), -5,
                                                                           np.int32))),
        IntSynapse("input", 2, (4,), (2,), "matrix", csr=sp.csr_matrix(np.full((2, 4), 7,
                                                                               np.int32))),
    ], 9, None, is_output=True)
    return QuantizedNetwork("input", (4,), 1.0, [a, out], "test")


GRAPHS = {
    "loihi_sim": {},
    "weights.bits": {"weights.bits": 8, "weights.min": -128, "weights.max": 127},
    "messages": {"messages.input_bits": 16, "messages.hidden_bits": 0,
                 "messages.relay_bits": 20},
    "loihi_float": None,
}


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    from snn2hw.hardware import profiles

    root = tmp_path_factory.mktemp("graphs")
    spikes = np.ones((1, 4, 4), np.int8)
    cases = {}
    for name, changes in GRAPHS.items():
        qnet = residual_qnet()
        if changes is None:
            profile = profiles.load(name)
            for la in qnet.layers:
                la.threshold = float(la.threshold)
        else:
            profile = profiles.load(str(write_profile(root / f"{name}.toml", changes)))
        cases[name] = (qnet, profile, spikes)
    job = root / "cases.pkl"
    job.write_bytes(pickle.dumps(cases))
    script = root / "graph.py"
    script.write_text(textwrap.dedent(GRAPH_SCRIPT))
    proc = subprocess.run([sys.executable, str(script), str(job)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
    assert line, proc.stderr[-3000:]
    return json.loads(line[0][len("RESULT"):])


def _shipped_messages() -> tuple[int, int, int]:
    m = shipped("loihi_sim")["messages"]
    return m["input_bits"], m["hidden_bits"], m["relay_bits"]


def graph_loihi_sim(g):
    inp, hidden, relay = _shipped_messages()
    assert (inp, hidden, relay) == (8, 1, 24)
    # Synapses in build order: input->a, a->out, input->out (Sparse + one relay).
    assert [s["bits"] for s in g["synapses"]] == [inp, hidden, inp, relay]
    assert all(s["weight_bits"] == 9 and s["weight_exp"] == 0 for s in g["synapses"])
    assert [s["weights"] for s in g["synapses"]] == [[3], [-5], [7], [1]]
    assert all((v["du"], v["dv"]) == (4095, 0) for v in g["lif"].values())


def graph_weight_bits(g):
    # 8-bit weights go in shifted by one bit (Sparse drops 9 - 8 low bits), and the sums
    # are shifted back by weight_exp = -1.
    assert all(s["weight_bits"] == 8 and s["weight_exp"] == -1 for s in g["synapses"])
    assert [s["weights"] for s in g["synapses"]] == [[6], [-10], [14], [2]]


def graph_messages(g):
    assert [s["bits"] for s in g["synapses"]] == [16, 0, 16, 20]


def graph_loihi_float(g):
    assert all((v["du"], v["dv"]) == (1.0, 0.0) for v in g["lif"].values())
    assert all(s["weight_bits"] is None for s in g["synapses"])


GRAPH_CHECKS = {"loihi_sim": graph_loihi_sim, "weights.bits": graph_weight_bits,
                "messages": graph_messages, "loihi_float": graph_loihi_float}


@pytest.mark.lava
@pytest.mark.parametrize("case", list(GRAPHS))
def test_profile_field_reaches_the_lava_graph(case, graphs):
    GRAPH_CHECKS[case](graphs[case])
