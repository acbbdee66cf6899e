"""The float network: a NIR graph read into plain data, with every semantic choice made explicit.

NIR records the equations of each node but not how a network is meant to run: the time unit,
whether neurons fire once (time-to-first-spike) or many times, the reset mode, how inputs are
encoded and outputs decoded. snn-deploy writes those into the graph's metadata on export
(``metadata["snn_deploy"]``, a JSON string) and reads them back here; a choice that is neither
in the metadata nor given as an option is an error, never a silent default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DeployError

METADATA_KEY = "snn_deploy"
SEMANTICS_VERSION = 1
RESET_MODES = ("zero", "subtract")
DECODINGS = ("first_spike", "spike_count")
SPIKE_KINDS = ("dirac", "pulse")


@dataclass(frozen=True)
class Semantics:
    """What NIR leaves unsaid, stated.

    time_unit: the unit of every time constant and spike time ("tau": the model's own time
        constant; "s": seconds).
    fire_once: neurons emit at most one spike (TTFS); later threshold crossings are ignored.
    reset: "zero" (v = v_reset after a spike) or "subtract" (v -= v_threshold).
    encoding: how data become input spike times, e.g. {"kind": "ttfs_linear", "t_early": 0.15,
        "t_late": 2.0, "bias_times": [0.9]}: t = t_early + x (t_late - t_early), plus bias spikes.
    decoding: "first_spike" (the first output neuron to fire is the decision) or "spike_count".
    horizon: how long a sample runs, in time units.
    spike: what one input spike of weight w is. "dirac": an impulse of area w, as NIR's equations
        read (a LIF jumps by r w / tau). "pulse": a pulse of height w lasting one time step, area
        w dt, as discrete-time simulators treat a spike (a LIF jumps by about r w dt / tau).
    origin: for each field, where the choice came from ("metadata" or "option").
    """

    time_unit: str
    fire_once: bool
    reset: str
    encoding: dict[str, Any]
    decoding: str
    horizon: float
    spike: str = "dirac"
    origin: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        body = {"semantics_version": SEMANTICS_VERSION, "time_unit": self.time_unit,
                "fire_once": self.fire_once, "reset": self.reset, "encoding": self.encoding,
                "decoding": self.decoding, "horizon": self.horizon, "spike": self.spike}
        return json.dumps(body, sort_keys=True)


@dataclass(frozen=True)
class FloatLayer:
    """A synapse node (Affine/Linear) feeding a neuron node, in float64, by the neuron's ``kind``:

    CubaLIF: tau_syn dI/dt = -I + w_in (W s + b);  tau_mem dv/dt = (v_leak - v) + r I;
    LIF:     tau_mem dv/dt = (v_leak - v) + r (W s + b)   (stored with tau_syn = 0, w_in = 1);
    IF:      dv/dt = r (W s + b)                          (tau_syn = 0, tau_mem = inf, v_leak = 0);
    spike when v > v_threshold, then reset (see Semantics.reset).
    """

    name: str  # the CubaLIF node
    synapse: str  # the Affine/Linear node
    source: str  # the layer (or input) feeding the synapse
    weight: np.ndarray  # (size, source size)
    bias: np.ndarray
    tau_syn: np.ndarray
    tau_mem: np.ndarray
    r: np.ndarray
    w_in: np.ndarray
    v_leak: np.ndarray
    v_threshold: np.ndarray
    v_reset: np.ndarray
    kind: str = "CubaLIF"

    @property
    def size(self) -> int:
        return self.weight.shape[0]


@dataclass(frozen=True)
class FloatNetwork:
    input_name: str
    input_size: int
    layers: tuple[FloatLayer, ...]
    output: str  # the layer whose spikes are the network's output
    semantics: Semantics
    source_file: str = ""
    source_sha256: str = ""


def read_nir(path: str | Path):
    """nir.read with every failure turned into a one-line DeployError naming the file."""
    import nir

    path = Path(path)
    if not path.is_file():
        raise DeployError(f"NIR file not found: {path}")
    try:
        return nir.read(path)
    except OSError:
        raise DeployError(f"{path} is not a NIR file (not readable as HDF5)") from None
    except (KeyError, ValueError, TypeError, AssertionError, AttributeError, IndexError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise DeployError(f"{path} is a malformed NIR graph: {message}") from None


def semantics_from_metadata(metadata: dict, overrides: dict[str, Any] | None = None) -> Semantics:
    """Resolve the semantics: options override the graph's metadata; anything missing is an error."""
    stored: dict[str, Any] = {}
    raw = (metadata or {}).get(METADATA_KEY)
    if raw is not None:
        if isinstance(raw, bytes):
            raw = raw.decode()
        try:
            stored = json.loads(str(raw))
        except json.JSONDecodeError:
            raise DeployError(f"graph metadata '{METADATA_KEY}' is not valid JSON") from None
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    values, origin = {}, {}
    needed = {"time_unit": "--time-unit", "fire_once": "--fire-once/--multi-spike", "reset": "--reset zero|subtract",
              "decoding": "--decoding first_spike|spike_count", "horizon": "--duration",
              "spike": "--spike dirac|pulse"}
    missing = []
    for key, option in needed.items():
        if key in overrides:
            values[key], origin[key] = overrides[key], "option"
        elif key in stored:
            values[key], origin[key] = stored[key], "metadata"
        else:
            missing.append(f"{key} ({option})")
    # How data become input spikes matters only when a data set is fed in (verify, run --data).
    values["encoding"] = stored.get("encoding", {})
    origin["encoding"] = "metadata" if "encoding" in stored else "absent: inputs must be given as spikes"
    if missing:
        raise DeployError("the graph does not state " + ", ".join(missing)
                          + "; give them as options (NIR leaves them open and snn-deploy does not guess)")
    if values["reset"] not in RESET_MODES:
        raise DeployError(f"reset mode {values['reset']!r} is not one of {', '.join(RESET_MODES)}")
    if values["decoding"] not in DECODINGS:
        raise DeployError(f"decoding {values['decoding']!r} is not one of {', '.join(DECODINGS)}")
    if values["spike"] not in SPIKE_KINDS:
        raise DeployError(f"spike kind {values['spike']!r} is not one of {', '.join(SPIKE_KINDS)}")
    if not (np.isfinite(values["horizon"]) and values["horizon"] > 0):
        raise DeployError(f"horizon (--duration) must be a positive time, got {values['horizon']}")
    return Semantics(origin=origin, encoding=values["encoding"], **{k: values[k] for k in needed})


def _vector(node_name: str, field_name: str, value, size: int) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        array = np.full(size, float(array))
    array = array.reshape(-1)
    if array.shape != (size,):
        raise DeployError(f"node {node_name}: {field_name} has shape {array.shape}, expected ({size},)")
    if not np.all(np.isfinite(array)):
        raise DeployError(f"node {node_name}: {field_name} contains NaN or infinity")
    return array


def _check_positive(node_name: str, field_name: str, array: np.ndarray) -> None:
    if np.any(array <= 0):
        bad = float(array[array <= 0][0])
        raise DeployError(f"node {node_name}: {field_name} must be > 0, got {bad:g}")


def from_graph(graph, overrides: dict[str, Any] | None = None, source_file: str = "",
               source_sha256: str = "") -> FloatNetwork:
    """Read a chain Input -> (Affine|Linear -> CubaLIF|LIF|IF)+ -> Output into a FloatNetwork."""
    import nir

    nodes, edges = graph.nodes, graph.edges
    successors: dict[str, list[str]] = {}
    for src, dst in edges:
        if src not in nodes or dst not in nodes:
            raise DeployError(f"edge {src} -> {dst} names a node the graph does not have")
        successors.setdefault(src, []).append(dst)
    inputs = [n for n, node in nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise DeployError(f"the graph needs exactly one Input node, it has {len(inputs)}")
    semantics = semantics_from_metadata(getattr(graph, "metadata", {}) or {}, overrides)

    input_name = inputs[0]
    input_size = int(np.prod(nodes[input_name].input_type["input"]))
    layers: list[FloatLayer] = []
    current, current_size = input_name, input_size
    while True:
        nexts = successors.get(current, [])
        if len(nexts) != 1:
            raise DeployError(f"node {current} feeds {len(nexts)} nodes; this importer takes a chain")
        synapse_name = nexts[0]
        synapse = nodes[synapse_name]
        if isinstance(synapse, nir.Output):
            break
        if not isinstance(synapse, (nir.Affine, nir.Linear)):
            raise DeployError(f"node {synapse_name} is a {type(synapse).__name__}; expected Affine or Linear here")
        weight = np.asarray(synapse.weight, dtype=np.float64)
        if weight.ndim != 2 or weight.shape[1] != current_size:
            raise DeployError(f"node {synapse_name}: weight shape {weight.shape} does not take {current_size} inputs")
        if not np.all(np.isfinite(weight)):
            raise DeployError(f"node {synapse_name}: weight contains NaN or infinity")
        size = weight.shape[0]
        bias = _vector(synapse_name, "bias", getattr(synapse, "bias", 0.0), size)
        after = successors.get(synapse_name, [])
        if len(after) != 1 or not isinstance(nodes[after[0]], (nir.CubaLIF, nir.LIF, nir.IF)):
            kinds = ", ".join(type(nodes[a]).__name__ for a in after) or "nothing"
            raise DeployError(f"node {synapse_name} feeds {kinds}; expected one CubaLIF, LIF or IF")
        neuron_name = after[0]
        params = _neuron_parameters(neuron_name, nodes[neuron_name], size)
        layers.append(FloatLayer(name=neuron_name, synapse=synapse_name, source=current,
                                 weight=weight, bias=bias, kind=type(nodes[neuron_name]).__name__, **params))
        current, current_size = neuron_name, size
    if not layers:
        raise DeployError("the graph has no Affine -> CubaLIF layer")
    return FloatNetwork(input_name=input_name, input_size=input_size, layers=tuple(layers), output=layers[-1].name,
                        semantics=semantics, source_file=source_file, source_sha256=source_sha256)


def _neuron_parameters(name: str, neuron, size: int) -> dict[str, np.ndarray]:
    """The CubaLIF-shaped parameters of a CubaLIF, LIF or IF node (see FloatLayer)."""
    import nir

    def get(key: str, default=None) -> np.ndarray:
        value = getattr(neuron, key, None)
        return _vector(name, key, default if value is None else value, size)

    zeros, ones = np.zeros(size), np.ones(size)
    if isinstance(neuron, nir.CubaLIF):
        params = {key: get(key) for key in ("tau_syn", "tau_mem", "r", "w_in", "v_leak", "v_threshold", "v_reset")}
        _check_positive(name, "tau_syn", params["tau_syn"])
    elif isinstance(neuron, nir.LIF):
        params = {"tau_syn": zeros, "tau_mem": get("tau"), "r": get("r"), "w_in": ones, "v_leak": get("v_leak"),
                  "v_threshold": get("v_threshold"), "v_reset": get("v_reset", 0.0)}
    else:  # IF: no leak at all
        params = {"tau_syn": zeros, "tau_mem": np.full(size, np.inf), "r": get("r"), "w_in": ones, "v_leak": zeros,
                  "v_threshold": get("v_threshold"), "v_reset": get("v_reset", 0.0)}
    if not isinstance(neuron, nir.IF):
        _check_positive(name, "tau_mem" if isinstance(neuron, nir.CubaLIF) else "tau", params["tau_mem"])
    _check_positive(name, "v_threshold", params["v_threshold"])
    return params


def load(path: str | Path, overrides: dict[str, Any] | None = None) -> FloatNetwork:
    """Read a NIR file into a FloatNetwork."""
    import hashlib

    path = Path(path)
    graph = read_nir(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return from_graph(graph, overrides, source_file=path.name, source_sha256=digest)
