"""W . s for a batch of spike vectors, exploiting how few inputs spike in a step."""

from __future__ import annotations

import numpy as np

# Below this fraction of inputs active in a step, adding the spiking inputs' weight columns one by
# one beats a dense matrix product (time-to-first-spike layers are far below it).
SPARSE_ACTIVITY = 0.02


def spike_product(weights: np.ndarray, payload: np.ndarray) -> np.ndarray:
    """(samples, n_in) payloads (bool or graded) times (n_out, n_in) weights -> (samples, n_out) float64."""
    active = np.flatnonzero(payload)
    if active.size > SPARSE_ACTIVITY * payload.size:
        return payload.astype(np.float64) @ weights.astype(np.float64).T
    out = np.zeros((payload.shape[0], weights.shape[0]))
    if active.size == 0:
        return out
    rows, cols = np.divmod(active, payload.shape[1])  # rows come out sorted
    columns = weights.T[cols].astype(np.float64)
    if payload.dtype != bool:
        columns *= payload[rows, cols][:, None]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    out[rows[starts]] = np.add.reduceat(columns, starts, axis=0)
    return out
