"""The discrete reference as a torch function of its gains, for chip-aware fine-tuning (``stages.finetune``).

The same schedule and neuron step as ``references.discrete`` (``targets.schedule``: a Dense block delivers a
spike of step n in step n + 1 + delay; u' = a_u u + a, v' = a_v v + u' + c, spike where v' > theta, then reset),
in float64, so that its forward spikes are the reference's (tests/test_finetune.py). Backward, a spike's
derivative with respect to v - theta is a fast sigmoid's, 1 / (1 + SURROGATE_SLOPE |v - theta| / theta)^2 / theta
(SuperSpike, Zenke & Ganguli 2018, scaled by each neuron's threshold); the reset is not differentiated through
(detached), the usual choice that keeps the gradient from running back along a neuron's own resets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...targets.bundle import split_by_delay
from ..artifacts.discrete import DiscreteNetwork

# The fast sigmoid's steepness, per threshold of distance: 10 puts half the derivative within theta / 10 of theta.
SURROGATE_SLOPE = 10.0


class _Spike(torch.autograd.Function):
    """Heaviside of x = (v - theta) / theta forward; a fast sigmoid's derivative backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (1 + SURROGATE_SLOPE * x.abs()) ** 2


@dataclass(frozen=True)
class TrainableOutput:
    """What a run returns per output: spike counts (samples, neurons), and a readout's membrane (samples, steps,
    neurons; None for a spiking output)."""

    counts: torch.Tensor
    membrane: torch.Tensor | None


def run(discrete: DiscreteNetwork, gains: dict[tuple[str, str], torch.Tensor], raster: torch.Tensor
        ) -> TrainableOutput:
    """The output of ``discrete`` on ``raster`` (samples, steps, input channels), each population's input from
    source s being ``gains[(population, s)]`` (size, source size) in place of its own ``inputs``, where given."""
    samples, num_steps, _ = raster.shape
    pops = discrete.populations
    as_tensor = {p.name: {key: torch.as_tensor(np.asarray(getattr(p, key), np.float64))
                          for key in ("alpha_u", "alpha_v", "drive", "threshold")} for p in pops}
    blocks = []  # (target, source, delay, gains of that delay)
    for p in pops:
        for source, fixed in p.inputs:
            delays = p.delay_from(source)
            gain = gains.get((p.name, source), torch.as_tensor(fixed))
            if delays is None:
                blocks.append((p.name, source, 0, gain))
                continue
            # The delays the schedule splits the block by (``split_by_delay``), each a mask of this tensor.
            for delay, _ in split_by_delay(gain.detach().numpy(), delays):
                blocks.append((p.name, source, delay, gain * torch.as_tensor(delays == delay)))
    zeros = {p.name: raster.new_zeros(samples, p.size) for p in pops}
    zeros[discrete.input_name] = raster.new_zeros(samples, discrete.input_size)
    history = [zeros] * (1 + max((delay for _, _, delay, _ in blocks), default=0))
    u, v = dict(zeros), dict(zeros)
    fired = {p.name: raster.new_zeros(samples, p.size) for p in pops}
    counts = raster.new_zeros(samples, discrete.population(discrete.output).size)
    membrane = []
    for t in range(num_steps):
        activation = {p.name: raster.new_zeros(samples, p.size) for p in pops}
        for target, source, delay, gain in blocks:
            activation[target] = activation[target] + history[delay][source] @ gain.T
        now = {discrete.input_name: raster[:, t]}
        for p in pops:
            c = as_tensor[p.name]
            u[p.name] = c["alpha_u"] * u[p.name] + activation[p.name]
            v_new = c["alpha_v"] * v[p.name] + u[p.name] + c["drive"]
            if p.fire_once:
                v_new = v_new * (1 - fired[p.name])
            if p.readout:
                v[p.name], now[p.name] = v_new, zeros[p.name]
                continue
            spikes = _Spike.apply((v_new - c["threshold"]) / c["threshold"])
            if p.fire_once:
                spikes = spikes * (1 - fired[p.name])
            held = spikes.detach()
            v[p.name] = v_new - c["threshold"] * held if p.reset == "subtract" else v_new * (1 - held)
            fired[p.name] = torch.maximum(fired[p.name], held)
            now[p.name] = spikes
        if discrete.population(discrete.output).readout:
            membrane.append(v[discrete.output])
        else:
            counts = counts + now[discrete.output]
        history = [now] + history[:-1]
    return TrainableOutput(counts, torch.stack(membrane, dim=1) if membrane else None)
