"""Text reports: the lines the CLI prints for a compile (quantization, placement) and a verify (summary,
energy). Each takes an artifact and returns lines; printing is the interface's job."""

from __future__ import annotations

from typing import Callable

from ...targets.bundle import CoreAssignment, DelayReport, LayerQuantization, Placement, Recommendation, StockReport
from ...targets.description import Target
from ..artifacts.energy import EnergyEstimate, Range
from ..artifacts.firing import FiringStatistics
from ..artifacts.tuning import TuningReport
from ..artifacts.verdict import TunedGraphRecord, Verdict
from ..stages.place import CoreBudget, readable_bytes
from ..stages.tolerances import checks


def format_quantization(report: dict[str, LayerQuantization]) -> list[str]:
    """The compile report's quantization table, a row per layer."""
    lines = ["layer   sign       scale      w_exp  max|w|  clipped  w err max/rms     du   dv   "
             "decay err  vth     vth err   headroom u/v"]
    for name, r in report.items():
        lines.append(
            f"{name:7s} {r.sign_mode:10s} {r.scale:10.4g} {r.weight_exp:5d}  {r.max_weight_mantissa:6d}  "
            f"{r.fraction_clipped:7.2%}  {r.weight_error_max:.2e}/{r.weight_error_rms:.1e}  "
            f"{r.du:4d} {r.dv:4d}  {max(r.decay_u_error, r.decay_v_error):.1e}    {r.vth:6d}  "
            f"{r.threshold_error:.1e}   {r.u_headroom:.1f}x/{r.v_headroom:.1f}x"
            + ("  readout: never fires" if r.readout and r.v_headroom >= 1 else
               "  readout: CAN FIRE in the worst case (counted as readout spikes)" if r.readout else ""))
    return lines


def format_stock(report: StockReport | None) -> list[str]:
    """What a stock bundle's constructions cost, and per layer the fire-once bound they meet (none: no lines)."""
    if report is None:
        return []
    lines = [f"stock processes: {report.processes} LIF/LIFReset processes (thresholds shared within "
             f"{report.threshold_spread:g}x); the constructions add {report.extra_neurons} neurons (helpers, "
             f"clock), {report.extra_synapses} synapses, {report.extra_cores} cores; {report.steps_per_sample} "
             f"steps per sample ({report.padding_steps} padding)",
             "layer   processes  bound B (u)  self  helper  clock  margin  max step input  lowest u"]
    for name, r in report.layers.items():
        lines.append(f"{name:7s} {r.processes:9d}  {r.bound_max:11.0f}  {r.self_weight_max:4d}  {r.helper_weight_max:6d}"
                     f"  {r.clock_weight_max:5d}  {r.margin:6.3f}  {r.step_input:14d}  {r.u_low:8.0f}")
    return lines


def format_delays(report: DelayReport | None, time_unit: str) -> list[str]:
    """The delays row: delayed synapses, the longest delay against the target's limit, their memory, and with
    --round-delays the largest rounding error (none: no lines)."""
    if report is None:
        return []
    rounding = (f"; rounded to whole steps (--round-delays), error at most {report.rounding_error:.3g} {time_unit}"
                if report.rounded else "; every delay whole steps")
    return [f"delays: {report.delayed_synapses:,} delayed synapses, up to {report.max_steps} steps (target maximum "
            f"{report.limit_steps}), delay fields {readable_bytes(report.memory_bytes)} of synapse memory{rounding}"]


def format_recommendation(recommendation: Recommendation | None) -> list[str]:
    """The option compile measured would decide the calibration data more like the float model, as one line, with
    the figures and the cost (none measured: no lines)."""
    if recommendation is None:
        return []
    r = recommendation
    return [f"compile: {r.agreement_without:.1%} of {r.samples} calibration samples decide like the float model "
            f"(below the {100 * r.tolerance:g}% tolerance); {r.option} measured {r.agreement_with:.1%} on the same samples, "
            f"at {r.memory_bytes_with / max(r.memory_bytes_without, 1):.1f}x the synapse memory "
            f"({readable_bytes(r.memory_bytes_with)} for {r.synapses_with:,} synapses, against "
            f"{readable_bytes(r.memory_bytes_without)} for {r.synapses_without:,}); the bundle written is without it"]


def format_tuning(report: TuningReport) -> list[str]:
    """What ``finetune`` did: the epoch kept, what it trained and what it kept as it was."""
    kept = report.kept
    lines = [f"tuned on {report.data} ({report.samples} samples): kept epoch {kept.epoch}, chip decisions like the "
             f"original's {report.epochs[0].chip_agreement:.1%} -> {kept.chip_agreement:.1%}"
             + (" (no epoch did better than the original weights: the tuned graph has them)" if kept.epoch == 0 else ""),
             f"trained: {', '.join(report.trained)}"]
    if report.frozen:
        lines.append("kept as they are: " + "; ".join(f"{name} ({why})" for name, why in report.frozen))
    return lines


def format_placement(placement: Placement, target: Target) -> list[str]:
    """The compile report's per-core table and chip summary. Runs of more than three cores of one layer
    on one chip collapse to their first and last core and a line with the ranges in between."""
    budget = CoreBudget.of(target)
    cores_per_chip = int(target.value("chip", "neuro_cores"))
    lines = [f"placement on {placement.target}: {placement.cores_used} cores on {placement.chips_used} "
             f"chip{'s' if placement.chips_used != 1 else ''} ({cores_per_chip} cores per chip)",
             f"  {'chip':>4} {'core':>4}  {'layer':10} {'neurons':>15}  {'synapses':>10}  {'encoding':8} "
             f"{'memory used / budget':>24}  {'fan-in / budget':>15}  {'fan-out / budget':>16}"]
    runs: list[list[CoreAssignment]] = []
    for core in placement.cores:
        if runs and runs[-1][-1].population == core.population and runs[-1][-1].chip == core.chip:
            runs[-1].append(core)
        else:
            runs.append([core])
    for run in runs:
        if len(run) <= 3:
            lines.extend(_core_row(core, budget) for core in run)
            continue
        middle = run[1:-1]
        lines.append(_core_row(run[0], budget))
        lines.append(f"  {'...':>9}  {middle[0].core}-{middle[-1].core}: {len(middle)} more cores of "
                     f"{run[0].population}, {_spread(middle, 'neurons')} neurons, {_spread(middle, 'synapses')} "
                     f"synapses, {_spread(middle, 'memory_bytes', readable_bytes)} memory, "
                     f"fan-in {_spread(middle, 'input_axons')}, fan-out {_spread(middle, 'output_axons')}")
        lines.append(_core_row(run[-1], budget))
    memory_budget = cores_per_chip * budget.memory_bits // 8
    for chip in placement.chips():
        lines.append(f"  chip {chip['chip']}: {chip['cores']} of {cores_per_chip} cores, {chip['neurons']:,} neurons, "
                     f"{chip['synapses']:,} synapses, synapse memory {readable_bytes(chip['memory_bytes'])} of "
                     f"{readable_bytes(memory_budget)} ({100 * chip['memory_bytes'] / memory_budget:.1f}%)")
    return lines


def _core_row(core: CoreAssignment, budget: CoreBudget) -> str:
    def of(used: int, limit: int | None) -> str:
        return f"{used:,} / {limit:,}" if limit is not None else f"{used:,} / -"

    share = 100 * core.memory_bytes * 8 / budget.memory_bits
    memory = f"{readable_bytes(core.memory_bytes)} / {readable_bytes(budget.memory_bits // 8)} ({share:.0f}%)"
    neurons = f"{core.start}-{core.stop - 1} ({core.neurons})"
    return (f"  {core.chip:>4} {core.core:>4}  {core.population:10} {neurons:>15}  {core.synapses:>10,}  "
            f"{core.encoding:8} {memory:>24}  {of(core.input_axons, budget.input_axons):>15}  "
            f"{of(core.output_axons, budget.output_axons):>16}")


def _count(value: int) -> str:
    return f"{value:,}"


def _spread(cores: list[CoreAssignment], field: str, show=_count) -> str:
    """The range of one per-core field over ``cores``, e.g. "136-137", or one value if all agree."""
    values = [getattr(core, field) for core in cores]
    low, high = min(values), max(values)
    return show(low) if low == high else f"{show(low)}-{show(high)}"


def _pct(x: float) -> str:
    return f"{100 * x:6.2f}%"


def format_summary(verdict: Verdict) -> list[str]:
    """What verify prints: accuracies, agreement, where the chip parts from the references, activity, energy
    and the verdict."""
    m = verdict.metrics
    acc, counts, parted, flips = m.accuracy, m.output_spike_count_error, m.divergence, m.decision_flips
    first_layers = ", ".join(f"{layer} {n}" for layer, n in parted.first_layer.items() if n)
    steps = parted.first_step
    lines = [f"verify {m.nir_file} on {m.target} via {m.backend}: {m.dataset} ({m.samples} samples, "
             f"{m.num_steps} steps of {m.dt:.4g} {m.time_unit})",
             *([f"  {format_tuned_graph(m.tuned_graph)}"] if m.tuned_graph is not None else []),
             *([f"  accuracy   float {_pct(acc.float)}   discrete {_pct(acc.discrete)}   chip {_pct(acc.chip)}"]
               if acc is not None else []),
             f"  agreement  chip vs float {_pct(m.agreement)}   decision flips: float->discrete "
             f"{flips.float_to_discrete}, discrete->chip {flips.discrete_to_chip}",
             f"  output spike counts  |chip - discrete| mean {counts.mean_abs:.3f} (max {counts.max_abs}) per "
             f"neuron and sample, against a mean count of {counts.reference_mean:.2f}",
             f"  spike trains identical to the discrete reference in {_pct(parted.samples_identical)} of samples"
             + (f"; first divergence by layer: {first_layers}; at step {steps.min} at the earliest, "
                f"median {steps.median:.0f}" if steps else ""),
             *format_firing(m.firing),
             "  first-spike-time error, steps (|chip - float|; mean signed; p95 by cause)",
             "    layer     count    median   p95    max     mean   | discretization p95  quantization p95"]
    for layer, e in m.spike_time_error_steps.items():
        budget = m.error_budget_steps[layer]
        if e.count == 0:
            lines.append(f"    {layer:8s} {0:6d}    (no neuron fired in both)")
            continue
        lines.append(f"    {layer:8s} {e.count:6d}  {e.median:7.2f} {e.p95:6.2f} {e.max:6.2f} "
                     f"{e.mean:+7.2f}   | {_steps(budget.discretization.p95):>18s}  "
                     f"{_steps(budget.quantization.p95):>16s}")
    if m.readout is not None:
        r = m.readout
        lines.append(f"  readout {r.layer} membrane |chip - S float| in chip units (S = {r.scale:.4g} per float v "
                     f"unit; float range {r.float_range:.4g}), per neuron median / p95 / max:")
        lines.extend(f"    neuron {index:3d}  {median:10.1f} {p95:10.1f} {largest:10.1f}"
                     for index, (median, p95, largest) in enumerate(zip(r.error.median, r.error.p95, r.error.max)))
        lines.append(f"    readout spikes on the chip: {r.readout_spikes} (compiled worst-case headroom "
                     f"{r.headroom:.3g}x{'' if r.headroom >= 1 else ': the bound does not hold'})")
    act = m.activity
    wraps = sum(events.current_wraps for events in m.hardware_events.values())
    saturations = sum(events.voltage_saturations for events in m.hardware_events.values())
    lines.append(f"  activity   {act.synaptic_ops_per_inference:.0f} synaptic ops, "
                 f"{act.neuron_updates_per_inference} neuron updates per inference; "
                 f"{wraps} current wraps, {saturations} voltage saturations")
    lines.extend(f"  {line}" for line in format_energy(m.energy))
    lines.extend(format_decision_timing(verdict))
    lines.append("  PASS" if verdict.passed else "  FAIL: " + "; ".join(verdict.failures))
    return [*lines, *format_advice(verdict)]


# The tolerances that count decisions: where one fails, the flips say which stage parted from the model.
DECISION_CHECKS = {"min_agreement", "max_accuracy_drop"}


def format_advice(verdict: Verdict) -> list[str]:
    """Where a decision tolerance failed: the stage most flips come from and the compile option that acts on it (no
    lines where none applies)."""
    m = verdict.metrics
    if not {check.tolerance for check in checks(m, verdict.tolerances) if not check.passed} & DECISION_CHECKS:
        return []
    flips = m.decision_flips
    if flips.discrete_to_chip > flips.float_to_discrete and not m.split_weights:
        return [f"  {flips.discrete_to_chip} decisions flip at the chip's 8-bit weights (discrete -> chip): compile "
                "with --split-weights (about 14-bit weights, twice the synapse memory), or with --calibrate DATA, "
                "which measures on DATA whether it helps"]
    if flips.float_to_discrete > flips.discrete_to_chip:
        return [f"  {flips.float_to_discrete} decisions flip at the time step (float -> discrete): compile with a "
                "finer one (a larger --steps-per-tau, or a smaller --dt where the model allows it)"]
    return []


def format_tuned_graph(record: TunedGraphRecord) -> str:
    """Which float model a verify of a bundle compiled from a fine-tuned graph compared the chip with, and what the
    graph was tuned from, in one sentence."""
    if record.compared_with == "original":
        return (f"compared with the original float model {record.original_file} (sha256 "
                f"{record.original_sha256[:12]}); the bundle was compiled from {record.tuned_file}, tuned on "
                f"{record.data}")
    return (f"compared with the tuned float model {record.tuned_file} (sha256 {record.tuned_sha256[:12]}), which the "
            f"bundle was compiled from; tuned from {record.original_file} (sha256 {record.original_sha256[:12]}) on "
            f"{record.data}")


def format_firing(firing: FiringStatistics) -> list[str]:
    """Per layer, the chip's spike counts against the float reference's: means, the EMD of their distributions,
    the count error and the total's relative difference."""
    lines = [f"  firing, chip vs {firing.reference} reference, spikes per neuron and sample",
             "    layer     chip mean  ref mean     EMD    |error| mean  max   total"]
    for layer, f in firing.layers.items():
        total = "-" if f.total_relative_difference is None else f"{100 * f.total_relative_difference:+.2f}%"
        lines.append(f"    {layer:8s} {f.chip_mean_count:9.3f} {f.reference_mean_count:9.3f}  {f.emd_spikes:7.4f}  "
                     f"{f.count_error_mean_abs:12.4f}  {f.count_error_max_abs:4d}  {total:>7s}")
    return lines


def format_decision_timing(verdict: Verdict) -> list[str]:
    """When decisions are final, what stopping early would cost, difficulty and robustness."""
    m = verdict.metrics
    step_s = m.energy.latency.step_s.nominal

    def latency(name: str) -> str:
        stats = m.decision_latency_steps[name]
        if stats.median is None:
            return f"{name} no decision"
        undecided = f", {stats.undecided} undecided" if stats.undecided else ""
        return (f"{name} {stats.median:.0f} / {stats.p95:.0f} / {stats.mean:.1f} ({seconds(stats.median * step_s)} "
                f"median{undecided})")

    lines = [f"  decision final after, steps median / p95 / mean: {latency('chip')}; {latency('float')}"]
    if m.early_decision is not None:
        early = m.early_decision
        lines.append(f"  early decision: chip accuracy within {early.within * 100:g} points of its final from step "
                     f"{early.step} of {m.num_steps}: {_pct(early.accuracy).strip()}, {joules(early.energy_j.nominal)} per "
                     f"inference (the whole run {joules(m.energy.total.energy_j.total.nominal)})")
    d = m.difficulty
    rho = "-" if d.latency_margin_spearman is None else f"{d.latency_margin_spearman:+.2f}"
    lines.append(f"  difficulty: chip latency vs float margin, Spearman {rho}; chip-vs-float flips by margin "
                 f"quartile, hardest first: {', '.join(map(str, d.flips_by_margin_quartile))} "
                 f"(of {', '.join(map(str, d.samples_by_margin_quartile))} samples)")
    if d.count_rule is not None and d.count_rule.decided_otherwise:
        rule = d.count_rule
        lines.append(f"  ties: the float model's top spike counts tie on {rule.tied} samples and {rule.silent} "
                     f"{'has' if rule.silent == 1 else 'have'} no output spike; --decoding {rule.other_decoding} "
                     f"decides {rule.decided_otherwise} of them otherwise (a training script scoring by that rule "
                     "reports another accuracy)")
    if m.robustness:
        lines.append("  robustness       accuracy chip    float   agreement")
        for level in m.robustness:
            accuracy = ("" if level.accuracy_chip is None else
                        f"{_pct(level.accuracy_chip)}  {_pct(level.accuracy_float)}")
            lines.append(f"    {f'{level.kind} {level.level:g}':14s} {accuracy:>17s}  {_pct(level.agreement)}")
    return lines


def format_failure(verdict: Verdict, nir_file: str) -> str:
    """What exceeded which tolerance: one row per tolerance and measurement, measured vs allowed."""
    m = verdict.metrics
    rows = checks(m, verdict.tolerances)
    exceeded = [row for row in rows if not row.passed]
    lines = [f"snn_verify: {nir_file} on {m.target} via {m.backend}, {m.dataset} ({m.samples} samples): "
             f"{len(exceeded)} of {len(rows)} tolerance checks exceeded"]
    if m.accuracy is not None:  # random spike trains have no labels
        lines.append(f"  accuracy float {m.accuracy.float:.4f}, discrete {m.accuracy.discrete:.4f}, chip "
                     f"{m.accuracy.chip:.4f}; agreement {m.agreement:.4f}")
    lines.append(f"  {'':9s}{'tolerance':26s}{'measured':>10s}      {'allowed':<10s}  measurement")
    for row in rows:
        status = "EXCEEDED" if not row.passed else "ok"
        lines.append(f"  {status:9s}{row.tolerance:26s}{row.measured:10.4g}  {'>=' if row.at_least else '<='}  "
                     f"{row.allowed:<10.4g}  {row.subject}")
    return "\n".join([*lines, *format_advice(verdict)])


def _steps(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_energy(energy: EnergyEstimate) -> list[str]:
    """Summary lines of an energy and latency estimate."""
    total, lat = energy.total, energy.latency
    energy_j = total.energy_j
    spread = format_range
    lines = [f"  energy per inference on {energy.target}: {spread(energy_j.total, joules)} = "
             f"{spread(energy_j.dynamic, joules)} dynamic + {spread(energy_j.static, joules)} static "
             f"({energy.chips_used} chip{'s' if energy.chips_used != 1 else ''})",
             f"    basis: {energy.basis.energy}",
             "    layer      synaptic ops    spikes  neuron updates active/inactive  messages  hops E-W/N-S  energy"]
    for name, layer in energy.layers.items():
        lines.append(f"    {name:10s} {layer.synaptic_ops:12,.0f} {layer.spikes:9,.1f}  "
                     f"{layer.neuron_updates_active:14,.0f} / {layer.neuron_updates_inactive:<14,.0f} "
                     f"{layer.spike_messages:9,.0f}  {layer.hops_east_west:6,.0f} / "
                     f"{layer.hops_north_south:<6,.0f}{spread(layer.energy_j, joules)}")
    lines.append(f"  latency per inference: {spread(lat.to_decision_s, seconds)} to the decision "
                 f"({lat.steps_to_decision:.1f} steps on average; a step takes {spread(lat.step_s, seconds)}); "
                 f"whole run {spread(lat.run_s, seconds)}")
    bench, ann = energy.neurobench, energy.ann_baseline
    lines.append(f"  NeuroBench: {bench.effective_acs:,.0f} effective ACs, {bench.effective_macs:,.0f} MACs, "
                 f"{bench.dense_synops:,.0f} dense synaptic ops, activation sparsity "
                 f"{bench.activation_sparsity:.4f}, {bench.membrane_updates:,.0f} membrane updates")
    lines.append(f"  as a conventional ANN: {ann.dense_macs:,} MACs = {joules(ann.energy_j['fp32'])} fp32, "
                 f"{joules(ann.energy_j['int8'])} int8 (Horowitz 2014, 45 nm, arithmetic only)")
    return lines


def format_range(values: Range, unit: Callable[[float], str]) -> str:
    """An estimate as "nominal (low to high)", each in ``unit`` (``joules``, ``seconds``); one value if exact."""
    if values.low == values.high:
        return unit(values.nominal)
    return f"{unit(values.nominal)} ({unit(values.low)} to {unit(values.high)})"


def joules(value: float) -> str:
    return _si(value, "J")


def seconds(value: float) -> str:
    return _si(value, "s")


def _si(value: float, unit: str) -> str:
    for prefix, scale in (("", 1.0), ("m", 1e-3), ("u", 1e-6), ("n", 1e-9), ("p", 1e-12)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"0 {unit}" if value == 0 else f"{value / 1e-15:.3g} f{unit}"
