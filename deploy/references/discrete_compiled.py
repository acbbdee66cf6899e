"""The discrete reference's batch, compiled: ``schedule.run_batch`` with ``discrete.FLOAT_ARITHMETIC``'s stages, one
numba kernel call per step instead of a dozen numpy passes per population and step.

Its records equal the numpy stages' bit for bit (spikes, u and v; tests/test_reference.py), because every float64
operation is the one numpy does, in the same order, elementwise (numba compiles without fast-math: nothing is
reassociated or contracted into a fused multiply-add):
- a Dense block's product is ``targets.spikes.spike_product``'s: below its SPARSE_ACTIVITY (over the whole batch,
  as there) the kernel sums the weight columns of the active inputs (ascending) as its ``np.add.reduceat`` does,
  the first column plus numpy's pairwise sum of the others; above it the step's product is ``spike_product``
  itself (numpy's BLAS, whose order of summation no kernel of ours could repeat);
- the blocks' products are added to a zeroed activation in connection order, as ``run_batch`` adds them;
- the neuron stage is ``discrete.float_lif_step`` written per neuron.
Batches (and so the sparse/dense choice) are the ones ``schedule.run`` makes for the numpy stages.

Needs numba (the extra "compiled"); ``discrete`` imports this module only for the compiled engine.
"""

from __future__ import annotations

import numba
import numpy as np

from ...targets.schedule import BatchResult, recorded
from ...targets.spikes import SPARSE_ACTIVITY, spike_product

# numpy's PW_BLOCKSIZE (numpy/_core/src/umath/loops_utils.h.src): pairwise summation splits sums longer than this.
PAIRWISE_BLOCK = 128


@numba.njit(cache=True, nogil=True)
def _deliver(payload, counts, dense, products, conn_product, gains, conn_source, conn_target, conn_gain,
             source_start, source_size, cell_start, cell_size, activation, active):
    """Stage 1: every Dense block's product of last step's spikes ``payload`` (samples, sources' neurons) added,
    in connection order, to the zeroed ``activation`` (samples, neurons). A block marked ``dense`` takes its
    product from its columns of ``products``, from ``conn_product[c]`` on (``spike_product``'s); the others sum
    weight columns here. Indices are unsigned (numba tests a signed index for wraparound, which keeps loops from
    vectorizing)."""
    samples = numba.uint64(payload.shape[0])
    activation[:, :] = 0.0
    for c in range(conn_source.size):
        src, tgt = conn_source[c], conn_target[c]
        first_in, n_in = source_start[src], source_size[src]
        first_out, n_out = cell_start[tgt], cell_size[tgt]
        if dense[c]:
            for s in range(samples):
                for o in range(n_out):
                    activation[s, first_out + o] += products[s, conn_product[c] + o]
            continue
        if counts[src] == 0:
            continue  # spike_product's zero product: adding 0.0 changes no sum
        base = conn_gain[c]
        for s in range(samples):
            n = 0
            for i in range(n_in):
                if payload[s, first_in + i]:
                    active[n] = i
                    n += 1
            if n == 0:
                continue  # spike_product's zero row: adding 0.0 changes no sum
            for o in range(n_out):
                # np.add.reduceat's sum of a segment: its first row, plus numpy's pairwise sum of the others.
                total = gains[base + active[0] * n_out + o]
                if n > 1:
                    total = total + _pairwise_sum(gains, base + o, n_out, active, 1, n - 1)
                activation[s, first_out + o] += total


@numba.njit(cache=True, nogil=True)
def _block_sum(gains, offset, stride, active, lo, n):
    """numpy's pairwise summation of at most PAIRWISE_BLOCK terms gains[offset + active[k] * stride], k in
    [lo, lo + n): sequential below 8 terms, else 8 interleaved partial sums joined as a tree, then the rest."""
    if n < 8:
        total = 0.0
        for k in range(lo, lo + n):
            total += gains[offset + active[k] * stride]
        return total
    r = np.empty(8)
    for j in range(8):
        r[j] = gains[offset + active[lo + j] * stride]
    k = 8
    while k < n - (n % 8):
        for j in range(8):
            r[j] += gains[offset + active[lo + k + j] * stride]
        k += 8
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while k < n:
        total += gains[offset + active[lo + k] * stride]
        k += 1
    return total


@numba.njit(cache=True, nogil=True)
def _pairwise_sum(gains, offset, stride, active, lo, n):
    """numpy's pairwise summation (``pairwise_sum_DOUBLE``, numpy/_core/src/umath/loops_utils.h.src: the inner
    loop of an add reduction) of gains[offset + active[k] * stride] for k in [lo, lo + n): blocks of at most
    PAIRWISE_BLOCK terms (``_block_sum``), a longer range split in two halves (the first a multiple of 8) whose
    sums are added. numpy recurses; this walks the same tree with a stack (numba's cache mishandles recursion)."""
    if n <= PAIRWISE_BLOCK:
        return _block_sum(gains, offset, stride, active, lo, n)
    frames = np.empty((64, 3), np.int64)  # (lo, n, halves summed?); depth log2(n / 128) << 64
    values = np.empty(64)
    depth, count = 0, 0
    frames[0, 0], frames[0, 1], frames[0, 2] = lo, n, 0
    depth = 1
    while depth:
        depth -= 1
        start, length, joined = frames[depth, 0], frames[depth, 1], frames[depth, 2]
        if length <= PAIRWISE_BLOCK:
            values[count] = _block_sum(gains, offset, stride, active, start, length)
            count += 1
        elif joined:
            count -= 1
            values[count - 1] = values[count - 1] + values[count]
        else:
            half = length // 2
            half -= half % 8
            frames[depth, 2] = 1  # come back to add the halves' sums
            frames[depth + 1, 0], frames[depth + 1, 1], frames[depth + 1, 2] = start + half, length - half, 0
            frames[depth + 2, 0], frames[depth + 2, 1], frames[depth + 2, 2] = start, half, 0
            depth += 3
    return values[0]


@numba.njit(cache=True, nogil=True)
def _neurons(u, v, fired, activation, alpha_u, alpha_v, drive, threshold, fire_once, subtract, cell_start,
             cell_size, spikes, spike_start, counts, fired_at):
    """Stage 2 for every population: ``discrete.float_lif_step`` per neuron, in place; spikes into ``spikes``
    (samples, sources' neurons) from column ``spike_start`` on, their number per population into ``counts``, and
    their flat indices (sample * population size + neuron) into ``fired_at``, population after population. The
    neuron loop is branch-free (selects) over unsigned indices, so that the compiler vectorizes it."""
    samples = numba.uint64(u.shape[0])
    written = 0
    for p in range(cell_start.size):
        first, size, once, sub = cell_start[p], cell_size[p], fire_once[p], subtract[p]
        count = 0
        for s in range(samples):
            row_count = 0
            for g in range(first, first + size):
                current = alpha_u[g] * u[s, g] + activation[s, g]
                voltage = alpha_v[g] * v[s, g] + current + drive[g]
                held = once and fired[s, g]
                voltage = 0.0 if held else voltage
                spike = (voltage > threshold[g]) and not held
                reset = voltage - threshold[g] if sub else 0.0
                u[s, g] = current
                v[s, g] = reset if spike else voltage
                fired[s, g] = fired[s, g] or spike
                spikes[s, spike_start + g] = spike
                row_count += spike
            if row_count:
                for g in range(first, first + size):
                    if spikes[s, spike_start + g]:
                        fired_at[written] = s * size + (g - first)
                        written += 1
            count += row_count
        counts[p + 1] = count


class _Layout:
    """A FloatChipNetwork flattened: populations side by side on one neuron axis, the input's channels then the
    populations' neurons on one source axis (source 0 the input), the gains transposed in one array."""

    def __init__(self, network):
        pops, conns = network.populations, network.connections
        self.names = [pop.name for pop in pops]
        sizes = np.array([pop.size for pop in pops], np.int64)
        self.cell_start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.uint64)
        self.cell_size = sizes.astype(np.uint64)
        self.num_neurons = int(sizes.sum())
        self.num_inputs = network.input.size
        self.source_size = np.concatenate([[self.num_inputs], sizes]).astype(np.uint64)
        self.source_start = np.concatenate([[0], np.cumsum(self.source_size)[:-1]]).astype(np.uint64)
        index = {pop.name: p for p, pop in enumerate(pops)}
        self.conn_source = np.array([0 if c.source == network.input.name else index[c.source] + 1 for c in conns],
                                    np.uint64)
        self.conn_target = np.array([index[c.target] for c in conns], np.uint64)
        gains = [np.ascontiguousarray(np.asarray(c.gain, np.float64).T).ravel() for c in conns]
        self.conn_gain = np.concatenate([[0], np.cumsum([g.size for g in gains])[:-1]]).astype(np.uint64)
        self.gains = np.concatenate(gains) if gains else np.zeros(0)
        self.gain_matrices = [c.gain for c in conns]
        outputs = [c.gain.shape[0] for c in conns]
        self.conn_product = np.concatenate([[0], np.cumsum(outputs)[:-1]]).astype(np.uint64)
        self.num_products = int(sum(outputs))
        self.active = np.zeros(int(self.source_size.max()), np.uint64)  # a sample's active inputs of one block
        per_neuron = {key: np.concatenate([getattr(pop.disc, key) for pop in pops]).astype(np.float64)
                      for key in ("alpha_u", "alpha_v", "drive", "threshold")}
        self.params = tuple(per_neuron[key] for key in ("alpha_u", "alpha_v", "drive", "threshold"))
        self.fire_once = np.array([pop.disc.fire_once for pop in pops], np.bool_)
        self.subtract = np.array([pop.disc.reset == "subtract" for pop in pops], np.bool_)


def run_batch(network, arithmetic, input_raster: np.ndarray, num_steps: int, record_state: bool = False) -> BatchResult:
    """``schedule.run_batch`` for the float stages (``arithmetic`` is ``discrete``'s; its stages are the kernels')."""
    layout = _Layout(network)
    samples = input_raster.shape[0]
    n_in, num_sources = layout.num_inputs, layout.num_inputs + layout.num_neurons
    u, v = np.zeros((samples, layout.num_neurons)), np.zeros((samples, layout.num_neurons))
    fired = np.zeros((samples, layout.num_neurons), np.bool_)
    activation = np.zeros((samples, layout.num_neurons))
    previous, now = np.zeros((samples, num_sources), np.bool_), np.zeros((samples, num_sources), np.bool_)
    counts_previous = np.zeros(len(layout.names) + 1, np.int64)
    counts_now = counts_previous.copy()
    fired_at = np.zeros(samples * layout.num_neurons, np.int64)
    num_conns = layout.conn_source.size
    dense = np.zeros(num_conns, np.bool_)
    products = np.zeros((samples, layout.num_products))  # the dense blocks' products, side by side
    parts = {name: [] for name in layout.names}
    traces = {name: {} for name in layout.names}
    traced = [recorded(pop, record_state) for pop in network.populations]
    for p, name in enumerate(layout.names):
        if traced[p]:
            traces[name] = {key: np.zeros((samples, num_steps, int(layout.cell_size[p]))) for key in ("u", "v")}
    for t in range(num_steps):
        for c in range(num_conns):
            src = layout.conn_source[c]
            # spike_product's choice, on the whole batch's payload of this block's source.
            dense[c] = counts_previous[src] > SPARSE_ACTIVITY * samples * layout.source_size[src]
            if dense[c]:
                first, column = layout.source_start[src], layout.conn_product[c]
                products[:, column:column + layout.gain_matrices[c].shape[0]] = spike_product(
                    layout.gain_matrices[c], previous[:, first:first + layout.source_size[src]])
        _deliver(previous, counts_previous, dense, products, layout.conn_product, layout.gains, layout.conn_source, layout.conn_target, layout.conn_gain, layout.source_start,
                 layout.source_size, layout.cell_start, layout.cell_size, activation, layout.active)
        now[:, :n_in] = input_raster[:, t]
        counts_now[0] = np.count_nonzero(now[:, :n_in])
        _neurons(u, v, fired, activation, *layout.params, layout.fire_once, layout.subtract, layout.cell_start,
                 layout.cell_size, now, np.uint64(n_in), counts_now, fired_at)
        written = 0
        for p, name in enumerate(layout.names):
            size, count = int(layout.cell_size[p]), int(counts_now[p + 1])
            if count:
                sample, neuron = np.divmod(fired_at[written:written + count], size)
                parts[name].append((sample, np.full(count, t + 1), neuron))
                written += count
            if traced[p]:
                cells = slice(layout.cell_start[p], layout.cell_start[p] + size)
                traces[name]["u"][:, t] = u[:, cells]
                traces[name]["v"][:, t] = v[:, cells]
        previous, now = now, previous
        counts_previous, counts_now = counts_now, counts_previous
    empty = (np.empty(0, np.int64),) * 3
    spikes = {name: tuple(np.concatenate(a) for a in zip(*chunks)) if chunks else empty
              for name, chunks in parts.items()}
    return BatchResult(spikes, {name: {} for name in layout.names}, traces)
