"""How output spikes become a class: the decodings a bundle can carry, and the one decision rule.

Every model side uses this rule: the zoo trainers (continuous spike times), the float references,
and the chip's spike record, so a decision means the same thing wherever it is taken.

  first_spike   the first output neuron to fire; ties go to the lowest index.
  spike_count   the output neuron with the most spikes; ties go to the earliest first spike, then
                to the lowest index.

A sample where no output neuron fires is decided as NO_DECISION (-1), which is never a label.
"""

from __future__ import annotations

import numpy as np

FIRST_SPIKE, SPIKE_COUNT = "first_spike", "spike_count"
DECODINGS = (FIRST_SPIKE, SPIKE_COUNT)
NO_DECISION = -1


def decide(first_times: np.ndarray, counts: np.ndarray | None, decoding: str) -> np.ndarray:
    """(samples, outputs) first-spike times (+inf where silent, any unit) and, for spike_count, spike counts
    -> (samples,) int64 decisions."""
    if decoding not in DECODINGS:
        raise ValueError(f"unknown decoding {decoding!r}; known: {', '.join(DECODINGS)}")
    first = np.asarray(first_times, dtype=np.float64)
    if decoding == FIRST_SPIKE:
        decision = np.argmin(first, axis=1).astype(np.int64)
        decision[~np.isfinite(first).any(axis=1)] = NO_DECISION
        return decision
    counts = np.asarray(counts)
    most = counts == counts.max(axis=1, keepdims=True)
    decision = np.argmin(np.where(most, first, np.inf), axis=1).astype(np.int64)
    decision[counts.max(axis=1) == 0] = NO_DECISION
    return decision
