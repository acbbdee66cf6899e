"""The discrete network: the float discrete-time form of a network at step dt, and the quantized network.

``stages.discretize`` makes a DiscreteNetwork from the float network; ``references.discrete``
simulates it in float64; ``stages.quantize`` turns it into the chip's integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...targets.bundle import IntNetwork, LayerQuantization


@dataclass(frozen=True)
class Discretization:
    """The float discrete-time form of one layer: what the integers approximate.

    ``inputs`` holds, per source, the jump g of u per source spike, (size, source size); ``delays``, per
    source whose synapses have Delay nodes, the extra steps each synapse holds a spike back (same shape,
    integers; a source not named has none): a spike of step n arrives in step n + 1 + delay.
    """

    name: str
    inputs: tuple[tuple[str, np.ndarray], ...]
    alpha_u: np.ndarray
    alpha_v: np.ndarray
    drive: np.ndarray  # c
    threshold: np.ndarray
    reset: str
    fire_once: bool
    bias_source: bool = False  # a constant source the compiler adds for Affine biases (no NIR node)
    readout: bool = False  # a readout (LI, CubaLI, I): threshold +inf, never fires; its membrane is the output
    delays: tuple[tuple[str, np.ndarray], ...] = ()

    def delay_from(self, source: str) -> np.ndarray | None:
        """The delay steps of the synapses from ``source`` (None: none delayed)."""
        return dict(self.delays).get(source)

    @property
    def size(self) -> int:
        return self.threshold.shape[0]


@dataclass(frozen=True)
class DiscreteNetwork:
    """Every population of a network in discrete form: the constant sources its biases need, then its
    layers by depth. ``synapses`` names, per layer, the NIR synapse paths feeding it (for reports);
    ``input_fires_once`` says whether each input channel spikes at most once per sample (a latency code)."""

    input_name: str
    input_size: int
    populations: tuple[Discretization, ...]
    output: str
    dt: float
    num_steps: int
    input_fires_once: bool
    synapses: dict[str, tuple[str, ...]]
    # With --round-delays: the largest |rounded - given| delay, in time units (0: every delay was whole steps).
    delay_rounding_error: float = 0.0

    def population(self, name: str) -> Discretization:
        for disc in self.populations:
            if disc.name == name:
                return disc
        raise KeyError(name)


@dataclass(frozen=True)
class QuantizedNetwork:
    network: IntNetwork
    discrete: DiscreteNetwork
    report: dict[str, LayerQuantization]  # per layer
