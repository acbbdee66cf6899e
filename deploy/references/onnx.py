"""ONNX export of the discrete-time float reference, for running or inspecting it outside PyTorch.

The graph is ``references.discrete`` (``float_lif_step`` on the step schedule of
``targets.schedule``) written as a torch module and unrolled over a fixed number of steps T:

  every step: each Dense block delivers the previous step's spikes of its source (a @ gain.T);
              then each population integrates and fires, in network order:
                u' = a_u u + a;   v' = a_v v + u' + drive;   (fire-once: v' = 0 once it has fired)
                spike where v' > threshold (fire-once: only the first); v' -> 0 or v' - threshold.

Input ``input_spikes`` (batch, T, inputs) float64 0/1, step n at index n - 1; outputs
``spikes`` (batch, T, outputs) float64 0/1 and ``v`` (batch, T, outputs), the output layer's
membrane after reset (the ``v`` trace of ``references.discrete``), then ``spikes_<layer>`` for every
other layer. Everything is float64, so ONNX Runtime reproduces the numpy reference's spikes.

The batch axis is dynamic; T is not. The loop over steps is Python, so exporting unrolls it: a
graph traced with a symbolic T would still hold exactly the traced number of steps, and the
TorchScript exporter would let it run on longer inputs and silently return only the traced steps.
With T fixed in the input's shape, ONNX Runtime refuses any other length instead.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ..artifacts.discrete import DiscreteNetwork
from ..artifacts.network import FloatNetwork
from ..errors import DeployError
from .discrete import FloatChipNetwork, chip_network

# ai.onnx opset, fixed so that the file does not change with the torch version: the TorchScript
# exporter emits up to 20 (torch 2.13), and onnxruntime runs 18 since 1.14.
OPSET = 18


def _parameter(value) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value, dtype=np.float64))


class DiscreteReference(torch.nn.Module):
    """``references.discrete`` as a torch module over ``num_steps`` steps, float64 throughout."""

    def __init__(self, network: FloatChipNetwork, num_steps: int, output: str):
        super().__init__()
        self.num_steps = num_steps
        self.input_name = network.input.name
        self.populations = [(p.name, p.size, p.disc.reset, p.disc.fire_once) for p in network.populations]
        self.connections = [(c.source, c.target) for c in network.connections]
        self.output = output
        # Buffers, not Parameters: the reference has nothing to train, and buffers export as constants
        # (one each: a Python 0.0 in torch.where would become a new constant in every step).
        self.register_buffer("zero", torch.zeros((), dtype=torch.float64))
        # The gains are stored transposed so that no step spends an op on transposing them.
        for index, conn in enumerate(network.connections):
            self.register_buffer(f"gain_t_{index}", _parameter(conn.gain.T))
        for pop in network.populations:
            for key in ("alpha_u", "alpha_v", "drive", "threshold"):
                self.register_buffer(f"{key}_{pop.name}", _parameter(getattr(pop.disc, key)))

    def _lif_step(self, name: str, reset: str, fire_once: bool, u, v, fired, activation):
        """One step of ``reference.float_lif_step``; ``fired`` is the fire-once latch (bool)."""
        u = getattr(self, f"alpha_u_{name}") * u + activation
        v = getattr(self, f"alpha_v_{name}") * v + u + getattr(self, f"drive_{name}")
        if fire_once:
            v = torch.where(fired, self.zero, v)
        threshold = getattr(self, f"threshold_{name}")
        spikes = v > threshold
        if fire_once:
            spikes = spikes & ~fired
        v = torch.where(spikes, v - threshold if reset == "subtract" else self.zero, v)
        return u, v, fired | spikes, spikes

    def forward(self, input_spikes: torch.Tensor):
        step_inputs = torch.unbind(input_spikes, dim=1)
        if len(step_inputs) != self.num_steps:
            raise ValueError(f"the reference runs {self.num_steps} steps; the input has {len(step_inputs)}")
        batch = input_spikes.shape[0]
        u = {name: input_spikes.new_zeros((batch, size)) for name, size, _, _ in self.populations}
        v = dict(u)
        fired = {name: state.bool() for name, state in u.items()}
        spike_steps = {name: [] for name, _, _, _ in self.populations}
        output_v = []
        # Step 1 delivers nothing: no source has spiked yet.
        activation = dict(u)
        for step_input in step_inputs:
            now = {self.input_name: step_input}
            for name, _, reset, fire_once in self.populations:
                u[name], v[name], fired[name], spikes = self._lif_step(name, reset, fire_once, u[name], v[name],
                                                                       fired[name], activation[name])
                now[name] = spikes.to(input_spikes.dtype)
                spike_steps[name].append(now[name])
            output_v.append(v[self.output])
            activation = self._deliver(now)
        others = [torch.stack(spike_steps[name], dim=1) for name, _, _, _ in self.populations if name != self.output]
        return (torch.stack(spike_steps[self.output], dim=1), torch.stack(output_v, dim=1), *others)

    def _deliver(self, spikes: dict) -> dict:
        """What the Dense blocks deliver in the next step: the spikes of this step times the gains."""
        activation = {}
        for index, (source, target) in enumerate(self.connections):
            delivered = spikes[source] @ getattr(self, f"gain_t_{index}")
            activation[target] = activation[target] + delivered if target in activation else delivered
        return activation


def output_names(net: FloatNetwork) -> list[str]:
    """The graph's outputs, in order: ``spikes``, ``v``, then ``spikes_<layer>`` of every other layer."""
    return ["spikes", "v", *(f"spikes_{layer.name}" for layer in net.layers if layer.name != net.output)]


def reference_module(discrete: DiscreteNetwork, num_steps: int) -> DiscreteReference:
    """The module ``export_onnx`` exports: the float discrete-time reference unrolled over ``num_steps``."""
    if not (isinstance(num_steps, (int, np.integer)) and num_steps >= 1):
        raise DeployError(f"the ONNX reference needs a whole number of steps >= 1, got {num_steps!r}")
    delayed = [disc.name for disc in discrete.populations if disc.delays]
    if delayed:
        raise DeployError(f"node {delayed[0]} has delayed synapses (Delay nodes), which the ONNX reference does not "
                          "model; export a network without Delay nodes")
    return DiscreteReference(chip_network(discrete), int(num_steps), discrete.output).eval()


def _metadata(net: FloatNetwork, dt: float, num_steps: int) -> dict[str, str]:
    """What a reader needs to feed the graph: the step, the length, and the model it came from."""
    return {"snn_deploy.dt": repr(float(dt)), "snn_deploy.num_steps": str(num_steps),
            "snn_deploy.time_unit": net.semantics.time_unit, "snn_deploy.semantics": net.semantics.to_json(),
            "snn_deploy.nir_file": net.source_file, "snn_deploy.nir_sha256": net.source_sha256,
            "snn_deploy.outputs": json.dumps(output_names(net))}


@contextlib.contextmanager
def _single_threaded() -> Iterator[None]:
    """Tracing runs thousands of tiny matmuls; with more than one intra-op thread each one pays a
    thread hand-off, which doubles the export time on a busy machine. Restores the setting after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def export_onnx(net: FloatNetwork, discrete: DiscreteNetwork, num_steps: int, path) -> None:
    """Write the float discrete-time reference of ``net`` (its ``discrete`` form) over ``num_steps`` steps as
    one ONNX file.

    Fixed T (``num_steps``), dynamic batch. Written atomically: a temp file, then a rename.
    """
    import onnx

    from ...targets.files import write_atomic

    module = reference_module(discrete, num_steps)
    example = torch.zeros((2, int(num_steps), net.input_size), dtype=torch.float64)
    buffer = io.BytesIO()
    # The TorchScript exporter (dynamo=False) unrolls the Python loop by tracing: 510 steps of the
    # Yin-Yang network take 12-30 s on a busy 2-core machine; the torch.export-based exporter took
    # 57 s for 40 steps there.
    with _single_threaded():
        torch.onnx.export(module, (example,), buffer, dynamo=False, opset_version=OPSET,
                          input_names=["input_spikes"], output_names=output_names(net),
                          dynamic_axes={name: {0: "batch"} for name in ["input_spikes", *output_names(net)]})
    model = onnx.load_from_string(buffer.getvalue())
    for key, value in _metadata(net, discrete.dt, num_steps).items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    write_atomic(Path(path), model.SerializeToString())
