"""export: a trained zoo model -> a NIR graph, with the semantics NIR leaves out written down.

Both zoo networks are Input -> Affine(W1) -> CubaLIF -> Affine(W2) -> CubaLIF -> Output, time in
units of tau = tau_mem = 1, r = 1, v_leak = 0, v_reset = 0, v_threshold = theta. NIR's CubaLIF
(tau_syn dI/dt = -I + w_in S; tau_mem dv/dt = -v + r I) gives, per input spike of weight w at 0:
- time to first spike (Fast & Deep, Göltz et al. 2021): tau_syn = 1, w_in = 1, so
  v(t) = w t e^{-t}, the Fast & Deep membrane; fire once, first-spike decoding.
- multi-spike (Bacho & Chu 2023): tau_syn = 1/2, w_in = 1/2 (I jumps by w), so
  v(t) = w (e^{-t} - e^{-2t}), the models.multispike kernel; subtractive reset by theta, decisions
  by spike count. The trained model's spike buffer (n_max) has no chip counterpart: the chip keeps
  every spike.
Every parameter is a per-neuron vector: scalars break ``nir.read``'s type check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...targets.files import atomic_path
from .stimulus import graph_encoding
from ..errors import DeployError
from ..artifacts.semantics import METADATA_KEY, Semantics

# Run length of one sample, in tau. Inputs end at t_late = 2.0; the yinyang-ttfs zoo model decides
# by 1.8 tau and its last output spike on the 5000 training samples comes at 2.88 tau.
DEFAULT_HORIZON_TAU = 3.0


def model_semantics(model) -> Semantics:
    from ...models.zoo import MultiSpikeModel

    multi_spike = isinstance(model, MultiSpikeModel)
    return Semantics(time_unit="tau", fire_once=not multi_spike, reset="subtract" if multi_spike else "zero",
                     encoding=graph_encoding(model.encoding, model.dataset),
                     decoding="spike_count" if multi_spike else "first_spike",
                     horizon=model.horizon if multi_spike else model.meta.get("horizon_tau", DEFAULT_HORIZON_TAU))


def to_nir(model):
    """Build the NIR graph of a zoo model (a ``models.zoo.TTFSModel`` or ``MultiSpikeModel``)."""
    import nir

    from ...models.zoo import MultiSpikeModel, TTFSModel

    if not isinstance(model, (TTFSModel, MultiSpikeModel)):
        raise DeployError(f"{model.name} is a {type(model).__name__}, which has no NIR form")
    tau_syn = model.tau_syn / model.tau_mem if isinstance(model, MultiSpikeModel) else 1.0

    nodes = {"input": nir.Input(input_type=np.array([model.weights[0].shape[1]]))}
    edges = []
    previous = "input"
    for index, weight in enumerate(model.weights, start=1):
        size = weight.shape[0]
        ones, zeros = np.ones(size), np.zeros(size)
        nodes[f"fc{index}"] = nir.Affine(weight=np.asarray(weight, dtype=np.float64), bias=zeros.copy())
        nodes[f"lif{index}"] = nir.CubaLIF(tau_syn=ones * tau_syn, tau_mem=ones.copy(), r=ones.copy(),
                                           v_leak=zeros.copy(), v_threshold=ones * model.threshold,
                                           v_reset=zeros.copy(), w_in=ones * tau_syn)
        edges += [(previous, f"fc{index}"), (f"fc{index}", f"lif{index}")]
        previous = f"lif{index}"
    nodes["output"] = nir.Output(output_type=np.array([model.weights[-1].shape[0]]))
    edges.append((previous, "output"))
    metadata = {METADATA_KEY: model_semantics(model).to_json(), "model": model.name}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def export(model, path: str | Path) -> Path:
    """Write the model's NIR graph to ``path`` atomically; check that ``nir.read`` accepts it."""
    import nir

    path = Path(path)
    graph = to_nir(model)
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
        nir.read(tmp)  # the type check every consumer runs: a failure here is our bug, not bad input
    return path
