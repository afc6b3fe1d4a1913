"""Spiking activity and synaptic operations against depth (the sparsity analysis of
Sengupta et al. 2019).

The float SNN (thresholds from a calibration) runs on a data set, and for every spiking
layer this module reports:

- ``spikes_per_neuron_per_step``: spikes / (neurons x time steps x samples), idle steps
  included, exactly as :class:`snn2hw.snn.simulate.LayerStats` defines the rate;
- ``sops_per_image``: synaptic operations (SOPs) into the layer per image over the whole
  window. A spike of source neuron i that the layer integrates costs one operation per
  synapse it drives, i.e. fan-out(i) = the number of the layer's neurons j whose
  coefficient in the term's composed linear chain is structurally non-zero (some path of
  non-zero weights connects i to j; zero weights are absent synapses; numerical cancellation
  between paths is not looked for). Summed over the layer's terms; a residual junction
  counts each term's spikes with that term's fan-out. Input spikes are signed: each
  counts once, whatever its sign. Only spikes that arrive within the window are counted
  (a spike at step t through a synapse of lag l arrives at t + l < T): these are the
  operations the simulator and the chip perform in T steps; the few spikes of the last
  ``lag`` steps, which would arrive after the window, are not.
- ``macs_per_image``: the ANN's multiply-accumulates of the same linear chain(s) per image:
  conv ``out_elements x C_in/groups x kh x kw``, dense ``out x in``. Average pooling and
  flatten count zero MACs (pooling has no weights; its additions are reported separately
  as ``pool_adds_per_image`` = out_elements x kh x kw). Biases, the residual Add and the
  ReLU are not counted. A linear node shared by several terms is counted once per layer
  and once in the network total.
- ``sop_per_mac``: ``sops_per_image / macs_per_image`` (``None`` where the layer has no
  MACs, e.g. an identity-only input).

Fan-out and MACs are counted by :mod:`snn2hw.analysis.fanout`.

The depth trend is the rank correlation (Spearman's rho, Kendall's tau) of rate against
depth over the hidden spiking layers; the output layer's rate is set by the class
read-out, so it is reported with and without it.
"""
from __future__ import annotations

import math

import numpy as np

from ..snn import simulate
from ..snn.encoders import make_encoder
from .fanout import fan_out, op_macs, op_pool_adds, unique_ops
from ..steps.settings import EVALUATION_STREAM  # steps.evaluate's input spikes: same seed, same
from ..snn import SpikingNetwork  # spikes

SOP_CONVENTION = ("synaptic operations: every spike a layer integrates within the window "
                  "times the number of synapses its source neuron drives in that term "
                  "(structural non-zeros of the composed linear chain); signed input "
                  "spikes count once")
MAC_CONVENTION = ("ANN multiply-accumulates per image: conv out_elements*C_in/groups*kh*kw, "
                  "dense out*in; average pooling and flatten count 0 (pooling additions are "
                  "reported separately as pool_adds_per_image); biases and Add not counted")


# --------------------------------------------------------------------------- trend


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def rank_trend(depths: list[int], rates: list[float]) -> dict:
    """Spearman's rho and Kendall's tau of rate against depth, with the verdict:
    ``sparser`` (rho < 0), ``denser`` (rho > 0), ``flat`` (rho = 0) or ``undetermined``
    (fewer than 3 layers, or constant depth or rate)."""
    from scipy import stats

    out = {"n_layers": len(depths), "spearman_rho": None, "spearman_p": None,
           "kendall_tau": None, "kendall_p": None, "verdict": "undetermined"}
    if len(depths) < 3 or len(set(depths)) < 2 or len(set(rates)) < 2:
        return out
    rho, p_rho = stats.spearmanr(depths, rates)
    tau, p_tau = stats.kendalltau(depths, rates)
    out.update(spearman_rho=_finite(rho), spearman_p=_finite(p_rho),
               kendall_tau=_finite(tau), kendall_p=_finite(p_tau))
    if out["spearman_rho"] is not None:
        rho = out["spearman_rho"]
        out["verdict"] = "sparser" if rho < 0 else "denser" if rho > 0 else "flat"
    return out


# --------------------------------------------------------------------------- analysis


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def _record_batch(sizes: list[int], timesteps: int, budget_bytes: float) -> int:
    return max(1, int(budget_bytes // max(1, timesteps * sum(sizes))))


def analyze(net: SpikingNetwork, scales: dict[str, float], x: np.ndarray, timesteps: int,
            seed: int, y: np.ndarray | None = None, device: str = "cpu",
            batch_size: int = 64, record_budget: float = 64e6, progress=None,
            source_scales: dict[str, float] | None = None, reset: str = "zero") -> dict:
    """Run the float SNN on ``x`` for ``timesteps`` steps (input spikes as in
    :func:`snn2hw.steps.evaluate.evaluate`) and return the per-layer sparsity report (a dict of
    plain ints, floats, strings, lists and ``None``; see the module docstring)."""
    if len(x) == 0:
        raise ValueError("no samples to analyse")
    prep = simulate.prepare_float(net, scales, device, source_scales=source_scales,
                                  reset=reset)
    shapes = {net.input: tuple(net.input_shape)} | {la.name: tuple(la.shape)
                                                    for la in net.layers}
    names = list(shapes)
    size = {name: int(np.prod(s)) for name, s in shapes.items()}
    lags = {(t.source, 1 + t.delay) for la in net.layers for t in la.terms}
    delivered = {key: np.zeros(size[key[0]], dtype=np.int64) for key in lags}
    all_spikes = {name: 0 for name in names}
    stats = {la.name: simulate.LayerStats() for la in net.layers}
    n = len(x)
    correct = 0
    chunk = _record_batch(list(size.values()), timesteps, record_budget)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        enc = make_encoder("poisson", x[start:stop], input_scale=scales[net.input], seed=seed,
                           stream=EVALUATION_STREAM, indices=np.arange(start, stop))
        res = simulate.simulate(prep, enc, timesteps, batch_size=min(batch_size, chunk),
                                record=names, progress=progress)
        for name, st in res.stats.items():
            stats[name].spikes += st.spikes
            stats[name].neuron_steps += st.neuron_steps
        for name in names:
            rec = res.records[name]
            all_spikes[name] += int(np.abs(rec).sum(dtype=np.int64))
        for source, lag in lags:
            rec = res.records[source][:, :max(timesteps - lag, 0)]
            delivered[(source, lag)] += np.abs(rec).sum(axis=(0, 1), dtype=np.int64)
        if y is not None:
            pred, _ = res.predictions(timesteps)
            correct += int((pred == np.asarray(y)[start:stop]).sum())
        del res

    layers = []
    for la in net.layers:
        terms = []
        for t in la.terms:
            fan, method = fan_out(t, shapes[t.source])
            lag = 1 + t.delay
            sops = int(np.dot(delivered[(t.source, lag)], fan))
            terms.append({"source": t.source, "ops": [op.kind for op in t.ops],
                          "delay": int(t.delay), "synapses": int(fan.sum()),
                          "fan_out_method": method, "sops_per_image": sops / n,
                          "macs_per_image": sum(op_macs(op) for op in t.ops)})
        ops = unique_ops(la.terms)
        macs = sum(op_macs(op) for op in ops)
        sops = sum(t["sops_per_image"] for t in terms)
        layers.append({
            "name": la.name, "depth": int(la.depth), "shape": list(la.shape),
            "neurons": int(la.size), "is_output": bool(la.is_output),
            "spikes_per_image": all_spikes[la.name] / n,
            "spikes_per_neuron_per_step": float(stats[la.name].rate),
            "sops_per_image": float(sops), "macs_per_image": int(macs),
            "pool_adds_per_image": int(sum(op_pool_adds(op) for op in ops)),
            "sop_per_mac": _ratio(sops, macs), "synapses": int(sum(t["synapses"]
                                                                  for t in terms)),
            "terms": terms})

    in_size = size[net.input]
    net_ops = unique_ops([t for la in net.layers for t in la.terms])
    total_macs = sum(op_macs(op) for op in net_ops)
    total_sops = sum(la["sops_per_image"] for la in layers)
    neurons = sum(la["neurons"] for la in layers)
    spikes = sum(la["spikes_per_image"] for la in layers)
    hidden = [la for la in layers if not la["is_output"]]
    report = {
        "samples": int(n), "timesteps": int(timesteps), "seed": int(seed),
        "input": {"name": net.input, "shape": list(net.input_shape), "neurons": in_size,
                  "spikes_per_image": all_spikes[net.input] / n,
                  "spikes_per_neuron_per_step": all_spikes[net.input] / (n * timesteps
                                                                        * in_size)},
        "layers": layers,
        "total": {"neurons": int(neurons), "spikes_per_image": float(spikes),
                  "spikes_per_neuron_per_step": spikes / (neurons * timesteps),
                  "sops_per_image": float(total_sops), "macs_per_image": int(total_macs),
                  "pool_adds_per_image": int(sum(op_pool_adds(op) for op in net_ops)),
                  "sop_per_mac": _ratio(total_sops, total_macs),
                  "synapses": int(sum(la["synapses"] for la in layers))},
        "depth_trend": {
            "hidden": rank_trend([la["depth"] for la in hidden],
                                 [la["spikes_per_neuron_per_step"] for la in hidden]),
            "all": rank_trend([la["depth"] for la in layers],
                              [la["spikes_per_neuron_per_step"] for la in layers]),
        },
        "conventions": {"sops": SOP_CONVENTION, "macs": MAC_CONVENTION,
                        "rate": "spikes per neuron per time step, idle steps included",
                        "depth_trend": "rank correlation of rate against depth; 'hidden' "
                                       "leaves out the output (read-out) layer"},
    }
    if y is not None:
        report["snn_accuracy"] = correct / n
    return report


def trend_summary(report: dict) -> str:
    """One line: does activity get sparser with depth (hidden layers, else all)?"""
    trend = report["depth_trend"]
    which, tr = ("hidden", trend["hidden"])
    if tr["verdict"] == "undetermined":
        which, tr = ("all", trend["all"])
    if tr["verdict"] == "undetermined":
        return "activity vs depth: undetermined (too few layers)"
    words = {"sparser": "activity gets sparser with depth",
             "denser": "activity gets denser with depth",
             "flat": "no monotonic trend of activity with depth"}[tr["verdict"]]
    layers = "hidden layers" if which == "hidden" else "spiking layers"
    return (f"{words} (Spearman rho = {tr['spearman_rho']:+.2f}, Kendall tau = "
            f"{tr['kendall_tau']:+.2f}, {tr['n_layers']} {layers})")


def plot(report: dict, path, title: str = "") -> None:
    """Two panels against depth: spikes per neuron per step, and SOPs/MACs. Written as PNG
    to ``path`` (a plain path: callers make it atomic). Matplotlib's Agg canvas is used
    directly, so no global backend is touched."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    layers = report["layers"]
    hidden = [la for la in layers if not la["is_output"]]
    outs = [la for la in layers if la["is_output"]]
    inp = report["input"]

    fig = Figure(figsize=(10, 7.5), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)

    def label(ax, name, depth, value, fmt="{:.3g}"):
        ax.annotate(f"{name}\n{fmt.format(value)}", (depth, value), textcoords="offset points",
                    xytext=(7, 3), fontsize=8, color="0.2", va="bottom",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                          "alpha": 0.75})

    # panel 1: rates (linear: the numbers the trend is about)
    rate = "spikes_per_neuron_per_step"
    ax1.plot([la["depth"] for la in hidden], [la[rate] for la in hidden], "o-",
             color="tab:blue", label="hidden layers")
    if outs:
        ax1.plot([la["depth"] for la in outs], [la[rate] for la in outs], "D",
                 color="tab:red", label="output (read-out)")
    for la in layers:
        label(ax1, la["name"], la["depth"], la[rate], "{:.4f}")
    top = max([la[rate] for la in layers] + [0.0])
    in_rate = inp[rate]
    note = ""
    if in_rate <= 1.5 * top:
        ax1.plot([0], [in_rate], "s", color="tab:gray", mfc="white", label="input spikes")
        label(ax1, "input", 0, in_rate, "{:.4f}")
        top = max(top, in_rate)
    else:
        note = f"; input {in_rate:.3f} (off scale)"
    ax1.set_ylim(0, top * 1.3 or 1.0)
    ax1.set_ylabel("spikes per neuron per time step")
    ax1.grid(True, alpha=0.3)
    ax1.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax1.set_title(f"activity ({report['samples']} test samples, T = {report['timesteps']}"
                  f"{note})", fontsize=10)

    # panel 2: SOP/MAC
    with_ratio = [la for la in layers if la["sop_per_mac"] is not None]
    hid = [la for la in with_ratio if not la["is_output"]]
    ax2.plot([la["depth"] for la in hid], [la["sop_per_mac"] for la in hid], "o-",
             color="tab:green", label="hidden layers")
    out_r = [la for la in with_ratio if la["is_output"]]
    if out_r:
        ax2.plot([la["depth"] for la in out_r], [la["sop_per_mac"] for la in out_r], "D",
                 color="tab:red", label="output (read-out)")
    for la in with_ratio:
        label(ax2, la["name"], la["depth"], la["sop_per_mac"])
    total = report["total"]["sop_per_mac"]
    ax2.axhline(1.0, color="0.4", ls="--", lw=1, label="SOPs = MACs")
    if total is not None:
        ax2.axhline(total, color="tab:purple", ls=":", lw=1.5,
                    label=f"whole network: {total:.3g}")
    ratios = [la["sop_per_mac"] for la in with_ratio if la["sop_per_mac"] > 0]
    if ratios and max(ratios + [1.0]) / min(ratios + [1.0]) > 20:
        ax2.set_yscale("log")
        ax2.set_ylim(top=max(ratios) * 3)
    else:
        ax2.set_ylim(0, max(ratios + [1.0]) * 1.3)
    ax2.set_ylabel(f"SOPs over T = {report['timesteps']} / ANN MACs")
    ax2.set_xlabel("depth (synapse hops from the input)")
    ax2.grid(True, alpha=0.3, which="both")
    ax2.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax2.set_title("synaptic operations per image relative to the ANN's MACs", fontsize=10)
    depths = [0] + [la["depth"] for la in layers]
    ax2.set_xticks(range(min(depths), max(depths) + 1))
    ax2.set_xlim(min(depths) - 0.3, max(depths) + 0.9)

    headline = trend_summary(report).replace("rho", "\u03c1").replace("tau", "\u03c4")
    fig.suptitle(f"{title}\n{headline}" if title else headline, fontsize=11)
    fig.savefig(path, format="png")
