"""Firing statistics of a comparison (``artifacts.firing``): each layer's spike counts on the chip and in the
float reference, tallied in batches of samples so that memory stays within ``record.BATCH_BYTES`` whatever
the number of samples."""

from __future__ import annotations

import numpy as np

from ...targets import record as record_io
from ...targets.record import SpikeEvents
from ..artifacts.firing import CountTally, FiringStatistics, LayerFiring, histogram


def count_tally(chip: SpikeEvents, reference: SpikeEvents) -> CountTally:
    """The tally of one layer over all samples, batch by batch, each batch's merged into the whole."""
    # Per sample: both (neurons,) int32 count rows, their int64 difference and its magnitude.
    batch = record_io.samples_per_batch(24 * chip.size)
    total = _batch_tally(chip.sample_range(0, 0), reference.sample_range(0, 0))
    for start in range(0, chip.num_samples, batch):
        stop = min(start + batch, chip.num_samples)
        total = total.merged(_batch_tally(chip.sample_range(start, stop), reference.sample_range(start, stop)))
    return total


def _batch_tally(chip: SpikeEvents, reference: SpikeEvents) -> CountTally:
    chip_counts, reference_counts = chip.counts(), reference.counts()
    difference = np.abs(chip_counts.astype(np.int64) - reference_counts)
    return CountTally(samples=chip.num_samples, neurons=chip.size,
                      chip_histogram=histogram(np.bincount(chip_counts.ravel())),
                      reference_histogram=histogram(np.bincount(reference_counts.ravel())),
                      abs_difference=int(difference.sum()), max_abs_difference=int(difference.max(initial=0)),
                      identical_samples=int(np.sum(~difference.any(axis=1))))


def firing_statistics(chip: dict[str, SpikeEvents], discrete: dict[str, SpikeEvents], layer_order) -> FiringStatistics:
    """Every layer of ``layer_order``: the chip's spikes against the discrete float reference's."""
    return FiringStatistics(reference="discrete",
                            layers={name: LayerFiring.of(count_tally(chip[name], discrete[name]))
                                    for name in layer_order})
