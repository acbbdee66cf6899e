"""The energy and latency estimate of a run (``stages.energy.estimate``): typed, every figure per inference.

A cost the sources give only as a range is a ``Range`` (low, nominal, high); counts are means over the
run's samples.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Range:
    """An estimate from its low and high bounds, with the nominal value between them."""

    low: float
    nominal: float
    high: float


@dataclass(frozen=True)
class OperationCounts:
    """What the spikes of one population cost per inference: operations, messages and hops."""

    synaptic_ops: float
    spike_messages: float
    hops_east_west: float
    hops_north_south: float
    messages_between_chips: float
    spikes: float
    neuron_updates: float
    neuron_updates_active: float
    neuron_updates_inactive: float


@dataclass(frozen=True)
class LayerEnergy(OperationCounts):
    energy_j: Range


@dataclass(frozen=True)
class EnergySplit:
    dynamic: Range
    static: Range
    total: Range


@dataclass(frozen=True)
class TotalEnergy(OperationCounts):
    energy_j: EnergySplit


@dataclass(frozen=True)
class Latency:
    """``steps_to_decision``: the mean step a sample's decision is known (the run's end without one);
    ``decided``: the fraction of samples that decided within the run; times in seconds."""

    steps_to_decision: float
    decided: float
    step_s: Range
    to_decision_s: Range
    run_s: Range


@dataclass(frozen=True)
class NeuroBench:
    effective_acs: float
    effective_macs: float
    dense_synops: float
    activation_sparsity: float
    membrane_updates: float
    membrane_updates_basis: str


@dataclass(frozen=True)
class AnnBaseline:
    dense_macs: int
    energy_j: dict[str, float]  # per arithmetic, e.g. "fp32", "int8"


@dataclass(frozen=True)
class EnergyBasis:
    """Where each part of the estimate comes from."""

    energy: str
    latency: str
    static: str
    activity: str
    active_updates: str
    neurobench: str
    ann_baseline: str


@dataclass(frozen=True)
class EnergyEstimate:
    target: str
    samples: int
    num_steps: int
    chips_used: int
    cores_used: int
    basis: EnergyBasis
    layers: dict[str, LayerEnergy]
    total: TotalEnergy
    latency: Latency
    neurobench: NeuroBench
    ann_baseline: AnnBaseline
