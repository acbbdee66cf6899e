"""bitsim: the bit-accurate integer simulator of a bundle, batched over samples.

One step of the chip, as Lava 0.10.0 runs it with ``fixed_pt`` models:
  1. every Dense block delivers what it accumulated in the previous step
     (so each Dense stage adds one step of delay, and recurrent loops cannot deadlock);
  2. every LIF population integrates that input (current, then voltage with the new current),
     fires where v > vth << 6, and resets v to 0;
  3. every Dense block accumulates this step's spikes of its source for the next step.
The arithmetic of each stage is in ``fixed_point``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import fixed_point as fx
from .bundle import Bundle, LifPopulation
from .record import SpikeEvents, SpikeRecord

BACKEND = "bitsim"


@dataclass(frozen=True)
class LifState:
    """The per-sample state of one population: current, voltage and the fire-once latch."""

    u: np.ndarray
    v: np.ndarray
    fired: np.ndarray

    @classmethod
    def zeros(cls, num_samples: int, size: int) -> "LifState":
        return cls(np.zeros((num_samples, size), np.int32), np.zeros((num_samples, size), np.int32),
                   np.zeros((num_samples, size), bool))


@dataclass(frozen=True)
class LifStep:
    state: LifState
    spikes: np.ndarray
    wrapped: np.ndarray
    saturated: np.ndarray


def lif_step(pop: LifPopulation, state: LifState, activation: np.ndarray) -> LifStep:
    """One step of a LIF population (a pure function of its parameters, state and input)."""
    u, wrapped = fx.integrate_current(state.u, pop.du, activation)
    v, saturated = fx.integrate_voltage(state.v, pop.dv, u, fx.effective_bias(pop.bias_mant, pop.bias_exp))
    if pop.fire_once:
        # A neuron that has fired is refractory for the rest of the run: v held at 0.
        v = np.where(state.fired, 0, v).astype(np.int32)
        saturated &= ~state.fired
    spikes = fx.fire(v, pop.vth)
    if pop.fire_once:
        spikes &= ~state.fired
    v = np.where(spikes, 0, v).astype(np.int32)
    return LifStep(LifState(u, v, state.fired | spikes), spikes, wrapped, saturated)


def run(bundle: Bundle, inputs: SpikeEvents, *, record_state: bool = False, batch_size: int = 1024,
        progress: Callable[[int], None] | None = None) -> SpikeRecord:
    """Run every sample of ``inputs`` through the bundle; ``progress(n)`` is told of finished samples."""
    net = bundle.network
    if inputs.size != net.input.size:
        raise ValueError(f"input has {inputs.size} channels; the bundle's input "
                         f"{net.input.name!r} has {net.input.size}")
    num_steps = bundle.timing.num_steps
    events = {pop.name: [] for pop in net.populations}
    counters = {pop.name: {"current_wraps": 0, "voltage_saturations": 0} for pop in net.populations}
    traces = {pop.name: {"u": [], "v": []} for pop in net.populations} if record_state else {}

    for start in range(0, inputs.num_samples, batch_size):
        stop = min(start + batch_size, inputs.num_samples)
        batch = _run_batch(bundle, inputs.raster(slice(start, stop)), num_steps, record_state)
        for name, (raster, wraps, saturations, trace) in batch.items():
            sample, step, neuron = np.nonzero(raster)
            events[name].append((sample + start, step + 1, neuron))
            counters[name]["current_wraps"] += wraps
            counters[name]["voltage_saturations"] += saturations
            if record_state:
                traces[name]["u"].append(trace[0])
                traces[name]["v"].append(trace[1])
        if progress is not None:
            progress(stop - start)

    spikes = {}
    for pop in net.populations:
        parts = events[pop.name] or [(np.empty(0, int),) * 3]
        spikes[pop.name] = SpikeEvents.from_arrays(*(np.concatenate(p) for p in zip(*parts)),
                                                   num_samples=inputs.num_samples, num_steps=num_steps,
                                                   size=pop.size)
    if record_state:
        traces = {name: {key: np.concatenate(parts) for key, parts in trace.items()}
                  for name, trace in traces.items()}
    return SpikeRecord(backend=BACKEND, bundle_checksum=bundle.checksum, num_samples=inputs.num_samples,
                       num_steps=num_steps, spikes=spikes, counters=counters, traces=traces)


def _run_batch(bundle: Bundle, input_raster: np.ndarray, num_steps: int, record_state: bool) -> dict:
    net = bundle.network
    num_samples = input_raster.shape[0]
    states = {pop.name: LifState.zeros(num_samples, pop.size) for pop in net.populations}
    spikes_prev = {pop.name: np.zeros((num_samples, pop.size), bool) for pop in net.populations}
    spikes_prev[net.input.name] = np.zeros((num_samples, net.input.size), bool)
    rasters = {pop.name: np.zeros((num_samples, num_steps, pop.size), bool) for pop in net.populations}
    wraps = {pop.name: 0 for pop in net.populations}
    saturations = {pop.name: 0 for pop in net.populations}
    trace = {pop.name: (np.zeros((num_samples, num_steps, pop.size), np.int32),
                        np.zeros((num_samples, num_steps, pop.size), np.int32))
             for pop in net.populations} if record_state else {}

    for t in range(num_steps):
        # Stage 1: Dense blocks deliver last step's accumulation.
        activation = {pop.name: np.zeros((num_samples, pop.size), np.int64) for pop in net.populations}
        for conn in net.connections:
            activation[conn.target] += fx.dense_activation(conn.weights, conn.weight_exp,
                                                           spikes_prev[conn.source], conn.num_message_bits)
        # Stage 2: neurons integrate and fire.
        spikes_now = {net.input.name: input_raster[:, t]}
        for pop in net.populations:
            step = lif_step(pop, states[pop.name], activation[pop.name])
            states[pop.name] = step.state
            spikes_now[pop.name] = step.spikes
            rasters[pop.name][:, t] = step.spikes
            wraps[pop.name] += int(step.wrapped.sum())
            saturations[pop.name] += int(step.saturated.sum())
            if record_state:
                trace[pop.name][0][:, t] = step.state.u
                trace[pop.name][1][:, t] = step.state.v
        # Stage 3: this step's spikes are what the Dense blocks accumulate for the next step.
        spikes_prev = spikes_now

    return {pop.name: (rasters[pop.name], wraps[pop.name], saturations[pop.name], trace.get(pop.name))
            for pop in net.populations}
