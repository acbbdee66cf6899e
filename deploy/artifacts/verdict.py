"""What verify measured (the Comparison) and what it concluded (the Verdict)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from ...targets.bundle import CalibrationReport, Recommendation
from ...targets.record import SpikeEvents, SpikeRecord
from .energy import EnergyEstimate
from .firing import FiringStatistics
from .latency import AccuracyByStep, Difficulty, EarlyDecision, LatencyStats
from .robustness import RobustnessLevel
from .stimulus import DataReport
from .tolerances import Tolerances

# 2: decision latency, accuracy by step, early decision, difficulty, robustness; 3: firing statistics;
# 4: the bundle's calibration record; 5: the fine-tuned graph a bundle was compiled from, and compile's
# recommendation; 6: difficulty.count_rule, where the two count decodings part; 7: split_weights, the bundle's
SCHEMA_VERSION = 7


@dataclass(frozen=True)
class Accuracy:
    """The fraction of labelled samples each model decides correctly."""

    float: float  # the trained model (the continuous reference, or the discrete one where no closed form holds)
    discrete: float
    chip: float


@dataclass(frozen=True)
class DecisionFlips:
    """Samples whose decision changes from one model to the next."""

    float_to_discrete: int
    discrete_to_chip: int


@dataclass(frozen=True)
class SpikeTimeErrors:
    """|first - second| first-spike time, in chip steps, over the neurons that fired in both (None: none did);
    ``mean`` is signed (first - second); ``only_first``/``only_second`` count neurons that fired in one only."""

    count: int
    median: float | None
    p95: float | None
    max: float | None
    mean: float | None
    only_first: int
    only_second: int


@dataclass(frozen=True)
class ErrorBudget:
    """How much of a layer's chip - float error is time discretization and how much quantization."""

    discretization: SpikeTimeErrors  # discrete - float
    quantization: SpikeTimeErrors  # chip - discrete


@dataclass(frozen=True)
class SpikeCountError:
    """Per output neuron and sample, |chip count - discrete count|."""

    mean_abs: float
    max_abs: int
    reference_mean: float  # the discrete reference's mean count, for scale
    samples_identical: float  # fraction of samples with every output count equal


@dataclass(frozen=True)
class StepRange:
    min: int
    median: float
    max: int


@dataclass(frozen=True)
class DivergentSample:
    sample: int
    layer: str
    step: int


@dataclass(frozen=True)
class Divergence:
    """Where chip and discrete reference first part: per sample the earliest step at which any layer's spikes
    differ, and the first layer (in depth order) that differs then."""

    samples_identical: float
    first_layer: dict[str, int]  # samples by the layer where they first diverge
    first_step: StepRange | None  # None: no sample diverged
    per_sample: tuple[DivergentSample, ...]  # the first DIVERGENCE_SAMPLES_LISTED of them


@dataclass(frozen=True)
class Activity:
    synaptic_ops_per_inference: float
    synaptic_ops_per_connection: dict[str, float]
    neuron_updates_per_inference: int
    spikes_per_inference: dict[str, float]


@dataclass(frozen=True)
class HardwareEvents:
    """Events counted in one population over the run: silent corruption on the chip, never dropped."""

    current_wraps: int = 0  # u wrapped at its width
    voltage_saturations: int = 0  # v clipped at its rail


@dataclass(frozen=True)
class MembraneError:
    """|chip v - S float v| per output neuron over every sample and step, in chip units of v (S: the readout's
    one scale, chip units per float v unit; one chip unit is 1 / S float v units)."""

    median: tuple[float, ...]
    p95: tuple[float, ...]
    max: tuple[float, ...]


@dataclass(frozen=True)
class ReadoutMetrics:
    """A readout output (LI, CubaLI, I): its membrane on the chip against the discrete float reference's.

    ``float_range``: S max |float v|, in chip units, for scale; ``readout_spikes``: spikes of the readout on the
    chip, which its compiled worst case should rule out (``headroom``, the compile report's v headroom: at 1 or
    above the bound holds); each one is a membrane the chip reset, counted against max_hardware_events."""

    layer: str
    scale: float
    error: MembraneError
    float_range: float
    readout_spikes: int
    headroom: float


@dataclass(frozen=True)
class TunedGraphRecord:
    """The bundle was compiled from a fine-tuned NIR graph (``tuned_file``, its sha256), tuned from
    ``original_file`` (its sha256) on the data ``data`` with ``settings``; ``compared_with``: the float model this
    verify compared the chip with, the "original" one or the "tuned" graph itself."""

    tuned_file: str
    tuned_sha256: str
    original_file: str
    original_sha256: str
    data: str
    settings: dict[str, int | float | bool | str]
    compared_with: Literal["original", "tuned"]


@dataclass(frozen=True)
class Metrics:
    """Everything verify concluded from a comparison, JSON's keys as the field names."""

    samples: int
    dataset: str
    backend: str
    target: str
    bundle_checksum: str
    nir_file: str
    dt: float
    time_unit: str
    num_steps: int
    accuracy: Accuracy | None  # None for unlabelled input spike trains
    agreement: float  # fraction of samples where chip and float decide alike
    decision_flips: DecisionFlips
    spike_time_error_steps: dict[str, SpikeTimeErrors]  # per layer, chip vs float
    error_budget_steps: dict[str, ErrorBudget]
    output_spike_count_error: SpikeCountError
    divergence: Divergence
    firing: FiringStatistics  # per layer, the chip's spike-count distribution against the float reference's
    activity: Activity
    hardware_events: dict[str, HardwareEvents]
    float_reference: str  # "continuous" or "discrete"
    energy: EnergyEstimate
    decision_latency_steps: dict[str, LatencyStats]  # "chip", "float": when each sample's decision is final
    accuracy_by_step: AccuracyByStep | None  # None without labels
    early_decision: EarlyDecision | None  # None without labels
    difficulty: Difficulty
    robustness: tuple[RobustnessLevel, ...] = ()  # one per perturbation asked for (verify --robustness)
    data: DataReport | None = None  # how the user's data were read (None: a shipped data set or random trains)
    readout: ReadoutMetrics | None = None  # a readout output's membrane error (None: a spiking output)
    calibration: CalibrationReport | None = None  # the bundle's compile-time calibration (None: not calibrated)
    tuned_graph: TunedGraphRecord | None = None  # the bundle's graph was fine-tuned (None: it was not)
    recommendation: Recommendation | None = None  # an option compile measured would decide more like float (or None)
    split_weights: bool = False  # the bundle was compiled with --split-weights


@dataclass(frozen=True)
class Verdict:
    metrics: Metrics
    tolerances: Tolerances
    failures: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, **asdict(self.metrics), "tolerances": asdict(self.tolerances),
                "passed": self.passed, "failures": list(self.failures)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)


@dataclass(frozen=True)
class Comparison:
    """Everything verify measured, per sample: the data behind the verdict (and the report).

    ``times[model][layer]`` are first-spike times in chip steps (time / dt), +inf
    where silent, for model in "float", "discrete", "chip"; ``decisions[model]`` the decisions;
    ``discrete`` every layer's spikes in the discrete reference; ``discrete_membrane`` a readout output's
    (samples, steps, neurons) float v in the discrete reference (None: a spiking output; the chip's is the
    record's ``membrane``). ``labels`` is None for unlabelled input spike trains.
    """

    labels: np.ndarray | None
    decisions: dict[str, np.ndarray]
    times: dict[str, dict[str, np.ndarray]]
    inputs: SpikeEvents
    record: SpikeRecord
    float_reference: str  # "continuous" or "discrete"
    discrete: dict[str, SpikeEvents] = field(default_factory=dict)
    discrete_membrane: np.ndarray | None = None
