"""How a network's output becomes a class: the decodings a bundle can carry, and the one decision rule.

Every model side uses this rule: the zoo trainers (continuous spike times), the float references,
and the chip's spike record, so a decision means the same thing wherever it is taken.

Spike decodings, of a spiking output layer:
  first_spike     the first output neuron to fire; ties go to the lowest index.
  spike_count     the output neuron with the most spikes; ties go to the earliest first spike, then
                  to the lowest index.
A sample where no output neuron fires is decided as NO_DECISION (-1), which is never a label.
  spike_count_argmax
                  the index of the largest spike count as torch.argmax takes it, and with it the
                  training scripts that score argmax of summed spikes (snnTorch 1.0's
                  functional.accuracy_rate: spk_out.sum(dim=0).max(1)): ties go to the lowest index,
                  and a sample where no output neuron fires is decided as class 0. Use it when the
                  accuracy a model was trained and reported with is that one.

Membrane decodings, of a readout output layer (LI, CubaLI, I: neurons that never spike, whose
membrane v is the output), over the steps of the decoding window:
  max_membrane    the neuron whose v reaches the highest value at any step;
  final_membrane  the neuron with the highest v at the last step;
  mean_membrane   the neuron with the highest mean v (on the chip, the highest integer sum).
Ties go to the lowest index. A membrane decoding always decides.
"""

from __future__ import annotations

import numpy as np

FIRST_SPIKE, SPIKE_COUNT, SPIKE_COUNT_ARGMAX = "first_spike", "spike_count", "spike_count_argmax"
MAX_MEMBRANE, FINAL_MEMBRANE, MEAN_MEMBRANE = "max_membrane", "final_membrane", "mean_membrane"
COUNT_DECODINGS = (SPIKE_COUNT, SPIKE_COUNT_ARGMAX)  # decided by the output's spike counts
SPIKE_DECODINGS = (FIRST_SPIKE,) + COUNT_DECODINGS
MEMBRANE_DECODINGS = (MAX_MEMBRANE, FINAL_MEMBRANE, MEAN_MEMBRANE)
DECODINGS = SPIKE_DECODINGS + MEMBRANE_DECODINGS
NO_DECISION = -1


def decide(first_times: np.ndarray, counts: np.ndarray | None, decoding: str) -> np.ndarray:
    """(samples, outputs) first-spike times (+inf where silent, any unit) and, for the count decodings, spike
    counts -> (samples,) int64 decisions, by a spike decoding."""
    if decoding not in SPIKE_DECODINGS:
        raise ValueError(f"unknown spike decoding {decoding!r}; known: {', '.join(SPIKE_DECODINGS)}")
    first = np.asarray(first_times, dtype=np.float64)
    if decoding == FIRST_SPIKE:
        decision = np.argmin(first, axis=1).astype(np.int64)
        decision[~np.isfinite(first).any(axis=1)] = NO_DECISION
        return decision
    counts = np.asarray(counts)
    if decoding == SPIKE_COUNT_ARGMAX:
        return np.argmax(counts, axis=1).astype(np.int64)
    most = counts == counts.max(axis=1, keepdims=True)
    decision = np.argmin(np.where(most, first, np.inf), axis=1).astype(np.int64)
    decision[counts.max(axis=1) == 0] = NO_DECISION
    return decision


def membrane_scores_by_step(membrane: np.ndarray, decoding: str) -> np.ndarray:
    """(samples, steps, outputs) membrane -> the same shape of scores, column k the decoding's score of each
    output over steps 1..k of the window: the running maximum, v itself, or the running sum (the mean's
    argmax, exact for the chip's integers)."""
    if decoding not in MEMBRANE_DECODINGS:
        raise ValueError(f"unknown membrane decoding {decoding!r}; known: {', '.join(MEMBRANE_DECODINGS)}")
    membrane = np.asarray(membrane, dtype=np.float64)
    if decoding == MAX_MEMBRANE:
        return np.maximum.accumulate(membrane, axis=1)
    if decoding == MEAN_MEMBRANE:
        return np.cumsum(membrane, axis=1)
    return membrane


def decide_membrane(membrane: np.ndarray, decoding: str) -> np.ndarray:
    """(samples, steps, outputs) membrane over the decoding window -> (samples,) int64 decisions, by a
    membrane decoding (argmax: ties go to the lowest index)."""
    membrane = np.asarray(membrane)
    if membrane.shape[1] == 0:
        return np.full(membrane.shape[0], NO_DECISION, np.int64)
    return np.argmax(membrane_scores_by_step(membrane, decoding)[:, -1], axis=1).astype(np.int64)
