"""What each CLI subcommand prints; each is a function over library calls."""
from __future__ import annotations

from ..onnx import ops as onnx_ops
from ..fileio import check_output_path, write_text
from ..importer import MAX_OPSET, MIN_OPSET, layer_table
from ..tables import percent, table


def inspect_model(model: str, maxpool: str = "refuse") -> int:
    rows, error = layer_table(model, maxpool)
    print(table(["name", "op", "output shape", "params", "supported", "action"],
                [[r["name"], r["op"], r["shape"], r["params"], "yes" if r["supported"] else "NO",
                  r["action"]] for r in rows]))
    if error is not None:
        raise error
    from ..importer import import_onnx
    from ..snn import lower

    graph = import_onnx(model, maxpool=maxpool)
    net = lower(graph)
    print(f"\n{len(net.layers)} spiking layers, {net.depth} synapse hops from input to "
          f"output:")
    print(table(["spiking layer", "shape", "neurons", "depth", "inputs (source: ops, delay)"],
                [[la.name, la.shape, la.size, la.depth,
                  "; ".join(f"{t.source}: {'+'.join(o.kind for o in t.ops) or 'identity'}"
                            f"{f', delay {t.delay}' if t.delay else ''}" for t in la.terms)]
                 for la in net.layers]))
    _print_import_notes(graph)
    return 0


def _print_import_notes(graph) -> None:
    from ..onnx.maxpool import replaced
    from ..onnx.normalise import KEY

    if replaced(graph):
        print("note: MaxPool converted as average pooling of the same window (--maxpool "
              "avg); calibrate or export with data to see the accuracy cost")
    if KEY in graph.metadata:
        print(f"note: the model's input normalisation {graph.metadata[KEY]} is folded into "
              f"the preprocessing {graph.metadata['snn2hw.preprocess']}")


def print_ops() -> int:
    rows = sorted(((c.op_type, c.domain or "ai.onnx", c.since, c.action)
                   for c in onnx_ops.registered()))
    print(f"Supported ONNX ops (opsets {MIN_OPSET}-{MAX_OPSET}):")
    print(table(["op", "domain", "since", "action"], [list(r) for r in rows]))
    return 0


def calibrate_command(args) -> int:
    from ..artifacts.calibration import save_calibration
    from ..steps.pipeline import calibrate_model

    check_output_path(args.output, (args.model, args.data))
    if args.report:
        check_output_path(args.report, (args.model, args.data, args.output))
    art, net = calibrate_model(args.model, args.data, args.method, args.timesteps,
                               args.samples, args.seed, args.eval_samples,
                               args.eval_timesteps, args.device, args.mean, args.std,
                               args.rate_match, args.reset, args.percentile, args.maxpool,
                               junction=args.junction)
    rep = art.report
    robust = f", {args.percentile:g}th percentile" if args.percentile < 100 else ""
    shared = ", shared junction thresholds" if args.junction == "shared" else ""
    print(f"{rep['method']}{robust}{shared}, reset {args.reset}: T = {args.timesteps}, "
          f"{args.samples} calibration samples, seed {args.seed}, "
          f"input scale {rep['input_scale']:.4g}")
    print(table(["layer", "shape", "threshold", "scale", "spikes/neuron/step"],
                [[la["name"], tuple(la["shape"]), la["threshold"], la["scale"],
                  la["spikes_per_neuron_per_step"]] for la in rep["layers"]]))
    ev = rep["evaluation"]
    print(f"\ntest split, {ev['samples']} samples: ANN accuracy {percent(ev['ann_accuracy'])}")
    for t, acc in ev["snn_accuracy"].items():
        print(f"  SNN accuracy at T = {t}: {percent(acc)} ({ev['ties'][t]} ties)")
    _print_maxpool(rep)
    for w in rep["warnings"]:
        print(f"warning: {w}")
    save_calibration(args.output, art)
    if args.report:
        from .app import json_dump

        write_text(args.report, json_dump(rep) + "\n")
    print(f"wrote {args.output}")
    return 0


def _print_maxpool(rep: dict) -> None:
    if "maxpool" in rep:
        from ..onnx.maxpool import summary

        print(summary(rep["maxpool"]))


def print_profiles() -> int:
    from .. import backends
    from ..hardware import profiles

    rows = []
    for name in profiles.known():
        p = profiles.load(name)
        fx = p.fixed
        own = {} if p.backend == backends.NONE else backends.get(p.backend).describe(p)
        rows.append([name, p.kind, own.get("lava tag", "-"),
                     f"[{fx.weight_min}, {fx.weight_max}]" if fx else "float",
                     f"{fx.threshold_bits} bit << {fx.threshold_shift}" if fx else "float",
                     f"{fx.bias_mantissa_bits} bit, exp {fx.bias_exp_min}-{fx.bias_exp_max}"
                     if fx else "float",
                     f"{fx.state_bits} bit" if fx else "float",
                     f"{p.neuron_du:g}/{p.neuron_dv:g} {'+'.join(p.resets)}",
                     own.get("messages", "-"),
                     f"{p.resources['cores_per_chip']} cores x "
                     f"{p.resources['neurons_per_core']} neurons" if p.resources
                     else (p.resources_profile or "-")])
    print(table(["profile", "kind", "lava tag", "weights", "threshold", "bias", "state",
                 "du/dv, reset", "messages", "resources"], rows))
    print("messages: num_message_bits of the input/hidden/relay synapses of the Lava graph")
    return 0


def _export_tables(art) -> None:
    rep = art.report
    est = rep.get("resources")
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
    ev = rep.get("evaluation")
    if ev:
        print(f"test split, {ev['samples']} samples, T = {ev['timesteps']}: float SNN "
              f"{percent(ev['float_accuracy'])}, {art.qnet.profile} SNN "
              f"{percent(ev['exported_accuracy'])} (difference "
              f"{100 * (ev['exported_accuracy'] - ev['float_accuracy']):+.2f} points)")
        sat = {k: v for k, v in ev.get("saturated_neuron_steps", {}).items() if v}
        if sat:
            print("membrane potential clipped to the state range (neuron-steps): "
                  + ", ".join(f"{k}: {v}" for k, v in sat.items()))


def _lava_warning(art) -> None:
    """Say at export time when the profile names a backend that cannot run it exactly (the
    export is valid for the target; only `snn2hw run` will refuse it)."""
    from .. import backends
    from ..hardware import profiles
    from ..errors import HardwareLimitError

    profile = profiles.load_stored(art.profile_toml, art.qnet.profile)
    if profile.backend == backends.NONE:
        return
    try:
        backends.get(profile.backend).check_profile(profile)
    except HardwareLimitError as exc:
        print(f"warning: `snn2hw run` will refuse this export: {exc.message}")


def export_command(args) -> int:
    from pathlib import Path

    from ..steps.deploy import export_model
    from ..artifacts.export import save_export

    output = args.output or str(Path(args.model).with_suffix("")) + f".{Path(args.profile).stem}.h5"
    check_output_path(output, (args.model, args.data, args.calibration))
    if args.report:
        check_output_path(args.report, (args.model, args.data, output))
    art = export_model(args.model, args.profile, args.calibration, args.data, args.method,
                       args.timesteps, args.samples, args.seed, args.eval_samples,
                       args.device, args.mean, args.std, args.reset, args.percentile,
                       args.maxpool, junction=args.junction)
    print(f"profile {art.qnet.profile}, thresholds from {art.method}")
    _export_tables(art)
    _print_maxpool(art.report)
    from ..quantize.verify import require, verify_artifact

    require(verify_artifact(art), "export")  # no file is written when a guarantee fails
    _lava_warning(art)
    save_export(output, art)
    if args.report:
        from .app import json_dump

        write_text(args.report, json_dump(art.report) + "\n")
    print(f"wrote {output}")
    return 0


def verify_command(args) -> int:
    from ..quantize.verify import require, verify_file

    ver = verify_file(args.export)
    if args.json:
        from .app import json_dump

        print(json_dump(ver.as_dict()))
    elif not ver.fixed:
        print(f"profile {ver.profile} is floating point: no fixed-point registers to check")
    else:
        print(f"profile {ver.profile}: {ver.state_bits}-bit state, input << "
              f"{ver.current_shift}; worst case of one step, in v units")
        print(table(["layer", "input +", "input -", "|bias|", "threshold", "worst",
                     "state max", "headroom bits", "u wraps", "v clips"],
                    [[b.name, b.input_pos, b.input_neg, b.bias, b.threshold, b.worst, b.v_max,
                      f"{b.headroom_bits:.2f}", "yes" if b.u_wraps else "no",
                      "yes" if b.v_clips else "no"] for b in ver.budgets]))
        for problem in ver.problems:
            print(f"fails: {problem}")
    require(ver, str(args.export))
    if not args.json and ver.fixed:
        print("every guarantee holds: u cannot wrap, and no neuron at or below its threshold "
              "can reach the clip of v in one step")
    return 0


def run_command(args) -> int:
    from ..steps.deploy import run_export
    from ..errors import BackendError

    if args.report:
        check_output_path(args.report, (args.export, args.data))
    rep = run_export(args.export, args.data, args.samples, args.timesteps, args.seed,
                     args.timeout, args.device)
    print(f"{rep.samples} samples, T = {rep.timesteps}, profile {rep.profile}")
    print(table(["", "value"], [
        ["Lava accuracy", percent(rep.lava_accuracy)],
        ["reference accuracy (same input spikes)", percent(rep.reference_accuracy)],
        ["samples identical in every spike train", percent(rep.agreement)],
        ["Lava steps per second", f"{rep.lava_steps_per_second:.1f}"],
    ]))
    if args.report:
        from .app import json_dump

        write_text(args.report, json_dump(rep.as_dict()) + "\n")
    if rep.first_mismatch:
        m = rep.first_mismatch
        msg = (f"first mismatch: layer {m['layer']}, sample {m['sample']}, step {m['step']}, "
               f"neuron {m['neuron']} (Lava {m['lava']}, reference {m['reference']})")
        if rep.profile == "loihi_float":
            print(f"note: {msg}; floating-point backends agree only up to rounding")
            return 0
        raise BackendError(f"Lava and the reference fixed-point simulator differ: {msg}")
    print("Lava and the reference simulator agree spike for spike")
    return 0


def report_command(args) -> int:
    from pathlib import Path

    from .. import data, snn
    from ..calibrate.channels import calibrated_network
    from ..fileio import atomic_path
    from ..steps.pipeline import load_calibrated, load_data
    from ..progress import Progress
    from ..analysis.sparsity import analyze, plot, trend_summary

    check_output_path(args.output, (args.model, args.data, args.calibration))
    if args.plot:
        check_output_path(args.plot, (args.model, args.data, args.calibration, args.output))
    art = load_calibrated(args.model, args.calibration, args.maxpool)
    preprocess = data.Preprocess.from_json(art.preprocess)
    if args.mean or args.std:
        from ..onnx.normalise import refuse_explicit

        refuse_explicit(art.graph.metadata, args.mean, args.std)
        preprocess = data.Preprocess(tuple(args.mean) if args.mean else preprocess.mean,
                                     tuple(args.std) if args.std else preprocess.std)
    graph = art.graph
    dataset = load_data(graph, args.data, preprocess)
    x, y = data.take(dataset.x_test, dataset.y_test, args.samples, "evaluation")
    net = calibrated_network(snn.lower(graph), art.calibration)
    with Progress(len(x) * args.timesteps, "simulate") as bar:
        rep = analyze(net, art.calibration.scales, x, args.timesteps, args.seed, y=y,
                      device=args.device, progress=bar,
                      source_scales=art.calibration.source_scales,
                      reset=art.calibration.reset)
    rep = {"model": str(args.model), "calibration": str(args.calibration),
           "method": art.calibration.method, "data": args.data} | rep
    inp = rep["input"]
    print(f"{art.calibration.method} thresholds, test split: {rep['samples']} samples, "
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
    from .app import json_dump

    write_text(args.output, json_dump(rep) + "\n")
    print(f"wrote {args.output}")
    if args.plot:
        with atomic_path(args.plot) as tmp:
            plot(rep, tmp, title=f"{Path(args.model).name}, {art.calibration.method} "
                 "thresholds")
        print(f"wrote {args.plot}")
    return 0
