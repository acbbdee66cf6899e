"""bitsim's compiled engine: the chip's step schedule (``schedule``) with the integer stages of ``fixed_point``,
as numba kernels. Its records equal the numpy engine's (``bitsim``'s reference engine, the readable
specification) bit for bit: every spike, u and v trace and counter (tests/test_bitsim_compiled.py).

Integers are int64 here (weights int32); the numpy engine carries them in float64. Both are exact: every value
stays below 2**53 (see ``fixed_point``), and each stage below is the integer form of the float one (a truncating
decay is a shift toward zero, a negative weight exponent an arithmetic right shift, which floors). The stages are
elementwise, as the hardware's are; the numpy engine's wrap of the 32-bit register is taken over a whole batch,
which differs only for a 32-bit state that lands on +2**31 exactly (no target has one; Lava's is 24 bits).

One kernel call runs a range of samples one after the other, each through all its steps, its whole state in
cache; threads run disjoint ranges of samples (the kernel releases the GIL), and the records are joined in
sample order, so the split changes nothing. The kernel skips only what cannot change a state, a spike, a
counter or a trace:
- a Dense block adds the weight rows of the neurons that spiked (event-driven), and delivers only if one did;
- a population at rest (u = v = 0 everywhere, no bias) without input this step: the stages map that state to
  itself, with no spike, wrap or saturation;
- the remaining steps of a sample once every population is at rest, no spike is in flight in a Dense block
  and no input spike is left.
A delayed block runs as one block per delay (``DenseConnection.delay_groups``), its accumulators a ring of
1 + (the longest delay) slots: a spike of step n with delay d goes to the slot delivered in step n + 1 + d, and
each (block, slot) sum is shifted by the exponent on its own, as Lava's DelayDense shifts each delay's sum.

Needs numba (the extra "compiled"); ``bitsim`` imports this module only when asked for this engine, so
targets/ runs with numpy and nir alone (the Lava worker's environment). Kernels are cached on disk
(numba's ``cache=True``): the first call of a new installation compiles them, later processes load them.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numba
import numpy as np

from . import fixed_point as fx
from .bundle import Bundle
from .record import SpikeEvents
from .schedule import DEFAULT_BATCH_SIZE, check_inputs, recorded

# A thread pays off once it has this many samples: below that, starting it costs more than its share of the
# work (a Yin-Yang sample takes ~70 us on one thread; tools/bench/RESULTS.md).
MIN_SAMPLES_PER_THREAD = 64
# Columns of the cell tables (unsigned: indices the compiler knows are not negative, so that it vectorizes the
# loops over them; a signed index costs a wraparound test per element).
CELL_START, CELL_SIZE = range(2)  # a population's neurons
CONN_WEIGHTS, CONN_ACC, CONN_WIDTH = range(3)  # a connection's weight rows, accumulators and row width
# The source index of the input layer in ``source_ptr``; population p is source p + 1.
INPUT_SOURCE = 0
# Columns of an event row the kernel emits.
EVENT_POP, EVENT_SAMPLE, EVENT_STEP, EVENT_NEURON = range(4)
# Lava's int32 in-place add (fixed_point.ACCUMULATOR_BITS): the sum wraps at 32 bits.
ACCUMULATOR_HALF = 1 << (fx.ACCUMULATOR_BITS - 1)
ACCUMULATOR_MASK = (1 << fx.ACCUMULATOR_BITS) - 1


class _Tables:
    """A bundle's network flattened into the integer arrays the kernel reads."""

    def __init__(self, bundle: Bundle):
        widths, net = bundle.widths, bundle.network
        pops = net.populations
        groups = [group for conn in net.connections for group in conn.delay_groups()]
        conns = [part for _, part in groups]
        self.conn_delay = np.array([delay for delay, _ in groups], np.int64)
        self.ring_slots = 1 + int(self.conn_delay.max(initial=0))
        index = {pop.name: p for p, pop in enumerate(pops)}
        starts = np.cumsum([0] + [pop.size for pop in pops])
        self.pop_names = [pop.name for pop in pops]
        self.cells = np.array([[starts[p], pop.size] for p, pop in enumerate(pops)], np.uint64).reshape(-1, 2)
        self.fire_once = np.array([pop.fire_once for pop in pops], np.bool_)
        self.subtract = np.array([pop.reset == fx.RESET_SUBTRACT for pop in pops], np.bool_)
        # Per neuron, in the stages' integer form: decay(x, d) = T(x (2**decay_bits - d)) is a product and a
        # shift toward zero, so the kernel takes the factors; bias and threshold already shifted.
        du, dv, bias, vth = (np.concatenate([getattr(pop, key) for pop in pops]).astype(np.int64)
                             for key in ("du", "dv", "bias_mant", "vth"))
        bias_exp = np.repeat([pop.bias_exp for pop in pops], [pop.size for pop in pops])
        bias = fx.effective_bias(bias, bias_exp).astype(np.int64)
        self.params = (widths.decay_unity - (du + widths.current_decay_offset),
                       widths.decay_unity - (dv + widths.voltage_decay_offset), bias,
                       fx.effective_threshold(widths, vth).astype(np.int64))
        self.biased = np.array([np.any(bias[starts[p]:starts[p + 1]]) for p in range(len(pops))], np.bool_)
        # Connections grouped by source, so that a spike finds the blocks it feeds.
        source_of = np.array([INPUT_SOURCE if c.source == net.input.name else index[c.source] + 1 for c in conns],
                             np.int64)
        self.source_conns = np.argsort(source_of, kind="stable").astype(np.int64)
        self.source_ptr = np.searchsorted(source_of[self.source_conns], np.arange(len(pops) + 2)).astype(np.uint64)
        self.conn_target = np.array([index[c.target] for c in conns], np.int64)
        self.conn_exp = np.array([c.weight_exp for c in conns], np.int64)
        # Weights stored transposed, (source neuron, target neuron): a spike adds one contiguous row.
        weight_starts = np.cumsum([0] + [c.weights.size for c in conns])
        acc_starts = np.cumsum([0] + [c.weights.shape[0] for c in conns])
        self.conn_cells = np.array([[weight_starts[k], acc_starts[k], c.weights.shape[0]] for k, c in enumerate(conns)],
                                   np.uint64).reshape(-1, 3)
        self.weights = np.concatenate([c.weights.T.ravel() for c in conns] or [np.zeros(0)]).astype(np.int32)
        self.num_accumulators = int(acc_starts[-1])
        self.widths = np.array([widths.decay_bits, widths.activation_shift, widths.state_limit], np.int64)

    def kernel_arguments(self) -> tuple:
        """The arguments of ``_run_samples`` after the inputs."""
        return (self.cells, self.fire_once, self.subtract, self.biased, self.params, self.conn_target, self.conn_exp,
                self.conn_cells, self.weights, self.source_ptr, self.source_conns, self.num_accumulators, self.widths,
                self.conn_delay, self.ring_slots)


@numba.njit(cache=True, nogil=True, inline="always")
def _decay(x, factor, decay_bits):
    """T(x factor / 2**decay_bits), rounding toward zero: an arithmetic shift of |x factor| (fixed_point.decay)."""
    product = x * factor
    # A negative product gets 2**decay_bits - 1 added first, so that the flooring shift rounds it toward zero.
    return (product + ((product >> 63) & ((1 << decay_bits) - 1))) >> decay_bits


@numba.njit(cache=True, nogil=True, inline="always")
def _neuron_stage(fire_once, subtract, stage):
    """One step of the neurons [first, first + size) of one population (fixed_point.integrate_current,
    integrate_voltage, fire, reset; bitsim.lif_step). ``fire_once`` and ``subtract`` are compile-time constants
    (each combination is its own specialization); ``stage`` is (first, size, state, params, widths, spiked,
    counters). Sets ``spiked[i]`` for the i-th neuron if it spiked, adds wraps and saturations to ``counters``;
    returns (spikes, whether any u or v is off zero).

    The loops are branch-free, so that the compiler vectorizes them; the rare wrap is fixed up in a pass of its own.
    """
    first, size, state, params, widths, spiked, counters = stage
    u, v, fired, activation = state
    current_factor, voltage_factor, bias, threshold = params
    decay_bits, activation_shift, state_limit = widths[0], widths[1], widths[2]
    stop = first + size
    outside = 0
    for g in range(first, stop):
        current = _decay(u[g], current_factor[g], decay_bits) + (activation[g] << activation_shift)
        activation[g] = 0
        outside += (current > state_limit) | (current <= -state_limit)
        u[g] = current
    if outside:
        for g in range(first, stop):
            current = u[g]
            if current > state_limit or current <= -state_limit:
                # Lava's int32 add wraps first, then its two-sided state wrap, whose quirk turns -2**(bits-1)
                # into +2**(bits-1).
                current = ((current + ACCUMULATOR_HALF) & ACCUMULATOR_MASK) - ACCUMULATOR_HALF
                if current > state_limit:
                    current -= 2 * state_limit
                    counters[0] += 1
                elif current <= -state_limit:
                    current += 2 * state_limit
                    counters[0] += 1
                u[g] = current
    voltage_limit = state_limit - 1
    saturations = 0
    num_spikes = 0
    moving = 0
    for g in range(first, stop):
        voltage = _decay(v[g], voltage_factor[g], decay_bits) + u[g] + bias[g]
        if fire_once:
            # A fire-once neuron that has fired holds v = 0 (so it neither saturates nor fires).
            voltage = 0 if fired[g] else voltage
        clamped = min(max(voltage, -voltage_limit), voltage_limit)
        saturations += clamped != voltage
        spike = clamped > threshold[g]
        voltage = (clamped - threshold[g] if subtract else 0) if spike else clamped
        v[g] = voltage
        if fire_once:
            fired[g] |= spike
        spiked[g - first] = spike
        num_spikes += spike
        moving |= u[g] | voltage
    counters[1] += saturations
    return num_spikes, moving != 0


@numba.njit(cache=True, nogil=True, inline="always")
def _accumulate(source_neuron, source, source_ptr, source_conns, conn_cells, weights, accumulators, pending, step,
                conn_delay, ring_slots):
    """Stage 3 for one spike of step ``step`` (0-based): add the weight row of ``source_neuron`` to every Dense
    block its source feeds, in the ring slot delivered ``conn_delay`` steps after the next step."""
    for k in range(source_ptr[source], source_ptr[source + 1]):
        c = source_conns[k]
        slot = (step + conn_delay[c]) % ring_slots
        width = conn_cells[c, CONN_WIDTH]
        row = conn_cells[c, CONN_WEIGHTS] + numba.uint64(source_neuron) * width
        acc = conn_cells[c, CONN_ACC]
        for o in range(width):
            accumulators[slot, acc + o] += weights[row + o]
        pending[slot, c] = True


@numba.njit(cache=True, nogil=True)
def _run_samples(first_sample, last_sample, num_steps, input_ptr, input_step, input_channel, cells, fire_once,
                 subtract, biased, params, conn_target, conn_exp, conn_cells, weights, source_ptr, source_conns,
                 num_accumulators, widths, conn_delay, ring_slots, trace_start, u_trace, v_trace):
    """Samples [first_sample, last_sample) through every step of the schedule.

    Returns (events, counters): an (n, 4) int32 array of rows (population, sample, step, neuron) in the order
    sample, step, population, neuron; and (populations, 2) wraps and saturations. Writes the u and v of each
    population p with ``trace_start[p]`` >= 0 to ``u_trace``/``v_trace`` (samples of this range, steps, recorded
    neurons) from that column on; they must come zeroed.
    """
    num_pops, num_conns, num_neurons = cells.shape[0], conn_target.size, params[0].size
    state = (np.zeros(num_neurons, np.int64), np.zeros(num_neurons, np.int64), np.zeros(num_neurons, np.bool_),
             np.zeros(num_neurons, np.int64))
    u, v, fired, activation = state
    accumulators = np.zeros((ring_slots, num_accumulators), np.int64)
    pending = np.zeros((ring_slots, num_conns), np.bool_)
    receiving = np.zeros(num_pops, np.bool_)
    resting = np.zeros(num_pops, np.bool_)
    spiked = np.zeros(num_neurons, np.bool_)
    counters = np.zeros((num_pops, 2), np.int64)
    events = np.zeros((1024, 4), np.int32)
    num_events = 0
    for sample in range(first_sample, last_sample):
        u[:] = 0
        v[:] = 0
        fired[:] = False
        # At rest: u = v = 0 and no bias, which the stages map to itself (no spike, wrap or saturation).
        resting[:] = ~biased
        next_input = input_ptr[sample]
        for t in range(num_steps):
            # Stage 1: the Dense blocks that received spikes due now deliver them, each sum shifted by its exponent.
            slot = (t + ring_slots - 1) % ring_slots  # where the spikes of step t - 1 with delay 0 went
            for c in range(num_conns):
                if not pending[slot, c]:
                    continue
                target = conn_target[c]
                first, acc, width = cells[target, CELL_START], conn_cells[c, CONN_ACC], conn_cells[c, CONN_WIDTH]
                left, right = max(conn_exp[c], 0), max(-conn_exp[c], 0)
                for o in range(width):
                    # (x >> right) << left: a left shift, or an arithmetic right shift (a floor; fixed_point.shift).
                    activation[first + o] += (accumulators[slot, acc + o] >> right) << left
                    accumulators[slot, acc + o] = 0
                pending[slot, c] = False
                receiving[target] = True
            # Stage 2: neurons integrate and fire; stage 3: their spikes go into the Dense blocks they feed.
            for p in range(num_pops):
                if resting[p] and not receiving[p]:
                    continue
                receiving[p] = False
                first, size = cells[p, CELL_START], cells[p, CELL_SIZE]
                # Each combination of the flags runs its own specialization of the stage.
                stage = (first, size, state, params, widths, spiked, counters[p])
                if fire_once[p]:
                    result = _neuron_stage(True, True, stage) if subtract[p] else _neuron_stage(True, False, stage)
                else:
                    result = _neuron_stage(False, True, stage) if subtract[p] else _neuron_stage(False, False, stage)
                num_spikes, moving = result
                resting[p] = not (moving or biased[p])
                column = trace_start[p]
                if column >= 0:
                    u_trace[sample - first_sample, t, column:column + size] = u[first:first + size]
                    v_trace[sample - first_sample, t, column:column + size] = v[first:first + size]
                neuron = 0
                for _ in range(num_spikes):
                    while not spiked[neuron]:
                        neuron += 1
                    if num_events == events.shape[0]:
                        grown = np.zeros((2 * num_events, 4), np.int32)
                        grown[:num_events] = events
                        events = grown
                    events[num_events, EVENT_POP] = p
                    events[num_events, EVENT_SAMPLE] = sample
                    events[num_events, EVENT_STEP] = t + 1
                    events[num_events, EVENT_NEURON] = neuron
                    num_events += 1
                    _accumulate(neuron, p + 1, source_ptr, source_conns, conn_cells, weights, accumulators, pending, t,
                                conn_delay, ring_slots)
                    neuron += 1
            # Stage 3 for the input layer: this step's input spikes.
            while next_input < input_ptr[sample + 1] and input_step[next_input] == t + 1:
                _accumulate(input_channel[next_input], INPUT_SOURCE, source_ptr, source_conns, conn_cells, weights,
                            accumulators, pending, t, conn_delay, ring_slots)
                next_input += 1
            if next_input == input_ptr[sample + 1] and not np.any(pending) and np.all(resting):
                break  # nothing can change in this sample's remaining steps
        # The spikes still in flight never reach the next sample (the per-sample reset).
        for slot in range(ring_slots):
            for c in range(num_conns):
                if pending[slot, c]:
                    acc, width = conn_cells[c, CONN_ACC], conn_cells[c, CONN_WIDTH]
                    accumulators[slot, acc:acc + width] = 0
                    pending[slot, c] = False
    return events[:num_events], counters


# Events whose int64 keys one pass of ``_sorted_inputs`` holds (32 MiB): a run's input can be tens of millions.
KEY_BATCH = 1 << 22


def _sorted_inputs(inputs: SpikeEvents) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-sample offsets, steps and channels of the input events, sorted and without duplicates (a raster has
    each spike once; the numpy engine reads a raster). The steps and channels are the events' own int32 rows
    where they already are so (SpikeEvents keep them sorted), not copies."""
    sample, step, channel = inputs.events
    if sample.size and (sample.min() < 0 or sample.max() >= inputs.num_samples or step.min() < 1
                        or step.max() > inputs.num_steps or channel.min() < 0 or channel.max() >= inputs.size):
        raise ValueError("input spike events lie outside their samples, steps or channels")

    def key(begin: int, end: int) -> np.ndarray:
        return ((sample[begin:end].astype(np.int64) * inputs.num_steps + (step[begin:end] - 1)) * inputs.size
                + channel[begin:end])

    # Strictly increasing keys: sorted, no duplicates (checked in passes overlapping by one event).
    if not all(np.all(np.diff(key(begin, begin + KEY_BATCH + 1)) > 0) for begin in range(0, sample.size, KEY_BATCH)):
        unique = np.unique(key(0, sample.size))
        sample, rest = np.divmod(unique, inputs.num_steps * inputs.size)
        step, channel = np.divmod(rest, inputs.size)
        sample, step, channel = (row.astype(np.int32) for row in (sample, step + 1, channel))
        for row in (step, channel):
            row.setflags(write=False)  # as the events' own rows: the kernel is compiled for one array type
    ptr = np.searchsorted(sample, np.arange(inputs.num_samples + 1, dtype=sample.dtype))
    return ptr.astype(np.int64), np.ascontiguousarray(step), np.ascontiguousarray(channel)


def run(bundle: Bundle, inputs: SpikeEvents, *, record_state: bool = False, batch_size: int = DEFAULT_BATCH_SIZE,
        workers: int | None = None, progress: Callable[[int], None] | None = None) -> tuple[dict, dict, dict]:
    """Every sample of ``inputs`` through the bundle: (spike events, counters, traces) per population, as
    ``schedule.run`` returns them for the numpy engine.

    Batches of at most ``batch_size`` samples run on ``workers`` threads (default: one per core, given at least
    MIN_SAMPLES_PER_THREAD samples each); ``progress(n)`` is told of each finished batch.
    """
    check_inputs(bundle.network, inputs, bundle.timing.num_steps)
    tables = _Tables(bundle)
    num_samples, num_steps = inputs.num_samples, bundle.timing.num_steps
    input_ptr, input_step, input_channel = _sorted_inputs(inputs)
    # The recorded populations' neurons side by side in the traces (schedule.recorded: all, or the readouts).
    traced = [p for p, pop in enumerate(bundle.network.populations) if recorded(pop, record_state)]
    traced_sizes = [int(tables.cells[p, CELL_SIZE]) for p in traced]
    trace_start = np.full(len(tables.pop_names), -1, np.int64)
    trace_start[traced] = np.cumsum([0] + traced_sizes)[:-1]
    record = bool(traced) and num_samples > 0 and num_steps > 0
    trace_shape = (num_samples, num_steps, sum(traced_sizes)) if record else (0, 0, 0)
    u_trace, v_trace = np.zeros(trace_shape, np.int32), np.zeros(trace_shape, np.int32)
    if not record:
        trace_start[:] = -1
    workers = workers or max(1, min(os.cpu_count() or 1, num_samples // MIN_SAMPLES_PER_THREAD))
    batch_size = max(1, min(batch_size, -(-num_samples // workers)))
    starts = range(0, num_samples, batch_size)
    arguments = tables.kernel_arguments()

    def one_batch(start: int):
        stop = min(start + batch_size, num_samples)
        rows = slice(start, stop) if record else slice(0, 0)
        events, counters = _run_samples(start, stop, num_steps, input_ptr, input_step, input_channel, *arguments,
                                        trace_start, u_trace[rows], v_trace[rows])
        # Each population's (3, n) rows, copied out of the kernel's buffer (which grows by doubling) and in
        # SpikeEvents' order: a batch keeps 12 bytes an event, not the buffer's up to 32.
        blocks = [np.ascontiguousarray(events[events[:, EVENT_POP] == p][:, EVENT_SAMPLE:].T)
                  for p in range(len(tables.pop_names))]
        return stop - start, (blocks, counters)

    def reported(batches):
        for done, result in batches:
            if progress is not None:
                progress(done)
            yield result

    if workers == 1:
        results = list(reported(map(one_batch, starts)))
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(reported(pool.map(one_batch, starts)))
    spikes = {}
    for p, name in enumerate(tables.pop_names):
        blocks = [r[0][p] for r in results]
        for r in results:
            r[0][p] = None  # from_blocks lets go of each block as it joins it
        spikes[name] = SpikeEvents.from_blocks(blocks, num_samples, num_steps, int(tables.cells[p, CELL_SIZE]))
    ran = num_samples > 0 and num_steps > 0
    total = sum(r[1] for r in results) if ran else None
    counters = {name: {"current_wraps": int(total[p, 0]), "voltage_saturations": int(total[p, 1])} if ran else {}
                for p, name in enumerate(tables.pop_names)}
    traces = {}
    if record:
        for p, size in zip(traced, traced_sizes):
            start = int(trace_start[p])
            traces[tables.pop_names[p]] = {"u": np.ascontiguousarray(u_trace[:, :, start:start + size]),
                                           "v": np.ascontiguousarray(v_trace[:, :, start:start + size])}
    return spikes, counters, traces
