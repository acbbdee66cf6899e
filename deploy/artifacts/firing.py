"""Firing statistics: how the chip's spike counts are distributed, layer by layer, against the float model's.

Uniform quantization can keep a network's decisions while shifting how much its neurons fire ("Quantization
of SNNs beyond accuracy", 2026, which proposes the Earth Mover's Distance of firing-rate distributions as a
diagnostic). Here a layer's firing-rate distribution is the distribution, over every (neuron, sample) pair of
the layer and the verified samples, of the neuron's spike count in that sample: the run has a fixed length
(num_steps steps of dt), so a count is the rate times the run's duration, and the EMD in spikes per sample is
the EMD in rates times that duration. The float model is the discrete float reference (the trained float
weights on the chip's step schedule, unquantized), the one model whose every spike verify holds beside the
chip's: the difference is quantization's.

Everything rests on integer tallies (``CountTally``) that add up exactly over parts of the samples, so a
verify split into parts, workers or a Dask cluster states the same figures as one pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CountTally:
    """One layer's spike counts over some samples, chip and float reference, as exact integers.

    ``*_histogram[k]`` is the number of (neuron, sample) pairs with k spikes, without trailing zeros.
    ``merged`` adds the tallies of disjoint sets of samples: the tally of their union, exactly."""

    samples: int
    neurons: int
    chip_histogram: tuple[int, ...]
    reference_histogram: tuple[int, ...]
    abs_difference: int  # sum over the pairs of |chip count - reference count|
    max_abs_difference: int
    identical_samples: int  # samples in which every neuron's count is the same on the chip and in the reference

    @property
    def pairs(self) -> int:
        return self.samples * self.neurons

    @property
    def chip_total(self) -> int:
        return _spikes(self.chip_histogram)

    @property
    def reference_total(self) -> int:
        return _spikes(self.reference_histogram)

    def emd_pairs(self) -> int:
        """The Earth Mover's Distance of the two count distributions times the number of pairs, an integer.

        Both distributions sit on the integers with the same mass (``pairs``) on each side, so the 1-D
        Wasserstein distance is the sum over k of |CDF_chip(k) - CDF_reference(k)|, and times ``pairs`` the sum
        of the cumulative histograms' absolute differences."""
        length = max(len(self.chip_histogram), len(self.reference_histogram))
        chip, reference = (np.cumsum(_padded(h, length), dtype=np.int64) for h in
                           (self.chip_histogram, self.reference_histogram))
        return int(np.abs(chip - reference).sum())

    def merged(self, other: CountTally) -> CountTally:
        if other.neurons != self.neurons:
            raise ValueError(f"tallies of {self.neurons} and {other.neurons} neurons do not merge")
        length = max(len(self.chip_histogram), len(other.chip_histogram),
                     len(self.reference_histogram), len(other.reference_histogram))
        return CountTally(
            samples=self.samples + other.samples, neurons=self.neurons,
            chip_histogram=histogram(_padded(self.chip_histogram, length) + _padded(other.chip_histogram, length)),
            reference_histogram=histogram(_padded(self.reference_histogram, length)
                                          + _padded(other.reference_histogram, length)),
            abs_difference=self.abs_difference + other.abs_difference,
            max_abs_difference=max(self.max_abs_difference, other.max_abs_difference),
            identical_samples=self.identical_samples + other.identical_samples)


def histogram(counts: np.ndarray) -> tuple[int, ...]:
    """Per-count frequencies as a tuple of ints without trailing zeros."""
    counts = np.asarray(counts, dtype=np.int64)
    nonzero = np.flatnonzero(counts)
    return tuple(int(n) for n in counts[:nonzero[-1] + 1]) if nonzero.size else ()


def _padded(frequencies: tuple[int, ...], length: int) -> np.ndarray:
    out = np.zeros(length, np.int64)
    out[:len(frequencies)] = frequencies
    return out


def _spikes(frequencies: tuple[int, ...]) -> int:
    return sum(count * pairs for count, pairs in enumerate(frequencies))


@dataclass(frozen=True)
class LayerFiring:
    """One layer's firing, chip against the float reference, over every (neuron, sample) pair (JSON's keys)."""

    emd_spikes: float  # the EMD of the two spike-count distributions, in spikes per sample (CountTally.emd_pairs)
    count_error_mean_abs: float  # mean |chip count - reference count| per neuron and sample
    count_error_max_abs: int
    total_relative_difference: float | None  # (chip spikes - reference spikes) / reference spikes; None: it is silent
    chip_mean_count: float  # spikes per neuron and sample
    reference_mean_count: float
    tally: CountTally  # the exact integers everything above derives from

    @classmethod
    def of(cls, tally: CountTally) -> LayerFiring:
        pairs = max(tally.pairs, 1)  # no samples: no spikes, no distance
        reference = tally.reference_total
        return cls(emd_spikes=tally.emd_pairs() / pairs, count_error_mean_abs=tally.abs_difference / pairs,
                   count_error_max_abs=tally.max_abs_difference,
                   total_relative_difference=(tally.chip_total - reference) / reference if reference else None,
                   chip_mean_count=tally.chip_total / pairs, reference_mean_count=reference / pairs, tally=tally)


@dataclass(frozen=True)
class FiringStatistics:
    """Every population's firing (hidden and output, in network order), chip against ``reference``."""

    reference: str  # the float model the chip's counts are set against: "discrete"
    layers: dict[str, LayerFiring]
