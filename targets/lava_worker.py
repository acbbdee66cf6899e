"""The Lava side of the ``lava`` and ``loihi2`` back ends: a bundle as a Lava 0.10.0 process network.

Runs where Lava is importable: as ``python -m snn_deploy.targets.lava_worker`` in ``.venv-lava``
(driven by ``snn_deploy.targets.lava``, through the files and messages of ``lava_wire``), or
in-process when Lava is already imported.

Lava's models compute in Lava's widths only: a bundle whose target's widths differ is refused
(``check_lava_widths``), naming the width.

The network: a ``RingBuffer`` source plays the input spikes, every connection is Lava's ``Dense``
with the bundle's stored weights, weight_exp, num_weight_bits and num_message_bits (``DelayDense``,
model ``PyDelayDenseModelBitAcc``, with the bundle's per-synapse delays where it has them), and every
population is a ``SampleLif`` (or ``FireOnceLif``) process defined here, whose model inherits Lava's
bit-accurate LIF arithmetic (``AbstractPyLifModelFixed``: decay, 24-bit wrap, clip, bias) unchanged
and adds the subtractive reset, which no Lava 0.10.0 process has.

Many samples per run: sample k (from 0) of a batch occupies the global steps k*N + 1 ... k*N + N,
N = bundle.timing.num_steps, with no gap. On the first step of every sample each population
zeroes u and v (and the fire-once latch) and discards the input it receives on that step: Lava's
Dense sends on step t what it accumulated from the spikes of step t - 1 and overwrites that buffer
every step, so this input is the only thing of the previous sample that can still arrive, at any
depth and in recurrent loops. Every sample thus starts as in bitsim, from zero state with empty
Dense buffers. Global step k*N + s is the sample's step s.

With delayed synapses (longest delay D) a DelayDense holds a spike of the sample's last step N for up
to D more steps, so each sample is followed by D padding steps (k*(N + D) + s is then the sample's step
s): the input is silent in them and every population zeroes its state, ignores its input and sends no
spike. The latest delayed spike of a sample (step N, delay D) arrives in step N + 1 + D, the next
sample's first step, whose input is dropped: every sample starts from empty buffers, as in bitsim.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2HwCfg, Loihi2SimCfg
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.dense.process import DelayDense, Dense
from lava.proc.lif.process import LIFReset
from lava.proc.io.source import RingBuffer
from lava.proc.lif.models import AbstractPyLifModelFixed, PyLifModelBitAcc
from lava.utils import loihi, slurm
from lava.utils.weightutils import SignMode, clip_weights, determine_sign_mode, truncate_weights

from . import fixed_point as fx
from .backends import BackendUnavailable
from .bundle import Bundle, BundleError, DenseConnection, LifPopulation
from .bundle import load as load_bundle
from .lava_wire import (DEFAULT_BATCH_SIZE, PROGRESS_PREFIX, REPORTED_ERRORS, check_inputs,
                        hardware_unavailable_message, read_events)
from .record import SpikeEvents, SpikeRecord
from .record import save as save_record
from .schedule import recorded

# Steps per Lava run() call: between calls the worker reports progress (a call costs ~1 ms).
STEPS_PER_CALL = 2000
POLL_SECONDS = 0.01  # how often a running Lava run is checked for dead processes
# PyDenseModelBitAcc clips every weight to 8 bits: clip_weights(weights, sign_mode, num_bits=8)
# (lava/proc/dense/models.py); the LIF widths are read from the LIF model itself (lava_widths).
DENSE_WEIGHT_BITS = 8


# --- Lava's widths ------------------------------------------------------------------------------

def lava_widths() -> tuple[dict[str, int], dict[str, int]]:
    """(the widths Lava's bit-accurate models compute with, the mantissa widths they declare).

    Read from Lava: ``AbstractPyLifModelFixed.__init__`` sets the state width, decay shift, decay
    offsets and the threshold and activation shifts; ``PyLifModelBitAcc`` declares vth and bias_mant
    with precision 17 and 13. Lava bounds no weight exponent, and its Dense carries graded spikes.
    """
    lif = PyLifModelBitAcc({})
    computed = {"state_bits": lif.uv_bitwidth, "decay_bits": lif.decay_shift, "current_decay_offset": lif.ds_offset,
                "voltage_decay_offset": lif.dm_offset, "threshold_shift": lif.vth_shift,
                "activation_shift": lif.act_shift, "weight_bits": DENSE_WEIGHT_BITS}
    declared = {"threshold_bits": PyLifModelBitAcc.vth.precision,
                "bias_mantissa_bits": PyLifModelBitAcc.bias_mant.precision}
    return computed, declared


def check_lava_widths(bundle: Bundle) -> None:
    """Raise BundleError unless Lava computes in the bundle's widths: those that enter the arithmetic
    equal Lava's, the mantissas no wider than Lava declares."""
    computed, declared = lava_widths()
    for name, lava in {**computed, **declared}.items():
        ours = getattr(bundle.widths, name)
        if ours > lava or (name in computed and ours != lava):
            raise BundleError(f"the {bundle.target} bundle's arithmetic has {name} = {ours}; Lava 0.10.0's "
                              f"bit-accurate models compute with {name} {'=' if name in computed else '<='} {lava}: "
                              "run it on bitsim")


# --- neuron processes ---------------------------------------------------------------------------

class SampleLif(AbstractProcess):
    """Loihi LIF neurons that start every sample from rest (Lava's ``LIFReset`` idea, made exact).

    Unlike Lava's ``LIF``, du, dv and vth are per neuron, as in the bundle, and ``reset`` (one of
    ``fixed_point.RESET_MODES``) says whether a spike sets v to 0 or subtracts vth << 6. Every
    ``sample_steps`` steps, on a sample's first step, u and v are zeroed and that step's input
    (the previous sample's last spikes) is dropped; the last ``padding_steps`` of them are silent
    (state zero, input ignored, no spikes: see the module doc). The model writes what the population did at
    every step to ``record_path`` after step ``total_steps``. ``widths`` (the bundle's, checked to be
    Lava's) are what the model counts wraps and saturations in.
    """

    def __init__(self, *, du: np.ndarray, dv: np.ndarray, vth: np.ndarray, bias_mant: np.ndarray,
                 bias_exp: np.ndarray, reset: str, widths: fx.Widths, sample_steps: int, padding_steps: int,
                 total_steps: int, record_path: str, record_state: bool, name: str) -> None:
        shape = (len(vth),)
        super().__init__(shape=shape, reset=reset, widths=widths, sample_steps=sample_steps,
                         padding_steps=padding_steps, total_steps=total_steps, record_path=record_path,
                         record_state=record_state, name=name)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.u = Var(shape=shape, init=0)
        self.v = Var(shape=shape, init=0)
        self.du = Var(shape=shape, init=du)
        self.dv = Var(shape=shape, init=dv)
        self.vth = Var(shape=shape, init=vth)
        self.bias_mant = Var(shape=shape, init=bias_mant)
        self.bias_exp = Var(shape=shape, init=bias_exp)


class FireOnceLif(SampleLif):
    """``SampleLif`` whose neurons fire at most once per sample (time-to-first-spike neurons).

    After its first spike a neuron holds v = 0 and stays silent; u keeps evolving.
    """

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self.fired = Var(shape=self.u.shape, init=0)


class StepRecorder:
    """What one population did at every step of a run, saved to an npz after the last step.

    Lava's Var.get() sends arrays element by element (~35 us each), so records are kept in the
    process model and written once instead.
    """

    def __init__(self, path: str, total_steps: int, size: int, with_state: bool) -> None:
        self.path = path
        self.total_steps = total_steps
        self.spikes = np.zeros((total_steps, size), bool)
        self.traces = {key: np.zeros((total_steps, size), np.int32) for key in ("u", "v")} if with_state else {}
        self.counters = {"current_wraps": 0, "voltage_saturations": 0}

    def record(self, step: int, spikes: np.ndarray, u: np.ndarray, v: np.ndarray, wrapped: np.ndarray | None,
               saturated: np.ndarray | None) -> None:
        self.spikes[step - 1] = spikes
        for key, value in (("u", u), ("v", v)):
            if key in self.traces:
                self.traces[key][step - 1] = value
        self.counters["current_wraps"] += fx.count(wrapped)
        self.counters["voltage_saturations"] += fx.count(saturated)
        if step == self.total_steps:
            np.savez(self.path, spikes=self.spikes, counters=np.array(json.dumps(self.counters)), **self.traces)


class AbstractSampleLifModel(AbstractPyLifModelFixed):
    """The fixed-point model of ``SampleLif``: Lava's bit-accurate LIF arithmetic, per-sample reset.

    ``subthr_dynamics`` and ``scale_bias`` are Lava's, inherited unchanged, and so is ``reset_voltage``
    for the zero reset; the threshold methods repeat ``PyLifModelBitAcc``'s one-liners (Lava refuses
    to decorate a subclass of an already decorated model). Lava counts no overflows: the wrap and
    saturation masks are computed with ``fixed_point`` from Lava's own state and input of the step.
    """

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    du: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=12)
    dv: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=12)
    vth: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=17)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.effective_vth = 0
        self.subtractive_reset = proc_params["reset"] == fx.RESET_SUBTRACT
        self.sample_steps = proc_params["sample_steps"]
        self.padding_steps = proc_params["padding_steps"]
        self.widths = proc_params["widths"]
        self.recorder = StepRecorder(proc_params["record_path"], proc_params["total_steps"],
                                     proc_params["shape"][0], proc_params["record_state"])

    def scale_threshold(self) -> None:
        self.effective_vth = np.left_shift(self.vth, self.vth_shift)
        self.isthrscaled = True

    def spiking_activation(self) -> np.ndarray:
        return self.v > self.effective_vth

    def reset_voltage(self, spike_vector: np.ndarray) -> None:
        """v = 0 where spiking (Lava's), or v -= vth << 6 there, the reset Lava lacks."""
        if self.subtractive_reset:
            self.v[spike_vector] -= self.effective_vth[spike_vector]
        else:
            super().reset_voltage(spike_vector)

    def start_sample(self) -> None:
        self.u[:] = 0
        self.v[:] = 0

    def integrate(self, activation: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Lava's update of u and v; returns the (wrapped, saturated) masks of this step (None: none)."""
        wrapped = fx.integrate_current(self.widths, self.u, self.du, activation)[1]
        v_before = self.v.copy()
        self.subthr_dynamics(activation_in=activation)
        saturated = fx.integrate_voltage(self.widths, v_before, self.dv, self.u, self.effective_bias)[1]
        return wrapped, saturated

    def fire(self) -> np.ndarray:
        return self.spiking_activation()

    def run_spk(self) -> None:
        activation = self.a_in.recv()
        phase = (self.time_step - 1) % self.sample_steps
        if phase >= self.sample_steps - self.padding_steps:
            # A padding step: delayed spikes of the sample drain from the DelayDense buffers, unheard.
            self.start_sample()
            silence = np.zeros(self.u.shape, bool)
            self.s_out.send(silence)
            self.recorder.record(self.time_step, silence, self.u, self.v, None, None)
            return
        if phase == 0:
            # What arrives now was sent on the previous sample's last step.
            activation = np.zeros_like(activation)
            self.start_sample()
        self.scale_bias()
        if not self.isthrscaled:
            self.scale_threshold()
        wrapped, saturated = self.integrate(activation)
        spikes = self.fire()
        self.reset_voltage(spike_vector=spikes)
        self.s_out.send(spikes)
        self.recorder.record(self.time_step, spikes, self.u, self.v, wrapped, saturated)


@implements(proc=SampleLif, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PySampleLifModel(AbstractSampleLifModel):
    """Bit-accurate model of ``SampleLif``."""


@implements(proc=FireOnceLif, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyFireOnceLifModel(AbstractSampleLifModel):
    """Bit-accurate model of ``FireOnceLif``: as bitsim.lif_step with fire_once."""

    fired: np.ndarray = LavaPyType(np.ndarray, bool)

    def start_sample(self) -> None:
        super().start_sample()
        self.fired[:] = False

    def integrate(self, activation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        wrapped, saturated = super().integrate(activation)
        # A neuron that has fired is refractory for the rest of the sample: v held at 0.
        self.v[self.fired] = 0
        return wrapped, None if saturated is None else saturated & ~self.fired

    def fire(self) -> np.ndarray:
        spikes = self.spiking_activation() & ~self.fired
        self.fired |= spikes
        return spikes


# --- stock bundles: Lava's own LIFReset and Dense ------------------------------------------------

class SpikeSink(AbstractProcess):
    """A host-side probe of one process's spikes (no part of the network the chip runs): what arrived at every
    step, saved to ``record_path`` after step ``total_steps``."""

    def __init__(self, *, size: int, total_steps: int, record_path: str) -> None:
        super().__init__(shape=(size,), total_steps=total_steps, record_path=record_path)
        self.s_in = InPort(shape=(size,))


@implements(proc=SpikeSink, protocol=LoihiProtocol)
@requires(CPU)
class PySpikeSinkModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.recorder = StepRecorder(proc_params["record_path"], proc_params["total_steps"],
                                     proc_params["shape"][0], False)

    def run_spk(self) -> None:
        self.recorder.record(self.time_step, self.s_in.recv() != 0, None, None, None, None)


def is_stock(bundle: Bundle) -> bool:
    """A stock bundle (every population a LIFReset, ``--stock``); BundleError for a mix."""
    stock = [pop.sample_reset for pop in bundle.network.populations]
    if any(stock) and not all(stock):
        raise BundleError("a bundle mixes stock (sample_reset) and other populations; compile it again")
    return bool(stock) and all(stock)


def process_groups(pop: LifPopulation) -> list[np.ndarray]:
    """The neuron indices of each stock process of a population: one per distinct (du, dv, vth)."""
    keys = np.stack([pop.du, pop.dv, pop.vth], axis=1)
    _, group = np.unique(keys, axis=0, return_inverse=True)
    return [np.flatnonzero(group.ravel() == g) for g in range(group.max() + 1)]


def build_stock_network(bundle: Bundle, input_raster: np.ndarray, record_dir: Path) -> "StockNetwork":
    """A stock bundle as Lava's processes: per population one LIFReset per (du, dv, vth) group (reset_interval =
    steps per sample with padding, reset_offset 1), per connection one Dense per pair of groups it joins; the
    padding steps of the input are silent. Each process's spikes go to a SpikeSink."""
    check_lava_widths(bundle)
    num_samples, num_steps, num_inputs = input_raster.shape
    per_sample = bundle.timing.steps_per_sample
    total_steps = num_samples * per_sample
    padded = np.zeros((num_samples, per_sample, num_inputs), np.int32)
    padded[:, :num_steps] = input_raster
    source = RingBuffer(data=np.ascontiguousarray(padded.reshape(total_steps, num_inputs).T))
    groups = {bundle.network.input.name: [(np.arange(num_inputs), source)]}
    sinks = []
    for pop in bundle.network.populations:
        _check_fits(f"population {pop.name!r} bias_mant", pop.bias_mant, np.int16)
        parts = []
        for index in process_groups(pop):
            first = index[0]
            proc = LIFReset(shape=(index.size,), du=int(pop.du[first]), dv=int(pop.dv[first]), vth=int(pop.vth[first]),
                            bias_mant=np.array(pop.bias_mant[index], np.int32), bias_exp=int(pop.bias_exp),
                            reset_interval=per_sample, reset_offset=1, name=f"{pop.name}[{first}]")
            path = record_dir / f"process{len(sinks)}.npz"
            sink = SpikeSink(size=index.size, total_steps=total_steps, record_path=str(path))
            proc.s_out.connect(sink.s_in)
            sinks.append((pop.name, index, sink, path))
            parts.append((index, proc))
        groups[pop.name] = parts
    for conn in bundle.network.connections:
        for rows, target in groups[conn.target]:
            for cols, sender in groups[conn.source]:
                weights = conn.weights[np.ix_(rows, cols)]
                if not weights.any():
                    continue
                dense = make_dense(dataclasses.replace(conn, weights=weights))
                (sender.s_out).connect(dense.s_in)
                dense.a_out.connect(target.a_in)
    return StockNetwork(source, sinks)


@dataclass
class StockNetwork:
    source: RingBuffer
    sinks: list  # (population, neuron indices, SpikeSink, record path)

    def model_map(self) -> dict:
        return {sink: PySpikeSinkModel for _, _, sink, _ in self.sinks}


def run_stock_batch(bundle: Bundle, input_raster: np.ndarray, *, hardware: bool, record_state: bool,
                    on_samples=None) -> dict[str, dict]:
    """One batch of a stock bundle in one Lava run; its padding steps must stay silent (the clock's job)."""
    if record_state:
        raise ValueError("Lava's stock processes do not report u and v: run a stock bundle without --record-state "
                         "(bitsim records them)")
    num_samples, num_steps, _ = input_raster.shape
    per_sample = bundle.timing.steps_per_sample
    with tempfile.TemporaryDirectory(prefix="snn-deploy-lava-records-") as record_dir:
        network = build_stock_network(bundle, input_raster, Path(record_dir))
        report = None if on_samples is None else (lambda steps: on_samples(steps // per_sample))
        cfg = (Loihi2HwCfg(exception_proc_model_map=network.model_map()) if hardware
               else Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=network.model_map()))
        run_steps(network.source, num_samples * per_sample, cfg, report)
        rasters = {pop.name: np.zeros((num_samples, per_sample, pop.size), bool) for pop in bundle.network.populations}
        for name, index, _, path in network.sinks:
            with np.load(path, allow_pickle=False) as data:  # a sink receives a step's spikes in that step
                rasters[name][:, :, index] = data["spikes"].reshape(num_samples, per_sample, index.size)
    if any(r[:, num_steps:].any() for r in rasters.values()):
        raise RuntimeError("a stock bundle's population spiked on a padding step: its clock did not silence it")
    return {name: {"spikes": r[:, :num_steps], "counters": {}, "traces": {}} for name, r in rasters.items()}


# --- building the network -----------------------------------------------------------------------

@dataclass
class LavaNetwork:
    """The processes of one Lava run and where each population's record will be."""

    source: RingBuffer
    populations: dict[str, SampleLif]
    record_paths: dict[str, Path]

    def model_map(self) -> dict:
        """Process -> model for the processes defined here.

        Given by instance, this skips Lava's model search, which would import every module of
        snn_deploy.targets (and re-execute each file as a top-level module) to look for models.
        """
        return {proc: PyFireOnceLifModel if isinstance(proc, FireOnceLif) else PySampleLifModel
                for proc in self.populations.values()}


def build_network(bundle: Bundle, input_raster: np.ndarray, record_dir: Path, record_state: bool) -> LavaNetwork:
    """The bundle's processes for a batch: ``input_raster`` is (samples, steps, channels), step 1 first."""
    check_lava_widths(bundle)
    num_samples, num_steps, num_inputs = input_raster.shape
    padding = delay_padding_steps(bundle)
    per_sample = num_steps + padding
    total_steps = num_samples * per_sample
    padded = np.zeros((num_samples, per_sample, num_inputs), np.int32)
    padded[:, :num_steps] = input_raster
    # Column g - 1 is sent on global step g.
    source = RingBuffer(data=np.ascontiguousarray(padded.reshape(total_steps, num_inputs).T))
    populations, record_paths = {}, {}
    for index, pop in enumerate(bundle.network.populations):
        record_paths[pop.name] = record_dir / f"population{index}.npz"
        populations[pop.name] = make_population(pop, bundle.widths, per_sample, padding, total_steps,
                                                record_paths[pop.name], recorded(pop, record_state))
    senders = {bundle.network.input.name: source.s_out}
    senders.update({name: proc.s_out for name, proc in populations.items()})
    for conn in bundle.network.connections:
        dense = make_dense(conn)
        senders[conn.source].connect(dense.s_in)
        dense.a_out.connect(populations[conn.target].a_in)
    for name in unreachable_populations(bundle):
        # Lava runs only what is connected to the process it is started from (the source).
        bridge = Dense(weights=np.zeros((populations[name].u.shape[0], num_inputs), np.int32))
        source.s_out.connect(bridge.s_in)
        bridge.a_out.connect(populations[name].a_in)
    return LavaNetwork(source, populations, record_paths)


def delay_padding_steps(bundle: Bundle) -> int:
    """The padding steps after each sample in a Lava run: the longest synaptic delay (see the module doc)."""
    return max((conn.max_delay for conn in bundle.network.connections), default=0)


def make_population(pop: LifPopulation, widths: fx.Widths, sample_steps: int, padding_steps: int, total_steps: int,
                    record_path: Path, record_state: bool) -> SampleLif:
    _check_fits(f"population {pop.name!r} bias_mant", pop.bias_mant, np.int16)
    _check_fits(f"population {pop.name!r} bias_exp", pop.bias_exp, np.int16)
    process = FireOnceLif if pop.fire_once else SampleLif
    return process(du=np.array(pop.du, np.int32), dv=np.array(pop.dv, np.int32), vth=np.array(pop.vth, np.int32),
                   bias_mant=np.array(pop.bias_mant, np.int32), bias_exp=np.full(pop.size, pop.bias_exp, np.int32),
                   reset=pop.reset, widths=widths, sample_steps=int(sample_steps), padding_steps=int(padding_steps),
                   total_steps=int(total_steps), record_path=str(record_path), record_state=bool(record_state),
                   name=pop.name)


def _check_fits(what: str, values, dtype) -> None:
    """Lava stores bias_mant and bias_exp as int16 and would wrap larger values silently."""
    info = np.iinfo(dtype)
    values = np.asarray(values)
    if values.size and (values.min() < info.min or values.max() > info.max):
        raise ValueError(f"{what} does not fit Lava's {np.dtype(dtype).name} register")


def make_dense(conn: DenseConnection) -> Dense:
    """Lava's Dense for the block, or its DelayDense (a Dense subclass) where the block has delayed synapses."""
    weights = np.array(conn.weights, np.int32)
    fields = dict(weights=weights, weight_exp=int(conn.weight_exp), num_weight_bits=int(conn.num_weight_bits),
                  num_message_bits=int(conn.num_message_bits),
                  sign_mode=keeping_sign_mode(conn.name, weights, int(conn.num_weight_bits)), name=conn.name)
    if conn.delays is None:
        return Dense(**fields)
    if conn.num_message_bits:
        raise ValueError(f"connection {conn.name!r} is delayed and carries graded spikes; Lava's DelayDense takes "
                         "binary spikes only")
    # DelayDense checks delays.dtype == int (int64 here), and refuses int32.
    return DelayDense(delays=np.array(conn.delays, np.int64), **fields)


def keeping_sign_mode(name: str, weights: np.ndarray, num_weight_bits: int) -> SignMode:
    """The sign mode under which Lava's Dense keeps the bundle's stored weights unchanged.

    Lava clips and truncates the weights once more on its first step. Its own choice of mode can
    change stored weights: mixed weights whose positives truncated to 0 look inhibitory, and the
    inhibitory range ends at -255, so a stored -256 would become -255. Mixed mode keeps them.
    """
    for mode in (determine_sign_mode(weights), SignMode.MIXED):
        if np.array_equal(truncate_weights(clip_weights(weights, mode, num_bits=8), mode, num_weight_bits), weights):
            return mode
    raise ValueError(f"connection {name!r}: the weights are not in the stored form of "
                     f"{num_weight_bits}-bit weights (Lava's Dense would change them)")


def unreachable_populations(bundle: Bundle) -> list[str]:
    """Populations not connected to the input in any direction."""
    neighbours: dict[str, set[str]] = {}
    for conn in bundle.network.connections:
        neighbours.setdefault(conn.source, set()).add(conn.target)
        neighbours.setdefault(conn.target, set()).add(conn.source)
    reached, frontier = {bundle.network.input.name}, [bundle.network.input.name]
    while frontier:
        for name in neighbours.get(frontier.pop(), ()):
            if name not in reached:
                reached.add(name)
                frontier.append(name)
    return [pop.name for pop in bundle.network.populations if pop.name not in reached]


# --- running ------------------------------------------------------------------------------------

class LavaProcessError(RuntimeError):
    """A Lava process raised; the message holds its traceback (Lava only says 'N Exception(s) occurred')."""


def run_config(network: LavaNetwork, hardware: bool):
    if hardware:
        return Loihi2HwCfg(exception_proc_model_map=network.model_map())
    return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=network.model_map())


def run_steps(anchor: AbstractProcess, total_steps: int, run_cfg, on_steps=None) -> None:
    """Run the network of ``anchor`` for ``total_steps`` and always stop it.

    The steps are split over run() calls (one compile) so that ``on_steps(steps_done)`` can report
    progress. A failing Lava process is raised as ``LavaProcessError`` with its traceback.
    """
    failed = False
    try:
        for done in range(0, total_steps, STEPS_PER_CALL):
            steps = min(STEPS_PER_CALL, total_steps - done)
            anchor.run(condition=RunSteps(num_steps=steps, blocking=False), run_cfg=run_cfg)
            _wait_for_run(anchor.runtime)
            if on_steps is not None:
                on_steps(done + steps)
    except LavaProcessError:
        failed = True
        raise
    except RuntimeError as exc:  # Lava's "N Exception(s) occurred. See output above for details."
        tracebacks = _process_tracebacks(anchor.runtime)
        if not tracebacks:
            raise
        failed = True
        raise LavaProcessError(_describe_failure(tracebacks)) from exc
    finally:
        if failed:
            _release_failed_runtime(anchor.runtime)
        else:
            anchor.stop()


def _wait_for_run(runtime) -> None:
    """Wait until the run ends, watching for Lava processes that died.

    Lava reports a process's exception only if every other process finishes the step: one that
    waits for the dead process's spikes blocks, its runtime service never answers, and Lava's own
    wait() would block forever.
    """
    while not any(port.probe() for port in runtime.service_to_runtime):
        tracebacks = _process_tracebacks(runtime)
        if tracebacks:
            raise LavaProcessError(_describe_failure(tracebacks))
        time.sleep(POLL_SECONDS)
    runtime.wait()


def _describe_failure(tracebacks: list[str]) -> str:
    return "a Lava process raised an exception:\n" + "\n".join(tracebacks)


def _process_tracebacks(runtime) -> list[str]:
    """The tracebacks of the Lava processes that raised (Lava keeps them on its actors and only logs them)."""
    if runtime is None:
        return []
    return [actor.exception[1] for actor in runtime._messaging_infrastructure.actors if actor.exception]


def _release_failed_runtime(runtime) -> None:
    """End the processes of a runtime in which a process died, and free their shared memory.

    Lava's stop() would wait forever for the runtime service to confirm. The processes still
    running (this process's children) are blocked on channels of the dead one: they are
    terminated; those Lava's runtime already joined are closed and left alone.
    """
    for actor in runtime._messaging_infrastructure.actors:
        if not actor._is_done:
            actor.terminate()
    runtime._messaging_infrastructure.stop()  # joins the actors, shuts the shared memory down
    runtime._watchdog_manager.stop()
    runtime._is_started = False


def run_batch(bundle: Bundle, input_raster: np.ndarray, *, hardware: bool, record_state: bool,
              on_samples=None) -> dict[str, dict]:
    """Run one batch of samples in one Lava run; returns each population's spikes, counters, traces.

    ``on_samples(n)`` is told how many samples of the batch are complete, after each run() call.
    """
    num_samples, num_steps, _ = input_raster.shape
    with tempfile.TemporaryDirectory(prefix="snn-deploy-lava-records-") as record_dir:
        network = build_network(bundle, input_raster, Path(record_dir), record_state)
        per_sample = num_steps + delay_padding_steps(bundle)
        report = None if on_samples is None else (lambda steps: on_samples(steps // per_sample))
        run_steps(network.source, num_samples * per_sample, run_config(network, hardware), report)
        return {name: read_population_record(path, num_samples, num_steps, per_sample)
                for name, path in network.record_paths.items()}


def read_population_record(path: Path, num_samples: int, num_steps: int, per_sample: int) -> dict:
    """A population's record, its global steps folded into (samples, steps), each sample's padding steps
    (``per_sample`` - ``num_steps``, silent) left out."""
    with np.load(path, allow_pickle=False) as data:
        size = data["spikes"].shape[1]
        fold = (num_samples, per_sample, size)
        return {"spikes": data["spikes"].reshape(fold)[:, :num_steps], "counters": json.loads(str(data["counters"])),
                "traces": {key: data[key].reshape(fold)[:, :num_steps] for key in ("u", "v") if key in data.files}}


def run_bundle(bundle: Bundle, inputs: SpikeEvents, *, hardware: bool = False, record_state: bool = False,
               batch_size: int = DEFAULT_BATCH_SIZE, progress=None) -> SpikeRecord:
    """Run every sample of ``inputs`` in Lava, ``batch_size`` samples per Lava run (see the module doc)."""
    check_inputs(bundle, inputs)
    if hardware:
        require_loihi2(bundle)
    num_steps = bundle.timing.num_steps
    batches = []
    for start in range(0, inputs.num_samples, batch_size):
        stop = min(start + batch_size, inputs.num_samples)
        raster = inputs.raster(slice(start, stop))[:, :num_steps]
        runner = run_stock_batch if is_stock(bundle) else run_batch
        batches.append(runner(bundle, raster, hardware=hardware, record_state=record_state,
                              on_samples=_increments(progress)))
    return assemble_record(bundle, inputs.num_samples, batches, "loihi2" if hardware else "lava", record_state)


def _increments(progress):
    """Turn 'n samples of this batch are done' into progress(newly done samples)."""
    if progress is None:
        return None
    reported = [0]  # samples of this batch already reported

    def report(total: int) -> None:
        if total > reported[0]:
            progress(total - reported[0])
            reported[0] = total
    return report


def assemble_record(bundle: Bundle, num_samples: int, batches: list[dict], backend: str,
                    record_state: bool) -> SpikeRecord:
    """One SpikeRecord from the per-batch population records, samples renumbered from 0."""
    num_steps = bundle.timing.num_steps
    spikes, counters, traces = {}, {}, {}
    for pop in bundle.network.populations:
        parts = [batch[pop.name] for batch in batches]
        rasters = [part["spikes"] for part in parts] or [np.zeros((0, num_steps, pop.size), bool)]
        spikes[pop.name] = SpikeEvents.from_raster(np.concatenate(rasters))
        counters[pop.name] = {}  # as bitsim: no samples, no counters
        for part in parts:
            for key, count in part["counters"].items():
                counters[pop.name][key] = counters[pop.name].get(key, 0) + count
        if recorded(pop, record_state):
            traces[pop.name] = {key: np.concatenate([part["traces"][key] for part in parts]
                                                    or [np.zeros((0, num_steps, pop.size), np.int32)])
                                for key in ("u", "v")}
    return SpikeRecord(backend=backend, bundle_checksum=bundle.checksum, num_samples=num_samples,
                       num_steps=num_steps, spikes=spikes, counters=counters, traces=traces)


def require_loihi2(bundle: Bundle) -> None:
    """Raise BackendUnavailable unless lava-loihi is installed; use SLURM when it is there."""
    if not loihi.is_installed():
        raise BackendUnavailable(hardware_unavailable_message(bundle))
    try:
        on_slurm = slurm.is_available()
    except OSError:  # no `sinfo` on PATH: Lava only catches SubprocessError
        on_slurm = False
    if on_slurm:
        loihi.use_slurm_host()


# --- command line -------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m snn_deploy.targets.lava_worker",
                                     description="Run a bundle's samples in Lava 0.10.0 and write the spike record.")
    parser.add_argument("--bundle", required=True, type=Path, help="bundle .npz (targets.bundle.save)")
    parser.add_argument("--inputs", required=True, type=Path, help="input spikes .npz (targets.lava_wire.write_events)")
    parser.add_argument("--output", required=True, type=Path, help="where to write the spike record (HDF5, targets.record.save)")
    parser.add_argument("--error-file", type=Path, help="on failure, write {kind, message} JSON here")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="samples per Lava run")
    parser.add_argument("--record-state", action="store_true", help="also record u and v at every step")
    parser.add_argument("--hardware", action="store_true", help="run on Loihi 2 (needs lava-loihi)")
    parser.add_argument("--progress", action="store_true",
                        help=f"print '{PROGRESS_PREFIX}N' on stdout when N more samples are done")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        bundle = load_bundle(args.bundle)
        inputs = read_events(args.inputs)
        record = run_bundle(bundle, inputs, hardware=args.hardware, record_state=args.record_state,
                            batch_size=args.batch_size, progress=_print_progress if args.progress else None)
        save_record(record, args.output)
    except (*REPORTED_ERRORS.values(), OSError, LavaProcessError) as exc:
        return _report_failure(args.error_file, type(exc).__name__, str(exc), exit_code=2)
    except Exception:  # anything else: the full traceback is the most useful report
        return _report_failure(args.error_file, "error", traceback.format_exc(), exit_code=1)
    return 0


def _print_progress(samples: int) -> None:
    print(f"{PROGRESS_PREFIX}{samples}", flush=True)


def _report_failure(error_file: Path | None, kind: str, message: str, exit_code: int) -> int:
    print(f"lava_worker: {kind}: {message}", file=sys.stderr)
    if error_file is not None:
        error_file.write_text(json.dumps({"kind": kind, "message": message}))
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
