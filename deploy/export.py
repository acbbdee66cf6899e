"""export: a trained zoo model -> a NIR graph, with the semantics NIR leaves out written down.

The time-to-first-spike network of Fast & Deep (Göltz et al. 2021) in NIR terms, time in units
of tau (tau = 1):
  Input -> Affine(W1) -> CubaLIF -> Affine(W2) -> CubaLIF -> Output
  with tau_syn = tau_mem = 1, r = 1, w_in = 1, v_leak = 0, v_reset = 0, v_threshold = theta.
NIR's CubaLIF (tau_syn dI/dt = -I + w_in S; tau_mem dv/dt = -v + r I) then gives
v(t) = sum_i w_i (t - t_i) exp(-(t - t_i)), the Fast & Deep membrane. Every parameter is a
per-neuron vector: scalars break ``nir.read``'s type check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..targets.files import atomic_path
from .errors import DeployError
from .network import METADATA_KEY, Semantics

# Run length of one sample, in tau. Inputs end at t_late = 2.0; the yinyang-ttfs zoo model decides
# by 1.8 tau and its last output spike on the 5000 training samples comes at 2.88 tau.
DEFAULT_HORIZON_TAU = 3.0


def model_semantics(model) -> Semantics:
    enc = model.encoding
    kind = getattr(enc, "kind", "ttfs_linear")
    return Semantics(time_unit="tau", fire_once=True, reset="zero",
                     encoding={"kind": kind, "t_early": enc.t_early, "t_late": enc.t_late,
                               "bias_times": [enc.t_bias], "dataset": model.dataset},
                     decoding="first_spike", horizon=model.meta.get("horizon_tau", DEFAULT_HORIZON_TAU))


def to_nir(model):
    """Build the NIR graph of a TTFS zoo model (a ``models.zoo.TTFSModel``)."""
    import nir

    from ..models.zoo import TTFSModel

    if not isinstance(model, TTFSModel):
        raise DeployError(f"{model.name} is a {type(model).__name__}: exporting it to NIR (subtractive reset, "
                          "tau_mem = 2 tau_syn, spike-count decoding) is not supported yet; TTFS models export")

    nodes = {"input": nir.Input(input_type=np.array([model.weights[0].shape[1]]))}
    edges = []
    previous = "input"
    for index, weight in enumerate(model.weights, start=1):
        size = weight.shape[0]
        ones, zeros = np.ones(size), np.zeros(size)
        nodes[f"fc{index}"] = nir.Affine(weight=np.asarray(weight, dtype=np.float64), bias=zeros.copy())
        nodes[f"lif{index}"] = nir.CubaLIF(tau_syn=ones.copy(), tau_mem=ones.copy(), r=ones.copy(),
                                           v_leak=zeros.copy(), v_threshold=ones * model.threshold,
                                           v_reset=zeros.copy(), w_in=ones.copy())
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
