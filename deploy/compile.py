"""compile: float network -> quantized network -> placement -> bundle."""

from __future__ import annotations

import json
import math

from ..targets.bundle import Bundle, Timing
from ..targets.description import Target
from .network import FloatNetwork
from .place import place
from .quantize import quantize

# 64 steps per tau keeps the time-discretization error of a spike at 1/64 tau while a Yin-Yang
# sample (4 tau) runs in about 260 steps.
DEFAULT_STEPS_PER_TAU = 64


def compile_network(net: FloatNetwork, target: Target, steps_per_tau: int = DEFAULT_STEPS_PER_TAU) -> Bundle:
    quantized = quantize(net, target, steps_per_tau)
    placement = place(quantized.network, target)
    depth = max(quantized.network.layer_depth().values())
    # The run covers the horizon after the last pipeline stage has delivered.
    num_steps = int(math.ceil(net.semantics.horizon * steps_per_tau)) + depth
    timing = Timing(steps_per_tau=steps_per_tau, num_steps=num_steps, time_unit=net.semantics.time_unit)
    source = {"nir_file": net.source_file, "nir_sha256": net.source_sha256,
              "nodes": {layer.name: {"synapse": layer.synapse, "neuron": layer.name} for layer in net.layers},
              "semantics": {**json.loads(net.semantics.to_json()), "origin": net.semantics.origin}}
    return Bundle(target=target.name, network=quantized.network, placement=placement, timing=timing,
                  encoding=net.semantics.encoding, decoding=net.semantics.decoding, source=source,
                  report={"quantization": quantized.report,
                          "placement": {"cores_used": placement.cores_used}})

