"""report: one self-contained HTML page that shows where a deployed network parts from the trained one.

``write_report`` turns what ``verify`` measured (the Comparison and its Verdict) into a page with
every image embedded as a base64 PNG, inline CSS, no script and a Content-Security-Policy that
forbids any network access. Sections, each with an id:

  header            model, target, back end, data, pass/fail, the tolerances applied, failures
  accuracy          float / discrete / chip accuracy, and their confusion matrices
  raster            first spikes, float vs chip, of the worst disagreeing samples and a few others
  spike-time-error  per layer, the histogram of the first-spike-time error chip - float, in steps
  error-budget      how much of that error and of the decision flips is time discretization
                    (discrete - float) and how much quantization (chip - discrete)
  quantization      the compile report's quantization table
  energy            energy and latency per inference (the estimate of the verdict)
  placement         the placement report and the neurons of each core (when the bundle has them)
  divergence        for disagreeing samples, the layer and step where chip and discrete first part

Python computes what the page shows (tables as rows of formatted cells, plots as data: URIs);
the Jinja2 template templates/report.html.j2 lays it out, autoescaped, and holds the CSS.
Plots use matplotlib's Agg canvas on Figure objects directly, so pyplot's global state (and the
backend of anyone else in the process) is untouched.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import io
from pathlib import Path
from typing import NamedTuple

import jinja2
import numpy as np

from ...targets.bundle import Bundle, Timing
from ...targets.files import write_atomic
from ..artifacts.network import FloatNetwork
from ..artifacts.verdict import Comparison, Metrics, SpikeTimeErrors, Verdict
from ..stages.tolerances import checks, dotted

MODELS = ("float", "discrete", "chip")
RASTER_SAMPLES = 4  # samples drawn in the raster section, the worst disagreeing ones first
DIVERGENCE_ROWS = 100  # rows of the divergence table; the counts above it cover every sample
FLOAT_COLOR, CHIP_COLOR, DISCRETE_COLOR = "#1f77b4", "#d62728", "#7f7f7f"


# --- first divergence -------------------------------------------------------------------------

def first_divergence(comparison: Comparison, layer_order) -> list[dict]:
    """Where the chip first parts from the model, for every sample whose chip decision differs from
    the float decision.

    Chip and discrete reference run the same step schedule, so their first-spike steps compare
    exactly; the float model's times fall between steps and never do. The divergence is therefore
    taken between chip and discrete: the first layer in ``layer_order`` where any neuron's first
    spike step differs (a neuron firing in one and silent in the other differs too), and, in that
    layer, the earliest step at which the two part: for each differing neuron the earlier of its
    two first-spike steps (where one model has fired and the other not yet), minimized over those
    neurons. ``neurons`` are the neurons that part at that step.

    ``flipped_by`` says which error changed the decision: "discretization" (float != discrete ==
    chip), "quantization" (float == discrete != chip) or "both" (three different decisions).
    When chip and discrete agree in every layer, ``layer``, ``step`` and ``neurons`` are None: the
    chip reproduced the discrete reference exactly, and the disagreement is time discretization's.
    """
    c = comparison
    rows = []
    for sample in np.flatnonzero(c.decisions["chip"] != c.decisions["float"]):
        chosen = {model: int(c.decisions[model][sample]) for model in MODELS}
        row = {"sample": int(sample), "label": None if c.labels is None else int(c.labels[sample]),
               **{f"{model}_decision": chosen[model] for model in MODELS},
               "flipped_by": _flipped_by(chosen), "layer": None, "step": None, "neurons": None}
        for layer in layer_order:
            chip, discrete = c.times["chip"][layer][sample], c.times["discrete"][layer][sample]
            parted = np.minimum(chip, discrete)
            differs = chip != discrete
            if differs.any():
                step = parted[differs].min()
                row.update(layer=layer, step=int(step), neurons=np.flatnonzero(differs & (parted == step)).tolist())
                break
        rows.append(row)
    return rows


def _flipped_by(decision: dict[str, int]) -> str:
    if decision["float"] != decision["discrete"]:
        return "discretization" if decision["discrete"] == decision["chip"] else "both"
    return "quantization"


def disagreement_steps(comparison: Comparison, layer_order, num_steps: int) -> np.ndarray:
    """Per sample, the summed |chip - float| first-spike time over all neurons, in steps; a silent
    neuron counts as firing just after the run (step num_steps + 1)."""
    total = np.zeros(len(comparison.decisions["chip"]))
    for layer in layer_order:
        chip, float_ = (np.minimum(comparison.times[m][layer], num_steps + 1) for m in ("chip", "float"))
        total += np.abs(chip - float_).sum(axis=1)
    return total


def raster_samples(comparison: Comparison, layer_order, num_steps: int, count: int = RASTER_SAMPLES) -> list[int]:
    """The samples to draw: the worst disagreeing ones first (leaving one of several places to an
    agreeing sample when there is one, for contrast), then agreeing ones in data-set order."""
    disagrees = comparison.decisions["chip"] != comparison.decisions["float"]
    severity = disagreement_steps(comparison, layer_order, num_steps)
    worst = [int(s) for s in np.flatnonzero(disagrees)[np.argsort(-severity[disagrees], kind="stable")]]
    agreeing = [int(s) for s in np.flatnonzero(~disagrees)]
    take_worst = min(len(worst), count - 1 if agreeing and count > 1 else count)
    return worst[:take_worst] + agreeing[:count - take_worst]


# --- tables: the data the template lays out ---------------------------------------------------

class Cell(NamedTuple):
    text: str
    numeric: bool  # numbers are right-aligned


class Row(NamedTuple):
    cells: list[Cell]
    css: str  # the row's class ("exceeded" marks a failed tolerance), or ""


class Table(NamedTuple):
    headers: list[str] | None  # None: no header row
    rows: list[Row]


class Group(NamedTuple):
    """Tables under one heading (none when None); a block that is a str is a paragraph."""
    heading: str | None
    blocks: list


def _format(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        # Counts per inference run to tens of thousands: whole numbers there, not 1.003e+04.
        return f"{float(value):.0f}" if 1e4 <= abs(value) < 1e9 else f"{float(value):.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_format(v) for v in value)
    return str(value)


def _cell(value) -> Cell:
    numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    return Cell(_format(value), numeric)


def table(headers, rows, row_classes=None) -> Table:
    """A table of formatted cells (no header row when ``headers`` is None); ``row_classes`` gives
    each row's class."""
    return Table(None if headers is None else [str(h) for h in headers],
                 [Row([_cell(v) for v in row], row_classes[index] if row_classes else "")
                  for index, row in enumerate(rows)])


def _matrix(rows: dict) -> Table:
    """A dict of dicts as one table: a row per key and a column per (dotted) inner key, or the
    transpose when that is narrower (a few layers with many fields read best as columns)."""
    flat = {name: dotted(value) for name, value in rows.items()}
    fields = list(dict.fromkeys(key for value in flat.values() for key in value))
    if len(fields) > len(flat):
        return table(["", *flat], [[key, *(value.get(key) for value in flat.values())] for key in fields])
    return table(["", *fields], [[name, *(value.get(key) for key in fields)] for name, value in flat.items()])


def _records(items: list[dict]) -> Table:
    """A list of dicts as a table with a row per item."""
    flat = [dotted(item) for item in items]
    fields = list(dict.fromkeys(key for item in flat for key in item))
    return table(fields, [[item.get(key) for key in fields] for item in flat])


def _is_matrix(data) -> bool:
    return isinstance(data, dict) and bool(data) and all(isinstance(value, dict) for value in data.values())


def _scalars(data: dict) -> dict:
    return {key: value for key, value in data.items() if not isinstance(value, dict)}


def _blocks(data) -> list:
    """Any JSON-like data as tables, nested dicts sharing one: a list of dicts is a table with a
    row per item, a dict of dicts one table, the scalars of a dict a key/value table."""
    if isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
        return [_records(data)]
    if not isinstance(data, dict):
        return [_format(data)]
    if _is_matrix(data):
        return [_matrix(data)]
    scalars = _scalars(data)
    nested = {key: value for key, value in data.items() if key not in scalars}
    return ([table(None, scalars.items())] if scalars else []) + ([_matrix(nested)] if nested else [])


def data_tables(data) -> list[Group]:
    """Any JSON-like data as tables, without knowing its keys (see ``_blocks``); at the top level
    every nested dict of a dict gets its own heading."""
    if not isinstance(data, dict) or _is_matrix(data):
        return [Group(None, _blocks(data))]
    scalars = _scalars(data)
    return ([Group(None, _blocks(scalars))] if scalars else []) + [
        Group(key, _blocks(value)) for key, value in data.items() if key not in scalars]


class Section(NamedTuple):
    id: str  # the element id; the template gives each its title and layout
    data: dict


# --- plots --------------------------------------------------------------------------------------

def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _class_names(num_classes: int) -> list[str]:
    return [str(k) for k in range(num_classes)] + ["none"]


def confusion(labels: np.ndarray, decisions: np.ndarray, num_classes: int) -> np.ndarray:
    """(true class, decision) counts; the last column counts samples without a decision (-1)."""
    counts = np.zeros((num_classes, num_classes + 1), dtype=np.int64)
    np.add.at(counts, (labels, np.where(decisions < 0, num_classes, decisions)), 1)
    return counts


def confusion_plot(comparison: Comparison, num_classes: int) -> str:
    figure = _figure(3.4 * len(MODELS), 3.2)
    names = _class_names(num_classes)
    for index, model in enumerate(MODELS):
        ax = figure.add_subplot(1, len(MODELS), index + 1)
        counts = confusion(comparison.labels, comparison.decisions[model], num_classes)
        ax.imshow(counts, cmap="Blues", vmin=0)
        for (row, col), n in np.ndenumerate(counts):
            ax.text(col, row, str(n), ha="center", va="center",
                    color="white" if n > 0.6 * max(counts.max(), 1) else "black", fontsize=9)
        ax.set_xticks(range(num_classes + 1), names)
        ax.set_yticks(range(num_classes), names[:-1])
        ax.set_xlabel("decision")
        ax.set_ylabel("true class")
        ax.set_title(model)
    return _png(figure)


def _time_window(comparison: Comparison, layer: str, sample: int, num_steps: int) -> tuple[float, float]:
    """The steps where this layer fired in this sample, with a margin: a step of difference must show."""
    times = np.concatenate([comparison.times[m][layer][sample] for m in ("float", "chip")])
    times = times[np.isfinite(times)]
    if times.size == 0:
        return 0.0, float(num_steps)
    margin = max(2.0, 0.1 * np.ptp(times))
    return max(0.0, times.min() - margin), min(float(num_steps), times.max() + margin)


def raster_plot(comparison: Comparison, layer_order, sample: int, num_steps: int) -> str:
    """First spikes of one sample: float (open circles) and chip (crosses), a panel per layer."""
    from matplotlib.ticker import MaxNLocator

    figure = _figure(11, 2.6)
    for index, layer in enumerate(layer_order):
        ax = figure.add_subplot(1, len(layer_order), index + 1)
        for model, marker, color in (("float", "o", FLOAT_COLOR), ("chip", "x", CHIP_COLOR)):
            times = comparison.times[model][layer][sample]
            fired = np.flatnonzero(np.isfinite(times))
            style = {"facecolors": "none", "edgecolors": color} if marker == "o" else {"color": color}
            ax.scatter(times[fired], fired, marker=marker, s=36, label=model, **style)
        ax.set_xlim(*_time_window(comparison, layer, sample, num_steps))
        ax.set_ylim(-0.5, comparison.times["chip"][layer].shape[1] - 0.5)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(layer)
        ax.set_xlabel("step")
        if index == 0:
            ax.set_ylabel("neuron")
            ax.legend(loc="upper right", fontsize=8)
    return _png(figure)


def _chip_minus_float(comparison: Comparison, layer: str) -> np.ndarray:
    chip, float_ = comparison.times["chip"][layer], comparison.times["float"][layer]
    both = np.isfinite(chip) & np.isfinite(float_)
    return chip[both] - float_[both]


def error_histograms(comparison: Comparison, layer_order) -> str:
    figure = _figure(11, 3.0)
    for index, layer in enumerate(layer_order):
        ax = figure.add_subplot(1, len(layer_order), index + 1)
        errors = _chip_minus_float(comparison, layer)
        if errors.size:
            edges = np.histogram_bin_edges(errors, bins=min(60, max(10, int(np.ptp(errors) * 4) + 1)))
            ax.hist(errors, bins=edges, color=CHIP_COLOR, alpha=0.8)
            ax.axvline(0, color="black", linewidth=0.8)
        else:
            ax.text(0.5, 0.5, "no neuron fired in both", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(layer)
        ax.set_xlabel("chip - float first-spike time (steps)")
        if index == 0:
            ax.set_ylabel("neurons x samples")
    return _png(figure)


def budget_plot(metrics: Metrics, layer_order) -> str:
    """p95 |error| per layer and decision flips, split by cause."""
    budget, flips = metrics.error_budget_steps, metrics.decision_flips
    figure = _figure(10, 3.0)
    ax = figure.add_subplot(1, 2, 1)
    x = np.arange(len(layer_order))
    for offset, cause, color in ((-0.2, "discretization", DISCRETE_COLOR), (0.2, "quantization", CHIP_COLOR)):
        p95 = [getattr(budget[layer], cause).p95 or 0.0 for layer in layer_order]
        ax.bar(x + offset, p95, width=0.4, color=color, label=cause)
    ax.set_xticks(x, list(layer_order))
    ax.set_ylabel("p95 |first-spike-time error| (steps)")
    ax.legend(fontsize=8)
    ax = figure.add_subplot(1, 2, 2)
    ax.bar(["discretization\n(float -> discrete)", "quantization\n(discrete -> chip)"],
           [flips.float_to_discrete, flips.discrete_to_chip], color=[DISCRETE_COLOR, CHIP_COLOR])
    ax.set_ylabel("decision flips (samples)")
    return _png(figure)


# --- sections: the data of each, laid out by templates/report.html.j2 ---------------------------

def header_data(verdict: Verdict) -> dict:
    m = verdict.metrics
    facts = [["model (NIR file)", m.nir_file], ["target", m.target], ["back end", m.backend],
             ["data set", m.dataset], ["samples", str(m.samples)],
             ["steps", f"{m.num_steps} steps of dt = {m.dt:.6g} {m.time_unit}"],
             ["float reference", m.float_reference], ["bundle checksum", m.bundle_checksum[:16]]]
    rows = checks(m, verdict.tolerances)
    tolerances = table(["tolerance", "measurement", "measured", "allowed", ""],
                       [[c.tolerance, c.subject, c.measured, f"{'>=' if c.at_least else '<='} {c.allowed:g}",
                         "ok" if c.passed else "exceeded"] for c in rows],
                       ["" if c.passed else "exceeded" for c in rows])
    return {"nir_file": m.nir_file, "target": m.target, "passed": verdict.passed, "facts": table(None, facts),
            "tolerances": tolerances, "failures": list(verdict.failures)}


def accuracy_section(comparison: Comparison, verdict: Verdict, num_classes: int) -> Section:
    m = verdict.metrics
    rows = [[model, getattr(m.accuracy, model), float(np.mean(comparison.decisions[model] == comparison.decisions["float"])),
             int(np.sum(comparison.decisions[model] < 0))] for model in MODELS]
    return Section("accuracy", {"table": table(["model", "accuracy", "decides as float", "samples without decision"], rows),
                                "confusion": confusion_plot(comparison, num_classes)})


def raster_section(comparison: Comparison, layer_order, num_steps: int) -> Section:
    disagrees = comparison.decisions["chip"] != comparison.decisions["float"]
    drawn = [{"sample": sample, "label": None if comparison.labels is None else int(comparison.labels[sample]),
              "float_decision": int(comparison.decisions["float"][sample]),
              "chip_decision": int(comparison.decisions["chip"][sample]), "disagrees": bool(disagrees[sample]),
              "uri": raster_plot(comparison, layer_order, sample, num_steps)}
             for sample in raster_samples(comparison, layer_order, num_steps)]
    return Section("raster", {"disagreeing": int(disagrees.sum()), "samples": len(disagrees), "drawn": drawn})


ERROR_COLUMNS = ["both fired", "median |err|", "p95 |err|", "max |err|", "mean err", "fired in one only"]


def _error_cells(stats: SpikeTimeErrors, later: str, earlier: str) -> list:
    """The ERROR_COLUMNS of one spike-time error comparison (later - earlier) of verify's metrics."""
    return [stats.count, stats.median, stats.p95, stats.max, stats.mean,
            f"{later}: {stats.only_first}, {earlier}: {stats.only_second}"]


def error_section(comparison: Comparison, verdict: Verdict, layer_order) -> Section:
    errors = verdict.metrics.spike_time_error_steps
    rows = [[layer, *_error_cells(errors[layer], "chip", "float")] for layer in layer_order]
    return Section("spike-time-error", {"histograms": error_histograms(comparison, layer_order),
                                        "table": table(["layer", *ERROR_COLUMNS], rows)})


def budget_section(verdict: Verdict, layer_order) -> Section:
    m = verdict.metrics
    budget, flips = m.error_budget_steps, m.decision_flips
    causes = (("discretization", "discrete", "float"), ("quantization", "chip", "discrete"))
    rows = [[layer, f"{cause} ({later} - {earlier})", *_error_cells(getattr(budget[layer], cause), later, earlier)]
            for layer in layer_order for cause, later, earlier in causes]
    flip_rows = [["discretization", "float -> discrete", flips.float_to_discrete],
                 ["quantization", "discrete -> chip", flips.discrete_to_chip]]
    return Section("error-budget", {"plot": budget_plot(m, layer_order),
                                    "table": table(["layer", "cause", *ERROR_COLUMNS], rows),
                                    "flips": table(["cause", "between", "samples whose decision changed"], flip_rows)})


def divergence_section(rows: list[dict], num_samples: int, timing: Timing) -> Section:
    if not rows:
        return Section("divergence", {"samples": num_samples, "summary": None})
    counts: dict[tuple, int] = {}
    for row in rows:
        key = (row["flipped_by"], row["layer"] or "(none: chip = discrete)")
        counts[key] = counts.get(key, 0) + 1
    summary = table(["decision flipped by", "first layer where chip and discrete part", "samples"],
                    [[cause, layer, n] for (cause, layer), n in sorted(counts.items())])
    listed = rows[:DIVERGENCE_ROWS]
    detail = table(["sample", "true class", "float", "discrete", "chip", "flipped by", "layer", "step",
                    f"time ({timing.time_unit})", "neurons parting"],
                   [[r["sample"], r["label"], r["float_decision"], r["discrete_decision"], r["chip_decision"],
                     r["flipped_by"], r["layer"], r["step"], None if r["step"] is None else r["step"] * timing.dt,
                     r["neurons"]] for r in listed])
    return Section("divergence", {"samples": num_samples, "summary": summary, "detail": detail,
                                  "listed": len(listed), "flipped": len(rows)})


def placement_section(bundle: Bundle) -> Section:
    cores = [dataclasses.asdict(core) for core in bundle.placement.cores]
    report = bundle.report.placement if bundle.report is not None else None
    groups = (data_tables(dataclasses.asdict(report)) if report else []) + ([Group("neurons per core", _blocks(cores))] if cores else [])
    return Section("placement", {"groups": groups})


# --- the page -----------------------------------------------------------------------------------

@functools.cache
def _template():
    # Autoescaped, so every value lands as text; undefined names fail rather than render empty.
    environment = jinja2.Environment(loader=jinja2.PackageLoader(__package__, "templates"), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return environment.get_template("report.html.j2")


def render(comparison: Comparison, verdict: Verdict, net: FloatNetwork, bundle: Bundle) -> str:
    """The report as one HTML string."""
    layer_order = [layer.name for layer in net.layers]
    num_steps = bundle.timing.num_steps
    labelled = comparison.labels is not None  # random input spike trains have no labels, hence no accuracy
    num_classes = bundle.network.population(bundle.network.output).size
    if labelled:
        num_classes = max(int(comparison.labels.max(initial=0)) + 1, num_classes)
    sections = [
        *([accuracy_section(comparison, verdict, num_classes)] if labelled else []),
        raster_section(comparison, layer_order, num_steps),
        error_section(comparison, verdict, layer_order),
        budget_section(verdict, layer_order),
        Section("quantization", {"groups": data_tables(
            {name: dataclasses.asdict(row) for name, row in bundle.report.quantization.items()}
            if bundle.report is not None else {})}),
        Section("energy", {"groups": data_tables(dataclasses.asdict(verdict.metrics.energy))}),
        *([placement_section(bundle)] if bundle.placement.cores or bundle.report is not None else []),
        divergence_section(first_divergence(comparison, layer_order), comparison.inputs.num_samples, bundle.timing),
    ]
    return _template().render(header=header_data(verdict), sections=sections)


def write_report(path, comparison: Comparison, verdict: Verdict, net: FloatNetwork, bundle: Bundle) -> None:
    """Write the report to ``path`` atomically (a temp file, then a rename)."""
    write_atomic(Path(path), render(comparison, verdict, net, bundle).encode("utf-8"))
