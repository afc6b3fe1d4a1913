"""What the CLI prints after each step: tables and one-line summaries over the steps'
results (no logic)."""
from __future__ import annotations

import json

from .tables import percent, table


def json_dump(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)


def maxpool_summary(cost: dict) -> str:
    delta = 100 * (cost["ann_accuracy"] - cost["original_ann_accuracy_onnxruntime"])
    original = cost["original_ann_accuracy_onnxruntime"]
    return (f"MaxPool converted as average pooling (--maxpool avg): ANN accuracy "
            f"{percent(cost['ann_accuracy'])}, original model with MaxPool "
            f"{percent(original)} (onnxruntime, {cost['samples']} test samples): "
            f"{delta:+.2f} points")


def print_maxpool(rep: dict) -> None:
    if "maxpool" in rep:
        print(maxpool_summary(rep["maxpool"]))


def calibration_tables(rep: dict, header: str) -> None:
    print(header)
    print(table(["layer", "shape", "threshold", "scale", "spikes/neuron/step"],
                [[la["name"], tuple(la["shape"]), la["threshold"], la["scale"],
                  la["spikes_per_neuron_per_step"]] for la in rep["layers"]]))
    ev = rep["evaluation"]
    print(f"\ntest split, {ev['samples']} samples: ANN accuracy {percent(ev['ann_accuracy'])}")
    for t, acc in ev["snn_accuracy"].items():
        print(f"  SNN accuracy at T = {t}: {percent(acc)} ({ev['ties'][t]} ties)")
    print_maxpool(rep)
    for w in rep["warnings"]:
        print(f"warning: {w}")


def _export_evaluation(art) -> None:
    ev = art.report.get("evaluation")
    if not ev:
        return
    print(f"test split, {ev['samples']} samples, T = {ev['timesteps']}: float SNN "
          f"{percent(ev['float_accuracy'])}, {art.qnet.profile} SNN "
          f"{percent(ev['exported_accuracy'])} (difference "
          f"{100 * (ev['exported_accuracy'] - ev['float_accuracy']):+.2f} points)")
    sat = {k: v for k, v in ev.get("saturated_neuron_steps", {}).items() if v}
    if sat:
        print("membrane potential clipped to the state range (neuron-steps): "
              + ", ".join(f"{k}: {v}" for k, v in sat.items()))


def export_tables(art) -> None:
    """The per-layer quantisation table, the resource estimate and the float/fixed
    comparison of an export."""
    est = art.report.get("resources")
    usage = est["layers"] if est else {}
    rows = []
    for la in art.qnet.layers:
        r = la.report
        u = usage.get(la.name, {})
        rows.append([la.name, la.shape, r.get("scale"), la.threshold,
                     r.get("clipped_weights", 0), r.get("limited_by", "-"), la.bias_exp
                     if la.bias_mant is not None else "-", u.get("cores", "-")])
    print(table(["layer", "shape", "scale", "threshold", "clipped", "scale set by",
                 "bias exp", f"{est['profile'] if est else 'chip'} cores"], rows))
    if est:
        tot = est["total"]
        print(f"{est['profile']} estimate: {tot['cores']} cores, {tot['neurons']} neurons, "
              f"{tot['synapses']} synapses -> {est['chips']} chip(s)"
              + ("" if not est["fan_in_violations"] else
                 f"; fan-in too large in {', '.join(est['fan_in_violations'])}"))
    _export_evaluation(art)


def run_table(rep) -> None:
    print(f"{rep.samples} samples, T = {rep.timesteps}, profile {rep.profile}")
    print(table(["", "value"], [
        ["Lava accuracy", percent(rep.lava_accuracy)],
        ["reference accuracy (same input spikes)", percent(rep.reference_accuracy)],
        ["samples identical in every spike train", percent(rep.agreement)],
        ["Lava steps per second", f"{rep.lava_steps_per_second:.1f}"],
    ]))


def sparsity_tables(rep: dict) -> None:
    from ..analysis.sparsity import trend_summary

    inp = rep["input"]
    print(f"{rep['method']} thresholds, test split: {rep['samples']} samples, "
          f"T = {rep['timesteps']}, seed {rep['seed']}; SNN accuracy "
          f"{percent(rep['snn_accuracy'])}")
    print(f"input: {inp['neurons']} neurons, {inp['spikes_per_neuron_per_step']:.4f} "
          f"spikes/neuron/step")

    def row(name, la, depth):
        return [name, depth, la["neurons"], la["spikes_per_neuron_per_step"],
                la["sops_per_image"], la["macs_per_image"], la["sop_per_mac"]]

    rows = [row(la["name"], la, la["depth"]) for la in rep["layers"]]
    rows.append(row("total", rep["total"], "-"))
    print(table(["layer", "depth", "neurons", "spikes/neuron/step", "SOPs/image",
                 "MACs/image", "SOP/MAC"], rows))
    print(trend_summary(rep))
