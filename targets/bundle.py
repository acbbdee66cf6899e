"""The bundle: a compiled network in the chip's integer formats, self-describing and checksummed.

A bundle is what every back end (bitsim, lava, loihi2) runs. It holds integers only for the
dynamics, the widths of the arithmetic they are in (its target's, ``fixed_point.Widths``), the back
ends its target lists, the names of the NIR nodes each block came from, the placement on cores and
the compile report. On disk it is one ``.npz`` (no pickle): a JSON manifest plus integer arrays.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .decision import DECODINGS, FIRST_SPIKE
from .files import write_atomic
from .fixed_point import RESET_MODES, RESET_ZERO, Widths

FORMAT = "snn-deploy-bundle"
# 2: the manifest records the target's arithmetic widths and back ends.
FORMAT_VERSION = 2


class BundleError(ValueError):
    """A bundle file that is missing, corrupt or of an unknown format."""


def split_by_delay(matrix: np.ndarray, delays: np.ndarray | None) -> list[tuple[int, np.ndarray]]:
    """(delay, ``matrix`` where ``delays`` is that delay, 0 elsewhere) for each delay of a nonzero entry, shortest
    first: a delayed block as one undelayed block per delay (Lava's DelayDense keeps one such matrix per delay)."""
    if delays is None:
        return [(0, matrix)]
    return [(int(d), np.where(delays == d, matrix, 0).astype(matrix.dtype)) for d in np.unique(delays[matrix != 0])]


def _frozen(array, dtype) -> np.ndarray:
    out = np.array(array, dtype=dtype)
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class InputLayer:
    """The spike source feeding the network: ``size`` channels of binary spikes."""

    name: str
    size: int


@dataclass(frozen=True)
class LifPopulation:
    """A population of Loihi current-based LIF neurons (Lava ``LIF``, bit-accurate model).

    u' = T(u (4096 - (du + 1))) + (a << 6), wrapped to 24 bits;
    v' = clip(T(v (4096 - dv)) + u' + (bias_mant << bias_exp), +-(2**23 - 1));
    spike when v' > vth << 6, then v = 0 (``reset`` "zero") or v -= vth << 6 (``reset`` "subtract",
    a Loihi 2 programmable neuron).
    ``fire_once``: after its first spike the neuron holds v = 0 and stays silent (a refractory
    period longer than the run), which is how a time-to-first-spike neuron runs on the chip.
    ``readout``: a readout (NIR LI, CubaLI, I): its vth is the largest the target holds and the compiler bounds
    its v below it, so it never fires; its membrane v is the output, recorded on every step by every back end
    (``record.SpikeRecord.membrane``).
    ``sample_reset``: a stock population (``--stock``): Lava's ``LIFReset`` with reset_interval = the run's
    steps plus ``Timing.padding_steps`` and reset_offset 1, which zeroes u and v on each sample's first step
    when many samples share one run. bitsim starts every sample from rest anyway; the Lava back end runs
    such a bundle with Lava's own LIFReset and Dense processes, one process per distinct (du, dv, vth).
    """

    name: str
    size: int
    du: np.ndarray  # (size,) int, 12-bit
    dv: np.ndarray  # (size,) int, 12-bit
    vth: np.ndarray  # (size,) int, 17-bit mantissa
    bias_mant: np.ndarray  # (size,) int, 13-bit signed
    bias_exp: int = 0
    fire_once: bool = False
    reset: str = RESET_ZERO  # one of fixed_point.RESET_MODES
    sample_reset: bool = False
    readout: bool = False

    def __post_init__(self):
        if self.reset not in RESET_MODES:
            raise ValueError(f"population {self.name!r}: unknown reset mode {self.reset!r}; "
                             f"known: {', '.join(RESET_MODES)}")
        for name in ("du", "dv", "vth", "bias_mant"):
            value = np.broadcast_to(np.asarray(getattr(self, name)), (self.size,))
            object.__setattr__(self, name, _frozen(value, np.int32))


@dataclass(frozen=True)
class DenseConnection:
    """A Lava ``Dense`` block: a = (W s) << weight_exp, delivered one step later.

    ``weights`` has shape (target size, source size) and holds the stored integers (already
    clipped and truncated as the hardware keeps them). ``delays`` (same shape, None: all 0) are
    per-synapse delays in steps, Lava's ``DelayDense``: a spike of step n reaches u in step n + 1 + delay.
    """

    name: str
    source: str
    target: str
    weights: np.ndarray
    weight_exp: int = 0
    num_weight_bits: int = 8
    num_message_bits: int = 0  # 0: binary spikes
    delays: np.ndarray | None = None

    def __post_init__(self):
        object.__setattr__(self, "weights", _frozen(self.weights, np.int32))
        if self.delays is not None:
            delays = _frozen(np.where(self.weights != 0, self.delays, 0), np.int32)
            object.__setattr__(self, "delays", delays if delays.any() else None)

    @property
    def max_delay(self) -> int:
        """The longest delay of any synapse, in steps (0: none delayed)."""
        return 0 if self.delays is None else int(self.delays.max())

    def delay_groups(self) -> list[tuple[int, "DenseConnection"]]:
        """(delay, this block restricted to the synapses of that delay, undelayed) per delay, shortest first."""
        return [(delay, dataclasses.replace(self, weights=weights, delays=None))
                for delay, weights in split_by_delay(self.weights, self.delays)]


@dataclass(frozen=True)
class IntNetwork:
    """The integer network: one input, LIF populations, Dense connections, one output."""

    input: InputLayer
    populations: tuple[LifPopulation, ...]
    connections: tuple[DenseConnection, ...]
    output: str

    def population(self, name: str) -> LifPopulation:
        for pop in self.populations:
            if pop.name == name:
                return pop
        raise KeyError(name)

    def layer_depth(self) -> dict[str, int]:
        """Dense stages between the input and each population (its fixed pipeline delay)."""
        depth = {self.input.name: 0}
        pending = list(self.connections)
        while pending:
            progressed = False
            for conn in list(pending):
                if conn.source in depth:
                    depth.setdefault(conn.target, depth[conn.source] + 1)
                    pending.remove(conn)
                    progressed = True
            if not progressed:
                break
        return depth


@dataclass(frozen=True)
class CoreAssignment:
    """Neurons [start, stop) of one population placed on core ``core`` of chip ``chip``.

    What the core then holds: ``synapses`` (nonzero weights into these neurons), the synapse memory
    they take (``memory_bytes``, in the cheaper ``encoding``: "dense" or "sparse"), its fan-in
    (``input_axons``: source neurons with a synapse here) and fan-out (``output_axons``: routes from
    these neurons to the cores they reach).
    """

    core: int
    population: str
    start: int
    stop: int
    chip: int = 0
    synapses: int = 0
    memory_bytes: int = 0
    encoding: str = ""
    input_axons: int = 0
    output_axons: int = 0

    @property
    def neurons(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Placement:
    target: str
    cores: tuple[CoreAssignment, ...]

    @property
    def cores_used(self) -> int:
        return len({(c.chip, c.core) for c in self.cores})

    @property
    def chips_used(self) -> int:
        return len({c.chip for c in self.cores})

    @property
    def synapses(self) -> int:
        return sum(c.synapses for c in self.cores)

    @property
    def memory_bytes(self) -> int:
        """Synapse memory in use, over every core."""
        return sum(c.memory_bytes for c in self.cores)

    def chips(self) -> list[dict[str, int]]:
        """The chip summary: per chip used, its cores, neurons, synapses and synapse memory in use."""
        summary = []
        for chip in sorted({c.chip for c in self.cores}):
            on = [c for c in self.cores if c.chip == chip]
            summary.append({"chip": chip, "cores": len({c.core for c in on}), "neurons": sum(c.neurons for c in on),
                            "synapses": sum(c.synapses for c in on),
                            "memory_bytes": sum(c.memory_bytes for c in on)})
        return summary

    def population_cores(self, population: str) -> tuple[CoreAssignment, ...]:
        """The cores holding ``population``, in neuron order."""
        return tuple(sorted((c for c in self.cores if c.population == population), key=lambda c: c.start))


@dataclass(frozen=True)
class Timing:
    """How continuous time maps to chip steps.

    One step lasts ``dt`` time units of the source model; a run lasts ``num_steps`` steps.
    Input spike time t is sent in step round(t / dt), at least 1; chip step n stands for t = n dt.

    ``latency_steps``: how many of the ``num_steps`` are pipeline latency, run after the horizon so
    that the output's last steps are not cut. Under a simulator's step (euler, exponential) the model
    advances a feed-forward chain within one step, while every Dense stage delays by one: the output layer, at
    depth d, lags by d steps, and step n of a layer at depth d stands for the simulator's step
    n - d - 1 (0-based). Exact integration has none (every layer samples t = n dt).

    ``padding_steps``: steps the chip runs after each sample's ``num_steps`` when samples share one run (a stock
    bundle: its clock neuron silences every neuron then, so nothing of a sample reaches the next one's reset
    step). Nothing spikes in them, so bitsim and the spike record leave them out.
    """

    dt: float
    num_steps: int
    time_unit: str = "tau"
    latency_steps: int = 0
    padding_steps: int = 0

    @property
    def steps_per_sample(self) -> int:
        """The steps one sample takes on the chip: its run and its padding."""
        return self.num_steps + self.padding_steps


@dataclass(frozen=True)
class LayerQuantization:
    """What rounding cost in one layer: a row of the compile report.

    ``scale`` (``scale_max``): the smallest (largest) chip units per float v unit over the layer's neurons;
    weight errors are relative to each neuron's largest weight; headrooms are the state limit over the worst
    case of |u| and |v| (below 1: the state can overflow, which the simulators count)."""

    synapses: tuple[str, ...]  # the NIR synapse paths feeding the layer
    scale: float
    scale_max: float
    weight_exp: int
    weight_exp_by_source: dict[str, int]
    split_weights: bool
    sign_mode: str  # "excitatory", "inhibitory" or "mixed"
    max_weight_mantissa: int
    min_row_mantissa: int
    fraction_clipped: float
    weight_error_max: float
    weight_error_rms: float
    du: int
    dv: int
    decay_u_error: float
    decay_v_error: float
    vth: int
    threshold_error: float
    u_headroom: float
    v_headroom: float
    # A readout (``LifPopulation.readout``): v_headroom is then the threshold (vth << threshold_shift, within the
    # state) over the worst case of |v|; at 1 or above it never fires.
    readout: bool = False

    def __post_init__(self):
        object.__setattr__(self, "synapses", tuple(self.synapses))


@dataclass(frozen=True)
class LayerPlacement:
    """One layer's share of the placement."""

    cores: int
    neurons: int
    synapses: int
    memory_bytes: int
    encodings: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "encodings", tuple(self.encodings))


@dataclass(frozen=True)
class ChipUse:
    """One chip's use against its budget."""

    chip: int
    cores: int
    neurons: int
    synapses: int
    memory_bytes: int
    cores_budget: int
    memory_budget_bytes: int


@dataclass(frozen=True)
class PlacementReport:
    """The placement in numbers, per layer and per chip, with the per-core budgets (None: not budgeted)."""

    target: str
    cores_used: int
    chips_used: int
    budget_per_core: dict[str, int | None]
    layers: dict[str, LayerPlacement]
    chips: tuple[ChipUse, ...]

    @classmethod
    def from_dict(cls, body: dict) -> "PlacementReport":
        return cls(**{**body, "layers": {name: LayerPlacement(**layer) for name, layer in body["layers"].items()},
                      "chips": tuple(ChipUse(**chip) for chip in body["chips"])})


@dataclass(frozen=True)
class StockLayer:
    """The fire-once construction of one stock layer (``deploy.stages.stock``), per neuron its bound B (chip u
    units): the self-synapse, the helper's steady inhibition and the clock each reach at least B. ``margin``: the
    least of inhibition / B over the neurons; ``step_input``: the largest |input| of one step (16-bit bound);
    ``u_low``: the lowest u the proof allows; ``processes``: LIF processes with one du, dv, vth."""

    processes: int
    thresholds: tuple[int, ...]
    bound_max: float
    self_weight_max: int
    helper_weight_max: int
    clock_weight_max: int
    margin: float
    step_input: int
    u_low: float

    def __post_init__(self):
        object.__setattr__(self, "thresholds", tuple(int(v) for v in self.thresholds))


@dataclass(frozen=True)
class StockReport:
    """What the stock constructions cost (``--stock``): helper and clock neurons, their synapses, the cores they
    add, and the steps one sample takes (its run plus the padding step); per layer the fire-once bound."""

    extra_neurons: int
    extra_synapses: int
    extra_cores: int
    processes: int
    steps_per_sample: int
    padding_steps: int
    threshold_spread: float
    layers: dict[str, StockLayer]

    @classmethod
    def from_dict(cls, body: dict) -> "StockReport":
        return cls(**{**body, "layers": {name: StockLayer(**row) for name, row in body["layers"].items()}})


@dataclass(frozen=True)
class LayerCalibration:
    """What calibration (``deploy.stages.calibrate``) did to one layer, measured on its calibration data against
    the float discrete model: the RMS membrane error its weights add (in thresholds) and the fraction of
    (sample, neuron) spike counts equal, before and after; weights rounded away from nearest; blocks added by
    regrouping rows by exponent."""

    membrane_error_before: float
    membrane_error_after: float
    spike_agreement_before: float
    spike_agreement_after: float
    rounded_other_way: int
    blocks_added: int


@dataclass(frozen=True)
class CalibrationReport:
    """The data a bundle was calibrated on (its spec, sample count and the sha256 of its input spikes), the
    fraction of its decisions equal to the float model's before and after, whether the calibrated network was
    kept (``applied``: it decided at least as often like the float model), and per layer what changed."""

    data: str
    samples: int
    inputs_sha256: str
    decision_agreement_before: float
    decision_agreement_after: float
    applied: bool
    layers: dict[str, LayerCalibration]

    @classmethod
    def from_dict(cls, body: dict) -> "CalibrationReport":
        return cls(**{**body, "layers": {name: LayerCalibration(**row) for name, row in body["layers"].items()}})


@dataclass(frozen=True)
class Recommendation:
    """An option compile measured would make the bundle decide more like the float model, on the calibration
    data (``data``, its first ``samples`` samples), when the kept bundle decided below verify's default
    agreement tolerance (``tolerance``): the fraction of decisions equal to the float discrete model's without
    and with ``option`` (each quantized and calibrated the same way), and what the option costs in synapses and
    synapse memory (bytes, as placed). The bundle written is the one without it."""

    option: str
    data: str
    samples: int
    tolerance: float
    agreement_without: float
    agreement_with: float
    synapses_without: int
    synapses_with: int
    memory_bytes_without: int
    memory_bytes_with: int


@dataclass(frozen=True)
class DelayReport:
    """The per-synapse delays of a bundle (NIR Delay nodes): how many synapses are delayed, the longest delay and
    the target's limit, in steps; whether they were rounded to whole steps (``--round-delays``) and the largest
    rounding error (time units); the synapse memory the delay fields take (``delay_bits`` per delayed synapse,
    included in the placement's memory)."""

    delayed_synapses: int
    max_steps: int
    limit_steps: int
    rounded: bool
    rounding_error: float
    memory_bytes: int


@dataclass(frozen=True)
class CompileReport:
    """What the compiler reported: per layer what rounding cost, the placement, how dt was chosen, and a copy of
    the target description (so that verify can estimate energy and latency without the file)."""

    quantization: dict[str, LayerQuantization]
    placement: PlacementReport
    snapped_dt: bool  # dt was snapped so that the most common time constant decays exactly
    split_weights: bool
    requested_steps_per_tau: float
    target_spec: dict[str, Any]
    stock: StockReport | None = None  # a stock bundle's constructions (left out of the manifest otherwise)
    calibration: CalibrationReport | None = None  # ``compile --calibrate``'s record (left out otherwise)
    delays: DelayReport | None = None  # a bundle with delayed synapses (left out of the manifest otherwise)
    recommendation: Recommendation | None = None  # an option measured to decide more like float (left out otherwise)

    @classmethod
    def from_dict(cls, body: dict) -> "CompileReport":
        stock, calibration, delays = body.get("stock"), body.get("calibration"), body.get("delays")
        return cls(**{**body, "quantization": {name: LayerQuantization(**row)
                                               for name, row in body["quantization"].items()},
                      "placement": PlacementReport.from_dict(body["placement"]),
                      "stock": StockReport.from_dict(stock) if stock is not None else None,
                      "calibration": CalibrationReport.from_dict(calibration) if calibration is not None else None,
                      "delays": DelayReport(**delays) if delays is not None else None,
                      "recommendation": Recommendation(**body["recommendation"]) if body.get("recommendation")
                      else None})


# The graph metadata key of a fine-tuned NIR graph's provenance: a JSON string of ``TunedFrom``'s fields.
TUNED_FROM_KEY = "snn_deploy_tuned_from"
_SHA256_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class TunedFrom:
    """What a fine-tuned NIR graph was tuned from: the original NIR file (its name and the sha256 of its bytes),
    the data spec it was tuned on, and the tuning's settings (name -> int, float, bool or str); a graph tuned in
    Python from a graph held in memory has no file, and its sha256 is "". A tuned graph carries it in its metadata
    under ``TUNED_FROM_KEY`` (``to_metadata``); a bundle compiled from it keeps it in ``Source.tuned_from``, so that
    verify accepts the original graph and compares the chip with it."""

    nir_file: str
    nir_sha256: str
    data: str
    settings: dict[str, int | float | bool | str]

    def __post_init__(self):
        for name in ("nir_file", "nir_sha256", "data"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string, got {getattr(self, name)!r}")
        if self.nir_sha256 and (len(self.nir_sha256) != 64 or not set(self.nir_sha256) <= _SHA256_HEX):
            raise ValueError(f"nir_sha256 must be 64 lowercase hex digits (or empty: an original graph not read from "
                             f"a file), got {self.nir_sha256!r}")
        if not isinstance(self.settings, dict):
            raise ValueError(f"settings must be an object, got {self.settings!r}")
        for key, value in self.settings.items():
            if not isinstance(key, str) or not isinstance(value, (int, float, bool, str)):
                raise ValueError(f"setting {key!r} must be a number, true/false or a string, got {value!r}")
        object.__setattr__(self, "settings", dict(self.settings))

    def to_metadata(self) -> str:
        """The JSON string a tuned graph's metadata holds under ``TUNED_FROM_KEY``."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_metadata(cls, text: str) -> "TunedFrom":
        """Read ``to_metadata``'s string; a ValueError naming ``TUNED_FROM_KEY`` and what is wrong for malformed
        JSON, missing or unknown fields, or a field of the wrong type."""
        try:
            body = json.loads(text)
        except (TypeError, json.JSONDecodeError):
            raise ValueError(f"{TUNED_FROM_KEY!r} is not valid JSON") from None
        if not isinstance(body, dict):
            raise ValueError(f"{TUNED_FROM_KEY!r} must be a JSON object, got {type(body).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        missing, unknown = [n for n in names if n not in body], sorted(set(body) - set(names))
        if missing:
            raise ValueError(f"{TUNED_FROM_KEY!r} lacks {', '.join(missing)}")
        if unknown:
            raise ValueError(f"{TUNED_FROM_KEY!r} has unknown fields {', '.join(unknown)}")
        try:
            return cls(**body)
        except ValueError as exc:
            raise ValueError(f"{TUNED_FROM_KEY!r}: {exc}") from None


@dataclass(frozen=True)
class Source:
    """What a bundle was compiled from, and how: the NIR file (name, sha256), the semantics the compile used
    (``deploy.artifacts.semantics.Semantics`` as JSON, with where each choice came from: the one record verify
    rebuilds the float model from), the NIR nodes behind each population with their synapse paths, and, for a
    fine-tuned graph, what it was tuned from (None: not tuned; left out of the manifest then)."""

    nir_file: str = ""
    nir_sha256: str = ""
    semantics: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, Any] = field(default_factory=dict)
    tuned_from: TunedFrom | None = None

    @classmethod
    def from_dict(cls, body: dict) -> "Source":
        tuned = body.get("tuned_from")
        return cls(**{**body, "tuned_from": TunedFrom(**tuned) if tuned is not None else None})


@dataclass(frozen=True)
class Bundle:
    """A compiled network. ``widths``: the arithmetic its integers are in (the target's); ``backends``: the
    back ends its target lists, the only ones that run it (``backends.check_runs``)."""

    target: str
    network: IntNetwork
    placement: Placement
    timing: Timing
    widths: Widths
    backends: tuple[str, ...]
    encoding: dict[str, Any] = field(default_factory=dict)  # input encoding, copied from NIR
    decoding: str = FIRST_SPIKE  # how the output gives a decision: one of ``decision.DECODINGS``
    source: Source = field(default_factory=Source)
    report: CompileReport | None = None
    format_version: int = FORMAT_VERSION

    def __post_init__(self):
        object.__setattr__(self, "backends", tuple(self.backends))
        if not self.backends or not all(isinstance(name, str) and name for name in self.backends):
            raise BundleError(f"a bundle's back ends must be a non-empty list of names, got {self.backends!r}")
        if self.decoding not in DECODINGS:
            raise BundleError(f"a bundle's decoding must be one of {', '.join(DECODINGS)}, got {self.decoding!r}")
        check_fits(self.network, self.widths)

    @property
    def checksum(self) -> str:
        """sha256 of the canonical content: identical for identical bundles."""
        manifest, arrays = _to_manifest(self)
        digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode())
        for key in sorted(arrays):
            digest.update(key.encode())
            digest.update(np.ascontiguousarray(arrays[key]).tobytes())
        return digest.hexdigest()


def check_fits(network: IntNetwork, widths: Widths) -> None:
    """Raise BundleError unless every integer of the network fits its field in ``widths``, and only a target
    with graded spikes has Dense blocks that carry payloads."""
    bias_low, bias_high = widths.bias_mantissa_range
    for pop in network.populations:
        for key, low, high in (("du", 0, widths.decay_max), ("dv", 0, widths.decay_max),
                               ("vth", 0, widths.threshold_max), ("bias_mant", bias_low, bias_high)):
            values = getattr(pop, key)
            if values.size and (values.min() < low or values.max() > high):
                raise BundleError(f"population {pop.name!r}: {key} spans [{values.min()}, {values.max()}], outside "
                                  f"the target's [{low}, {high}]")
    for conn in network.connections:
        if not widths.weight_exp_min <= conn.weight_exp <= widths.weight_exp_max:
            raise BundleError(f"connection {conn.name!r}: weight_exp {conn.weight_exp} is outside the target's "
                              f"[{widths.weight_exp_min}, {widths.weight_exp_max}]")
        if not 1 <= conn.num_weight_bits <= widths.weight_bits:
            raise BundleError(f"connection {conn.name!r}: num_weight_bits {conn.num_weight_bits} is not in "
                              f"[1, {widths.weight_bits}]")
        if conn.delays is not None and conn.delays.min() < 0:
            raise BundleError(f"connection {conn.name!r} has a negative delay")
        if conn.num_message_bits > 0 and not widths.graded_spikes:
            raise BundleError(f"connection {conn.name!r} carries graded spikes (num_message_bits "
                              f"{conn.num_message_bits}); the target has none")


def _to_manifest(bundle: Bundle) -> tuple[dict, dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    pops = []
    for pop in bundle.network.populations:
        entry = {"name": pop.name, "size": pop.size, "bias_exp": int(pop.bias_exp),
                 "fire_once": bool(pop.fire_once)}
        if pop.reset != RESET_ZERO:  # left out at its default: older bundles keep their checksum
            entry["reset"] = pop.reset
        if pop.sample_reset:  # likewise
            entry["sample_reset"] = True
        if pop.readout:  # likewise
            entry["readout"] = True
        for key in ("du", "dv", "vth", "bias_mant"):
            arrays[f"population/{pop.name}/{key}"] = pop.__dict__[key]
        pops.append(entry)
    conns = []
    for conn in bundle.network.connections:
        conns.append({"name": conn.name, "source": conn.source, "target": conn.target,
                      "weight_exp": int(conn.weight_exp), "num_weight_bits": int(conn.num_weight_bits),
                      "num_message_bits": int(conn.num_message_bits)})
        arrays[f"connection/{conn.name}/weights"] = conn.weights
        if conn.delays is not None:  # stored only where delayed: bundles without delays keep their checksum
            arrays[f"connection/{conn.name}/delays"] = conn.delays
    manifest = {
        "format": FORMAT,
        "format_version": bundle.format_version,
        "target": bundle.target,
        "input": dataclasses.asdict(bundle.network.input),
        "populations": pops,
        "connections": conns,
        "output": bundle.network.output,
        "placement": {"target": bundle.placement.target,
                      "cores": [_core_entry(c) for c in bundle.placement.cores]},
        "timing": _without_defaults(bundle.timing, ("padding_steps",)),
        "widths": dataclasses.asdict(bundle.widths),
        "backends": list(bundle.backends),
        "encoding": bundle.encoding,
        "decoding": bundle.decoding,
        "source": _without_defaults(bundle.source, ("tuned_from",)),
        "report": (_without_defaults(bundle.report, ("stock", "calibration", "delays", "recommendation"))
                   if bundle.report is not None else None),
    }
    return manifest, arrays


def _without_defaults(record, keys: tuple[str, ...]) -> dict:
    """``record`` as a dict without those of ``keys`` that hold their default: fields added later leave the
    manifests (and checksums) of bundles without them as they were."""
    defaults = {f.name: f.default for f in dataclasses.fields(record)}
    body = dataclasses.asdict(record)
    for key in keys:
        if getattr(record, key) == defaults[key]:
            del body[key]
    return body


def _core_entry(core: CoreAssignment) -> dict:
    """A core's manifest entry. Fields at their default are left out, so a bundle written before the
    per-core resource fields existed still reproduces its checksum."""
    defaults = {f.name: f.default for f in dataclasses.fields(CoreAssignment) if f.default is not dataclasses.MISSING}
    return {key: value for key, value in dataclasses.asdict(core).items()
            if key not in defaults or value != defaults[key]}


def save(bundle: Bundle, path: str | os.PathLike) -> None:
    """Write the bundle atomically: a temp file in the same folder, then a rename."""
    manifest, arrays = _to_manifest(bundle)
    manifest["checksum"] = bundle.checksum
    buffer = io.BytesIO()
    np.savez_compressed(buffer, manifest=np.array(json.dumps(manifest)), **arrays)
    write_atomic(path, buffer.getvalue())


def load(path: str | os.PathLike) -> Bundle:
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"bundle file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            manifest = json.loads(str(data["manifest"]))
            arrays = {key: np.array(data[key]) for key in data.files if key != "manifest"}
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise BundleError(f"{path} is not a readable snn-deploy bundle ({exc.__class__.__name__})") from None
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{path} is not an snn-deploy bundle (format {manifest.get('format')!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{path} has bundle format version {manifest.get('format_version')}; "
                          f"this snn-deploy reads version {FORMAT_VERSION}: compile the NIR graph again")
    try:
        bundle = _from_manifest(manifest, arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{path} is a corrupt bundle: {exc}") from None
    if bundle.checksum != manifest.get("checksum"):
        raise BundleError(f"{path} is corrupt: its checksum does not match its content")
    return bundle


def _from_manifest(manifest: dict, arrays: dict[str, np.ndarray]) -> Bundle:
    pops = tuple(
        LifPopulation(name=p["name"], size=p["size"], bias_exp=p["bias_exp"], fire_once=p["fire_once"],
                      reset=p.get("reset", RESET_ZERO), sample_reset=p.get("sample_reset", False),
                      readout=p.get("readout", False),
                      **{key: arrays[f"population/{p['name']}/{key}"] for key in ("du", "dv", "vth", "bias_mant")})
        for p in manifest["populations"])
    conns = tuple(DenseConnection(weights=arrays[f"connection/{c['name']}/weights"],
                                  delays=arrays.get(f"connection/{c['name']}/delays"), **c)
                  for c in manifest["connections"])
    network = IntNetwork(input=InputLayer(**manifest["input"]), populations=pops,
                         connections=conns, output=manifest["output"])
    placement = Placement(target=manifest["placement"]["target"],
                          cores=tuple(CoreAssignment(**c) for c in manifest["placement"]["cores"]))
    return Bundle(target=manifest["target"], network=network, placement=placement,
                  timing=Timing(**manifest["timing"]), widths=Widths(**manifest["widths"]),
                  backends=tuple(manifest["backends"]), encoding=manifest["encoding"],
                  decoding=manifest["decoding"], source=Source.from_dict(manifest["source"]),
                  report=CompileReport.from_dict(manifest["report"]) if manifest["report"] is not None else None,
                  format_version=manifest["format_version"])
