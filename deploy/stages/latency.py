"""Decision timing and sample difficulty: when each model's decision is final, what stopping early would
cost, and whether slow samples and chip-vs-float flips are the hard ones.

A decision "after step k" is the bundle's decision rule (``targets.decision``) applied to the spikes of steps
1..k only. A sample's decision latency is the step from which that decision stays what it is at the end of the
run: for first_spike decoding the step of the first output spike, for spike_count the step after the last
change. The float model is put on the chip's grid: a continuous spike time t (in steps) counts from step
ceil(t), the step whose interval (n - 1, n] holds it.

Difficulty follows "Investigating the Effect of Sample Difficulty in Time-to-First-Spike Coded SNNs" (TU
Delft): the float model's margin between its first and second choice (first_spike: second - first output spike
time; spike_count: first - second count; a membrane decoding: first - second final score). Harder samples
(small margin) should decide later and flip more.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from typing import Callable, NamedTuple

import numpy as np

from ...targets import decision
from ...targets.bundle import Bundle
from ...targets.description import Target
from ...targets.record import SpikeEvents, SpikeRecord
from ..artifacts.latency import (AccuracyByStep, CountRuleCheck, DecisionTiming, Difficulty, EarlyDecision,
                                 LatencyStats)
from ..artifacts.verdict import Comparison
from .energy import estimate

EARLY_DECISION_WITHIN = 0.005  # 0.5 accuracy points (the definition of "as good as the full run")


def _decisions_by_step(first: np.ndarray, counts_after: Callable[[int], np.ndarray], decoding: str,
                       num_steps: int) -> np.ndarray:
    """(samples, num_steps) int32 decisions, column k - 1 after step k, from first-spike times in steps (+inf:
    silent) and each step's cumulative spike counts."""
    if decoding == decision.FIRST_SPIKE:
        # The rule on steps 1..k picks the earliest spike, which is the final decision once k reaches it.
        final = decision.decide(first, None, decoding).astype(np.int32)
        earliest = first.min(axis=1, initial=np.inf)
        return np.where(np.arange(1, num_steps + 1)[None, :] >= earliest[:, None], final[:, None],
                        np.int32(decision.NO_DECISION))
    out = np.empty((first.shape[0], num_steps), dtype=np.int32)
    for step in range(1, num_steps + 1):
        counts = counts_after(step)
        out[:, step - 1] = decision.decide(np.where(first <= step, first, np.inf), counts, decoding)
    return out


def decisions_by_step(spikes: SpikeEvents, decoding: str) -> np.ndarray:
    """A spike record's output layer -> (samples, num_steps) decisions if stopped after each step."""
    first = spikes.first_spike_steps().astype(np.float64)
    first[first < 0] = np.inf
    sample, step, neuron = spikes.events
    by_step = np.argsort(step, kind="stable")
    starts = np.searchsorted(step[by_step], np.arange(1, spikes.num_steps + 2))
    counts = np.zeros((spikes.num_samples, spikes.size), dtype=np.int64)

    def counts_after(k: int) -> np.ndarray:
        # Steps come in order; a population's (sample, step, neuron) events are unique, so += is exact.
        this_step = by_step[starts[k - 1]:starts[k]]
        counts[sample[this_step], neuron[this_step]] += 1
        return counts

    return _decisions_by_step(first, counts_after, decoding, spikes.num_steps)


def decisions_by_step_of_times(times: np.ndarray, decoding: str, num_steps: int) -> np.ndarray:
    """A fire-once float model's (samples, outputs) continuous first-spike times in steps (+inf: silent) ->
    (samples, num_steps) decisions if stopped after each step (each finite time is the neuron's one spike)."""
    times = np.asarray(times, dtype=np.float64)
    return _decisions_by_step(times, lambda k: (times <= k).astype(np.int64), decoding, num_steps)


def membrane_decisions_by_step(membrane: np.ndarray, decoding: str, latency_steps: int) -> np.ndarray:
    """A readout's (samples, num_steps, outputs) membrane -> (samples, num_steps) decisions if stopped after each
    step: no decision in the pipeline's ``latency_steps``, then the membrane decoding of the window so far."""
    scores = decision.membrane_scores_by_step(np.asarray(membrane)[:, latency_steps:], decoding)
    out = np.full(membrane.shape[:2], decision.NO_DECISION, np.int32)
    out[:, latency_steps:] = np.argmax(scores, axis=2)
    return out


def membrane_margins(membrane: np.ndarray, decoding: str, latency_steps: int) -> np.ndarray:
    """(samples,) gap between the first and second choice's final membrane score (+inf: one output)."""
    final = decision.membrane_scores_by_step(np.asarray(membrane)[:, latency_steps:], decoding)[:, -1]
    if final.shape[1] < 2:
        return np.full(final.shape[0], np.inf)
    ordered = -np.sort(-final, axis=1)
    return ordered[:, 0] - ordered[:, 1]


def final_steps(by_step: np.ndarray) -> np.ndarray:
    """(samples, num_steps) decisions -> (samples,) the step from which each sample's decision equals its final
    one; -1 where the final decision is no decision."""
    final = by_step[:, -1]
    differs = by_step != final[:, None]
    num_steps = by_step.shape[1]
    last_different = np.where(differs.any(axis=1), num_steps - 1 - np.argmax(differs[:, ::-1], axis=1), -1)
    steps = (last_different + 2).astype(np.int64)
    steps[final == decision.NO_DECISION] = -1
    return steps


def latency_stats(steps: np.ndarray) -> LatencyStats:
    decided = steps[steps > 0].astype(np.float64)
    if not decided.size:
        return LatencyStats(None, None, None, undecided=int(steps.size))
    return LatencyStats(float(np.median(decided)), float(np.percentile(decided, 95)), float(decided.mean()),
                        undecided=int(steps.size - decided.size))


def accuracy_by_step(chip: np.ndarray, float_model: np.ndarray, labels: np.ndarray) -> AccuracyByStep:
    labels = np.asarray(labels)[:, None]
    return AccuracyByStep(steps=tuple(range(1, chip.shape[1] + 1)),
                          chip=tuple(float(a) for a in (chip == labels).mean(axis=0)),
                          float=tuple(float(a) for a in (float_model == labels).mean(axis=0)))


def early_step(by_step: np.ndarray, labels: np.ndarray, within: float = EARLY_DECISION_WITHIN) -> int:
    """The earliest step k from which the accuracy stays within ``within`` of the final accuracy at every
    later step (a step one could stop at), compared exactly in counts of samples."""
    correct = (by_step == np.asarray(labels)[:, None]).sum(axis=0)
    allowed = Fraction(repr(within)) * by_step.shape[0]  # samples
    far = np.flatnonzero(np.abs(correct - correct[-1]) > allowed)
    return int(far[-1]) + 2 if far.size else 1


def _until(spikes: SpikeEvents, step: int) -> SpikeEvents:
    return SpikeEvents(spikes.events[:, spikes.events[1] <= step], spikes.num_samples, step, spikes.size)


def stopped_after(record: SpikeRecord, step: int) -> SpikeRecord:
    """The record of a run stopped after ``step``: its spikes and traces of steps 1..step."""
    return replace(record, num_steps=step, spikes={name: _until(spikes, step) for name, spikes in record.spikes.items()},
                   traces={name: {key: trace[:, :step] for key, trace in traces.items()}
                           for name, traces in record.traces.items()})


def early_decision(by_step: np.ndarray, labels: np.ndarray, bundle: Bundle, record: SpikeRecord,
                   inputs: SpikeEvents, target: Target, within: float = EARLY_DECISION_WITHIN) -> EarlyDecision:
    step = early_step(by_step, labels, within)
    accuracy = float(np.mean(by_step[:, step - 1] == labels))
    energy = estimate(bundle, stopped_after(record, step), _until(inputs, step), target).total.energy_j.total
    return EarlyDecision(step=step, accuracy=accuracy, within=within, energy_j=energy)


def margins(first: np.ndarray, counts: np.ndarray, decoding: str) -> np.ndarray:
    """(samples, outputs) float first-spike times in steps (+inf: silent) and spike counts -> (samples,) margin
    between the first and second choice (+inf: only one output fired; NaN: none did)."""
    if decoding == decision.FIRST_SPIKE:
        ordered = np.sort(first, axis=1)
        fired = np.isfinite(ordered[:, 0])
        earliest = np.where(fired, ordered[:, 0], 0.0)  # inf - inf would be NaN with a warning
        gap = ordered[:, 1] - earliest if first.shape[1] > 1 else np.full(first.shape[0], np.inf)
        return np.where(fired, gap, np.nan)
    ordered = -np.sort(-counts.astype(np.float64), axis=1)
    gap = ordered[:, 0] - ordered[:, 1] if counts.shape[1] > 1 else ordered[:, 0]
    return np.where(ordered[:, 0] > 0, gap, np.nan)


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given their mean rank (+inf ranks last)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation of two samples of equal length (None when either is constant or n < 2)."""
    if a.size < 2:
        return None
    ra, rb = _ranks(a) - (a.size + 1) / 2, _ranks(b) - (b.size + 1) / 2
    scale = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / scale) if scale > 0 else None


def difficulty(margin: np.ndarray, chip_latency: np.ndarray, flipped: np.ndarray,
               count_rule: CountRuleCheck | None = None) -> Difficulty:
    """Over the samples the float model decides (finite or infinite margin) and the chip decides too for the
    correlation; quartiles by margin rank, ties in sample order, the smallest margins first; ``count_rule`` as
    ``count_rule_check`` found it."""
    rated = ~np.isnan(margin)
    both = rated & (chip_latency > 0)
    rho = spearman(chip_latency[both].astype(np.float64), margin[both])
    order = np.flatnonzero(rated)[np.argsort(margin[rated], kind="stable")]
    quartile = (np.arange(order.size) * 4) // max(order.size, 1)
    flips = tuple(int(flipped[order[quartile == q]].sum()) for q in range(4))
    sizes = tuple(int((quartile == q).sum()) for q in range(4))
    return Difficulty(latency_margin_spearman=rho, flips_by_margin_quartile=flips, samples_by_margin_quartile=sizes,
                      count_rule=count_rule)


OTHER_COUNT_DECODING = {decision.SPIKE_COUNT: decision.SPIKE_COUNT_ARGMAX,
                        decision.SPIKE_COUNT_ARGMAX: decision.SPIKE_COUNT}


def count_rule_check(first: np.ndarray, counts: np.ndarray, decoding: str) -> CountRuleCheck | None:
    """(samples, outputs) float first-spike times (+inf: silent) and counts -> where the two count decodings part
    on them (None: not a count decoding)."""
    other = OTHER_COUNT_DECODING.get(decoding)
    if other is None:
        return None
    top = counts.max(axis=1, keepdims=True)
    fired = top[:, 0] > 0
    otherwise = decision.decide(first, counts, decoding) != decision.decide(first, counts, other)
    return CountRuleCheck(tied=int(np.sum(fired & ((counts == top).sum(axis=1) > 1))), silent=int(np.sum(~fired)),
                          other_decoding=other, decided_otherwise=int(otherwise.sum()))


class SampleTiming(NamedTuple):
    """Per sample: each model's decisions if stopped after each step (samples, num_steps), the step from which
    each model's decision is final (-1: none), and the float model's margin (see ``margins``); with it, for a
    count decoding, where the other count rule decides the float outputs otherwise."""

    chip_by_step: np.ndarray
    float_by_step: np.ndarray
    chip_steps: np.ndarray
    float_steps: np.ndarray
    margins: np.ndarray
    count_rule: CountRuleCheck | None = None


def sample_timing(comparison: Comparison, output: str, decoding: str, num_steps: int,
                  latency_steps: int = 0) -> SampleTiming:
    """A verify comparison -> the per-sample figures ``decision_timing`` summarizes (the report draws them);
    ``latency_steps`` (``bundle.Timing``'s) start a membrane decoding's window."""
    if decoding in decision.MEMBRANE_DECODINGS:
        chip = membrane_decisions_by_step(comparison.record.membrane(output), decoding, latency_steps)
        float_model = membrane_decisions_by_step(comparison.discrete_membrane, decoding, latency_steps)
        return SampleTiming(chip, float_model, final_steps(chip), final_steps(float_model),
                            membrane_margins(comparison.discrete_membrane, decoding, latency_steps))
    chip = decisions_by_step(comparison.record.spikes[output], decoding)
    times = comparison.times["float"][output]
    if comparison.float_reference == "continuous":
        float_model = decisions_by_step_of_times(times, decoding, num_steps)
        counts = np.isfinite(times).astype(np.int64)
    else:
        float_model = decisions_by_step(comparison.discrete[output], decoding)
        counts = comparison.discrete[output].counts()
    return SampleTiming(chip, float_model, final_steps(chip), final_steps(float_model), margins(times, counts, decoding),
                        count_rule_check(times, counts, decoding))


def summarize(per_sample: SampleTiming, comparison: Comparison, bundle: Bundle, target: Target) -> DecisionTiming:
    """Per-sample figures -> the chip's and the float model's decision timing and the samples' difficulty."""
    labels = comparison.labels
    flipped = comparison.decisions["chip"] != comparison.decisions["float"]
    return DecisionTiming(
        decision_latency_steps={"chip": latency_stats(per_sample.chip_steps),
                                "float": latency_stats(per_sample.float_steps)},
        accuracy_by_step=None if labels is None else accuracy_by_step(per_sample.chip_by_step,
                                                                      per_sample.float_by_step, labels),
        early_decision=None if labels is None else early_decision(per_sample.chip_by_step, labels, bundle,
                                                                   comparison.record, comparison.inputs, target),
        difficulty=difficulty(per_sample.margins, per_sample.chip_steps, flipped, per_sample.count_rule))


def decision_timing(comparison: Comparison, bundle: Bundle, target: Target) -> DecisionTiming:
    """A verify comparison -> the chip's and the float model's decision timing and the samples' difficulty."""
    per_sample = sample_timing(comparison, bundle.network.output, bundle.decoding, bundle.timing.num_steps,
                               bundle.timing.latency_steps)
    return summarize(per_sample, comparison, bundle, target)
