"""The spike decodings' rules (targets.decision) on generated outputs full of ties and silent samples."""

import numpy as np
import pytest
import torch

from snn_deploy.targets import decision


def generated(seed: int, samples: int = 400, outputs: int = 5, steps: int = 6):
    """(first-spike steps, +inf where silent; counts) of random sparse output rasters: few spikes, so that counts
    tie often and some samples stay silent."""
    spikes = np.random.default_rng(seed).random((samples, steps, outputs)) < 0.08
    first = np.where(spikes.any(axis=1), spikes.argmax(axis=1), np.inf)
    return first, spikes.sum(axis=1)


@pytest.mark.parametrize("seed", range(5))
def test_spike_count_argmax_is_torchs_argmax(seed):
    first, counts = generated(seed)
    decided = decision.decide(first, counts, decision.SPIKE_COUNT_ARGMAX)
    np.testing.assert_array_equal(decided, torch.as_tensor(counts).argmax(dim=1).numpy())
    silent = counts.max(axis=1) == 0
    assert silent.any() and np.all(decided[silent] == 0)


@pytest.mark.parametrize("seed", range(5))
def test_the_two_count_decodings_part_only_on_ties_and_silence(seed):
    first, counts = generated(seed)
    by_count = decision.decide(first, counts, decision.SPIKE_COUNT)
    by_argmax = decision.decide(first, counts, decision.SPIKE_COUNT_ARGMAX)
    tied = (counts == counts.max(axis=1, keepdims=True)).sum(axis=1) > 1
    silent = counts.max(axis=1) == 0
    np.testing.assert_array_equal(by_count[~tied], by_argmax[~tied])
    assert np.all(by_count[silent] == decision.NO_DECISION)
    # Among tied counts spike_count takes the earliest first spike, which is not always the lowest index.
    live_ties = tied & ~silent
    assert np.any(by_count[live_ties] != by_argmax[live_ties])
    rows = np.flatnonzero(live_ties)
    np.testing.assert_array_equal(first[rows, by_count[rows]],
                                  np.where(counts[rows] == counts[rows].max(axis=1, keepdims=True), first[rows],
                                           np.inf).min(axis=1))
