"""The float network: a NIR graph read into plain data (the artifact ``stages.load`` returns)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...targets.bundle import TunedFrom
from ..errors import DeployError
from .semantics import Semantics


# NIR's non-spiking neurons, by the spiking neuron whose equations they follow without its threshold.
READOUT_DYNAMICS = {"CubaLI": "CubaLIF", "LI": "LIF", "I": "IF"}


@dataclass(frozen=True)
class Projection:
    """One synapse path into a neuron group: it adds W s + b to the group's input, s being the
    spikes of ``source`` (the network input or a neuron group, the group itself for recurrence).
    ``nodes`` are the NIR synapse nodes composed into W and b (see ``connectivity``); empty when a
    neuron node feeds another directly (W = identity). ``delay``: per synapse, the time units by which
    the path's Delay nodes hold a spike back (None: no Delay on the path)."""

    source: str
    nodes: tuple[str, ...]
    weight: np.ndarray  # (group size, source size)
    bias: np.ndarray  # (group size,)
    delay: np.ndarray | None = None  # (group size, source size), 0 where weight is 0


@dataclass(frozen=True)
class FloatLayer:
    """A neuron node and everything feeding it, in float64, by the neuron's ``kind``, x being the
    sum over its projections of W s + b:

    CubaLIF: tau_syn dI/dt = -I + w_in x;  tau_mem dv/dt = (v_leak - v) + r I;
    LIF:     tau_mem dv/dt = (v_leak - v) + r x   (stored with tau_syn = 0, w_in = 1);
    IF:      dv/dt = r x                          (tau_syn = 0, tau_mem = inf, v_leak = 0);
    spike when v > v_threshold, then reset (see Semantics.reset).
    The readouts (NIR's non-spiking neurons) have their spiking counterpart's dynamics and never fire
    (v_threshold = +inf): their membrane v is the output.
    CubaLI:  as CubaLIF;   LI: as LIF;   I: as IF (dv/dt = r x, no leak).
    """

    name: str  # the neuron node
    projections: tuple[Projection, ...]
    tau_syn: np.ndarray
    tau_mem: np.ndarray
    r: np.ndarray
    w_in: np.ndarray
    v_leak: np.ndarray
    v_threshold: np.ndarray
    v_reset: np.ndarray
    kind: str = "CubaLIF"

    @property
    def size(self) -> int:
        return self.v_threshold.shape[0]

    @property
    def readout(self) -> bool:
        """A readout: non-spiking, its membrane the output (READOUT_DYNAMICS)."""
        return self.kind in READOUT_DYNAMICS

    @property
    def dynamics(self) -> str:
        """The spiking neuron whose equations this layer follows: its own kind, or a readout's counterpart."""
        return READOUT_DYNAMICS.get(self.kind, self.kind)

    @property
    def feed_forward(self) -> Projection:
        """The single projection of a layer in a chain (export, the closed-form reference, ONNX)."""
        if len(self.projections) != 1:
            raise DeployError(f"node {self.name} has {len(self.projections)} incoming projections; "
                              "this step takes a chain of layers")
        return self.projections[0]


@dataclass(frozen=True)
class FloatNetwork:
    """A NIR graph's network in float64: its layers, the semantics it runs with, the file it was read from (name,
    sha256; empty for a graph in memory) and, for a fine-tuned graph, what it was tuned from (its metadata's
    ``TUNED_FROM_KEY``; None: not tuned)."""

    input_name: str
    input_size: int
    layers: tuple[FloatLayer, ...]  # by distance from the input
    output: str  # the layer whose spikes are the network's output
    semantics: Semantics
    source_file: str = ""
    source_sha256: str = ""
    input_shape: tuple[int, ...] = ()  # before flattening, e.g. (2, 34, 34)
    tuned_from: TunedFrom | None = None

    def layer(self, name: str) -> FloatLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


