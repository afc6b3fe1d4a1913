"""Build and run the Lava (lava-nc 0.10.0) process graph of a :class:`QuantizedNetwork`.

Only standard lava-nc processes are used, except for networks whose neurons reset by
subtraction (``qnet.reset == "subtract"``): their layers are
:class:`snn2hw.exporters.lava.procs.subtract_lif.LIFResetSubtract`, ``LIFReset`` with Lava's
own models but for the one line that resets v.

* input  -- ``lava.proc.io.source.RingBuffer`` holding the signed input spikes of all
  samples back to back: column ``k*T + j`` is sample ``k``, 0-based step ``j``; at Lava
  step ``t`` (1-based) it emits column ``(t - 1) mod N*T`` (source.py:41-43).
* synapse -- ``lava.proc.sparse.process.Sparse`` (CSR weights) for ``lag == 1``; for
  ``lag > 1`` either ``DelaySparse`` with every delay ``lag - 1`` (the Loihi mapping; a
  spike received at step t is delivered at t+1+d, sparse/models.py:359-372) or, by
  default because DelaySparse's CPU model is ~50x slower, ``Sparse`` followed by
  ``lag - 1`` identity ``Sparse`` relays (see :func:`.graph._connection`).
* layer -- ``lava.proc.lif.process.LIFReset`` (or ``LIFResetSubtract``) with the
  profile's ``neuron.du``/``neuron.dv`` (an integrate-and-fire neuron: 4095/0 for
  fixed_pt, 1/0 for floating_pt), ``reset_interval=T`` and ``reset_offset=(depth + 1) % T``.

Every hardware number of the graph comes from the run's profile (the export's own, or
the shipped profile of the tag for hand-built networks): weight bits, neuron decays,
message bits, and the limits the network is checked against. A profile Lava cannot run
exactly is refused first (:mod:`.limits`, exit 3).
* output -- per recorded layer either a ``lava.proc.io.extractor.Extractor`` (default:
  streams one spike vector per step to this process, drained while the run goes on) or a
  ``lava.proc.io.sink.RingBuffer`` (buffer N*T, read with ``data.get()`` after the run).
  The sink is simple but reading it is slow: ``Var.get`` transfers a Var one element per
  channel message (magma/runtime/runtime.py:603-611), ~25 us per value, i.e. 30 s for
  12k neurons x 100 steps; the Extractor moves whole vectors.

Time mapping (one hop = one Lava step: a synapse sends the buffer computed on the previous
step, then receives): sample k's 0-based local step t is Lava step ``k*T + t + 1`` for
*every* layer, and the sink stores it in column ``k*T + t``. A layer ``depth`` hops from
the input sees sample k's first input at local step ``depth``; LIFReset zeroes u and v at
exactly that step (``time_step % T == (depth + 1) % T``, before the step's input,
lif/models.py:432-436). At local steps ``t < depth`` the layer is still integrating the
tail of the previous sample (or, for sample 0, only its bias), which the reference
simulator treats as idle: those steps are reported as silent. Spikes emitted there cannot
leak into the current sample, because every downstream layer is reset when they would
arrive (depth(target) >= depth(source) + lag, checked in :func:`check_network`).

Conversion options (``qnet.conversion``; :mod:`.conversion`): direct input coding sends
graded integer values through the same RingBuffer and Sparse; an initial potential makes
the layers :class:`snn2hw.exporters.lava.procs.init_lif.LIFResetInit` (the reset between
samples restores it); the membrane read-out adds a ``Monitor`` of the output layer's v;
the pipelined window runs N*T + depth steps and reads every layer from its own window.

Importing this module imports no Lava (Lava's runtime sets the multiprocessing start
method on import); Lava is imported inside the functions that run it, normally only in
the child process :mod:`snn2hw.exporters.lava.worker`.
"""
from __future__ import annotations

# The implementation lives in these modules; this one keeps the names other code imports.
from .checks import (DEFAULT_PROFILES, TAGS, check_network, check_spikes,
                     estimate_step_cost, layer_sizes, pack_input, resolve_profile,
                     synapse_matrix, unpack_output)
from .graph import DELAY, EXTRACTOR_BUFFER, READER, Graph, build_graph
from .limits import LAVA_FIXED, check_profile
from .runtime import END_GRACE, LavaRun, run_graph, run_network
from .watchdog import LavaResult, run_lava

__all__ = ["DEFAULT_PROFILES", "TAGS", "check_network", "check_spikes",
           "estimate_step_cost", "layer_sizes", "pack_input", "resolve_profile",
           "synapse_matrix", "unpack_output", "DELAY", "EXTRACTOR_BUFFER", "READER", "Graph",
           "build_graph", "LAVA_FIXED", "check_profile", "END_GRACE", "LavaRun", "run_graph",
           "run_network", "LavaResult", "run_lava"]
