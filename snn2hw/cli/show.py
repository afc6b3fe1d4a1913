"""The subcommands that show things: ``inspect``, ``ops``, ``profiles``, ``verify``. The
library is imported inside the functions: the command starts (and handles Ctrl-C) before
torch loads."""
from __future__ import annotations

from .printing import json_dump
from .tables import table


def inspect_model(model: str, maxpool: str = "refuse") -> int:
    from ..formats import import_model, is_spiking
    from ..importer import layer_table

    if not is_spiking(model):  # an ONNX model: its nodes first, supported or not
        rows, error = layer_table(model, maxpool)
        print(table(["name", "op", "output shape", "params", "supported", "action"],
                    [[r["name"], r["op"], r["shape"], r["params"],
                      "yes" if r["supported"] else "NO", r["action"]] for r in rows]))
        if error is not None:
            raise error
    from ..snn import lower

    graph = import_model(model, maxpool)
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
    from ..importer import MAX_OPSET, MIN_OPSET
    from ..onnx import ops as onnx_ops

    rows = sorted(((c.op_type, c.domain or "ai.onnx", c.since, c.action)
                   for c in onnx_ops.registered()))
    print(f"Supported ONNX ops (opsets {MIN_OPSET}-{MAX_OPSET}):")
    print(table(["op", "domain", "since", "action"], [list(r) for r in rows]))
    return 0


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


def verify_command(args) -> int:
    from ..quantize.verify import require, verify_file

    ver = verify_file(args.export)
    if args.json:
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
        if ver.readout is not None:
            r = ver.readout
            print(f"membrane read-out of {r['layer']}: one step adds at most {r['rise']} to v "
                  f"<= threshold {r['threshold']}, so count * threshold + v is the "
                  f"accumulated potential unless that falls below {r['lower_clip']}")
    return 0
