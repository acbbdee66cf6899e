"""compile: float network -> discrete network -> quantized network -> placement -> bundle.

The bundle carries a copy of the target description it was compiled for, so that verify can
estimate energy and latency without the description file.
"""

from __future__ import annotations

import json

import numpy as np

from ...targets.bundle import Bundle, CompileReport, Source, Timing
from ...targets.description import Target
from ..artifacts.network import FloatNetwork
from ..errors import DeployError
from .discretize import discretize, latency_steps, run_steps, snapped_dt
from .place import place, placement_report
from .quantize import quantize

# About 128 steps per tau: a spike lands within 1/128 tau of its exact time, a Yin-Yang sample
# (4 tau) runs in about 510 steps, and the weight mantissa still spans the threshold finely.
DEFAULT_STEPS_PER_TAU = 128


def choose_timing(net: FloatNetwork, steps_per_tau: float = DEFAULT_STEPS_PER_TAU, snap_decay: bool = True,
                  dt: float | None = None, *, decay_bits: int) -> Timing:
    """The given dt (e.g. the step a discrete-time model was trained at), or dt near 1 / steps_per_tau
    snapped so the target's decay (of ``decay_bits``) is exact (unless told not to); enough steps to cover the
    horizon, plus the output's pipeline latency under Euler integration (``discretize.latency_steps``)."""
    if dt is not None:
        if not (np.isfinite(dt) and dt > 0):
            raise DeployError(f"--dt must be a positive time, got {dt}")
    elif not (np.isfinite(steps_per_tau) and 1e-3 <= steps_per_tau <= 1e5):
        raise DeployError(f"--steps-per-tau must be in [0.001, 100000], got {steps_per_tau}")
    else:
        dt = snapped_dt(net, steps_per_tau, decay_bits) if snap_decay else 1.0 / steps_per_tau
    return Timing(dt=dt, num_steps=run_steps(net, dt), time_unit=net.semantics.time_unit,
                  latency_steps=latency_steps(net))


def compile_network(net: FloatNetwork, target: Target, steps_per_tau: float = DEFAULT_STEPS_PER_TAU,
                    snap_decay: bool = True, max_chips: int = 1, dt: float | None = None,
                    split_weights: bool = False) -> Bundle:
    timing = choose_timing(net, steps_per_tau, snap_decay, dt, decay_bits=target.widths.decay_bits)
    quantized = quantize(discretize(net, timing.dt), target, split_weights)
    placement = place(quantized.network, target, max_chips=max_chips)
    source = Source(nir_file=net.source_file, nir_sha256=net.source_sha256,
                    semantics={**json.loads(net.semantics.to_json()), "origin": net.semantics.origin},
                    nodes={layer.name: {"neuron": layer.name,
                                        "projections": [{"source": p.source, "synapses": list(p.nodes)}
                                                        for p in layer.projections]} for layer in net.layers})
    return Bundle(target=target.name, network=quantized.network, placement=placement, timing=timing,
                  widths=target.widths, backends=target.backends,
                  encoding=net.semantics.encoding, decoding=net.semantics.decoding, source=source,
                  report=CompileReport(quantization=quantized.report, placement=placement_report(placement, target),
                                       snapped_dt=snap_decay and dt is None, split_weights=split_weights,
                                       requested_steps_per_tau=steps_per_tau, target_spec=target.spec))
