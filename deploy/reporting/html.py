"""report: one self-contained HTML page that shows where a deployed network parts from the trained one.

``write_report`` turns what ``verify`` measured (the Comparison and its Verdict) into a page with
every image embedded as a base64 PNG, inline CSS, no script and a Content-Security-Policy that
forbids any network access. Sections, each with an id:

  header            pass/fail and the verdict in words (agreement, flips near a tie, when decisions are
                    final), model, target, data, the tolerances applied and where each came from
  accuracy          float / discrete / chip accuracy, and their confusion matrices
  decision-timing   when decisions are final (chip and float), accuracy if stopped after each step with
                    the early-decision step, and decision latency against the float model's margin
  raster            every spike, float vs chip, of the worst disagreeing samples and a few others
  spike-time-error  per layer, the histogram of the first-spike-time error chip - float, in steps
  error-budget      how much of that error and of the decision flips is time discretization
                    (discrete - float) and how much quantization (chip - discrete)
  firing            per layer, the distribution of spike counts per neuron and sample, chip against the
                    discrete float reference, its Earth Mover's Distance and the spike-count error
  readout           a readout output's (LI, CubaLI, I) membrane error per neuron, chip against the discrete
                    float reference, in chip units, and its spikes on the chip (marked: its bound failed)
  quantization      the compile report's quantization table
  energy            energy per inference as ranges (low, nominal, high) per layer, dynamic and static,
                    and latency, with unit prefixes as the command line prints them
  placement         a map of each chip's cores coloured by layer with the synapse memory each uses, the
                    per-layer and per-chip use, and the per-core listing compile prints
  divergence        for disagreeing samples, the layer and step where chip and discrete first part

Python computes what the page shows (tables as rows of formatted cells, plots as matplotlib Figures
encoded as data: URIs at the end of ``render``); the Jinja2 template templates/report.html.j2 lays it
out, autoescaped, and holds the CSS. Plots use matplotlib's Agg canvas on Figure objects directly, so
pyplot's global state (and the backend of anyone else in the process) is untouched. Every plot keeps
its markers whole inside the axes (``fit_markers``) and its legend outside them.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import io
import math
from pathlib import Path
from typing import Callable, NamedTuple

import jinja2
import numpy as np

from ...targets import decision
from ...targets.bundle import Bundle, CalibrationReport, Placement, Recommendation, Timing
from ...targets.description import Target
from ...targets.files import write_atomic
from ..artifacts.energy import EnergyEstimate, Range
from ..artifacts.firing import FiringStatistics
from ..artifacts.latency import DecisionTiming
from ..artifacts.network import FloatNetwork
from ..artifacts.robustness import PERTURBATIONS
from ..artifacts.tolerances import DEFAULT, FILE, Tolerances
from ..artifacts.verdict import Comparison, Metrics, SpikeTimeErrors, Verdict
from ..stages.energy import Cores
from ..stages.latency import SampleTiming, sample_timing
from ..stages.place import CoreBudget, readable_bytes
from ..stages.tolerances import FIELDS, checks, dotted, origin
from ..stages.verify import bundle_target
from .text import (format_advice, format_placement, format_range, format_recommendation, format_tuned_graph,
                   joules, seconds)

MODELS = ("float", "discrete", "chip")
RASTER_SAMPLES = 4  # samples drawn in the raster section, the worst disagreeing ones first
DIVERGENCE_ROWS = 100  # rows of the divergence table; the counts above it cover every sample
FLOAT_COLOR, CHIP_COLOR, DISCRETE_COLOR = "#1f77b4", "#d62728", "#7f7f7f"
DYNAMIC_COLOR, STATIC_COLOR, TOTAL_COLOR = "#ff7f0e", "#9467bd", "#222222"
TIE_WITHIN = 1.0  # a flip "within one step (spike) of a tie": the float model's margin is at most this
CHIPS_DRAWN = 8  # chips drawn in the placement map; the tables cover every chip


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
    if isinstance(value, Cell):  # formatted already (a value with its unit)
        return value
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


def quantity(text: str) -> Cell:
    """A number already formatted with its unit ("36.6 uJ"), right-aligned as numbers are."""
    return Cell(text, True)


class Section(NamedTuple):
    id: str  # the element id; the template gives each its title and layout
    data: dict  # Figures in it become data: URIs when the page is rendered


# --- plots --------------------------------------------------------------------------------------

def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _is_figure(value) -> bool:
    from matplotlib.figure import Figure

    return isinstance(value, Figure)


def marker_radius_px(collection, dpi: float) -> float:
    """The largest marker of a scatter collection: half its diameter (sizes are points squared) plus half its
    edge, in pixels."""
    sizes = collection.get_sizes()
    widths = collection.get_linewidths()
    size = float(np.sqrt(sizes.max())) if len(sizes) else 0.0
    edge = float(np.max(widths)) if len(widths) else 0.0
    return (size / 2 + edge / 2) * dpi / 72


def _scatters(ax) -> list:
    from matplotlib.collections import PathCollection

    return [c for c in ax.collections if isinstance(c, PathCollection) and len(c.get_offsets())]


def _fit_axes(ax, dpi: float) -> bool:
    """Widen each linear axis of ``ax`` so that its scatter markers lie wholly inside (matplotlib's limits hold
    the markers' centres only, so a marker on the edge is cut in half). True if it widened one."""
    collections = _scatters(ax)
    points = (np.concatenate([np.asarray(c.get_offsets(), dtype=float) for c in collections]) if collections
              else np.empty((0, 2)))
    points = points[np.isfinite(points).all(axis=1)]
    if not points.size:
        return False
    radius = max(marker_radius_px(c, dpi) for c in collections) + 1.5  # a pixel and a half to spare
    box = ax.get_window_extent()
    widened = False
    for index, (get, set_, scale, pixels) in enumerate(((ax.get_xlim, ax.set_xlim, ax.get_xscale(), box.width),
                                                        (ax.get_ylim, ax.set_ylim, ax.get_yscale(), box.height))):
        low, high = get()
        if scale != "linear" or pixels <= 2 * radius or high <= low:
            continue
        per_pixel = (high - low) / (pixels - 2 * radius)  # the widened span spread over the pixels left
        need_low, need_high = points[:, index].min() - radius * per_pixel, points[:, index].max() + radius * per_pixel
        if need_low < low or need_high > high:
            set_(min(low, need_low), max(high, need_high))
            widened = True
    return widened


def fit_markers(figure) -> None:
    """Every scatter marker of ``figure`` whole inside its axes. Again after widening an axis: that can change
    its tick labels, hence the layout, hence the pixels a marker takes."""
    for _ in range(3):
        if not any(_scatters(ax) for ax in figure.axes):
            return
        figure.draw_without_rendering()
        if not any([_fit_axes(ax, figure.dpi) for ax in figure.axes]):
            return


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _legend(figure, handles=None, labels=None, below: bool = False, **options) -> None:
    """The figure's legend, outside every axes (on the right, or ``below`` them in one row), so that it covers
    no data."""
    if handles is None:
        handles, labels = figure.axes[0].get_legend_handles_labels()
    where = {"loc": "outside lower center", "ncols": len(handles)} if below else {"loc": "outside right upper"}
    figure.legend(handles, labels, fontsize=8, **where, **options)


def _class_names(num_classes: int) -> list[str]:
    return [str(k) for k in range(num_classes)] + ["none"]


def confusion(labels: np.ndarray, decisions: np.ndarray, num_classes: int) -> np.ndarray:
    """(true class, decision) counts; the last column counts samples without a decision (-1)."""
    counts = np.zeros((num_classes, num_classes + 1), dtype=np.int64)
    np.add.at(counts, (labels, np.where(decisions < 0, num_classes, decisions)), 1)
    return counts


def confusion_plot(comparison: Comparison, num_classes: int):
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
    return figure


def float_side(comparison: Comparison) -> str:
    """What the raster's float side shows: the continuous model, or the discrete reference standing in for it."""
    return "float" if comparison.float_reference == "continuous" else "discrete float reference"


def spikes_of(comparison: Comparison, model: str, layer: str, sample: int) -> tuple[np.ndarray, np.ndarray]:
    """Every spike of one layer in one sample as (times in steps, neurons). The chip's come from its record; the
    float side's from the continuous model (fire-once: its first spikes are all its spikes) or, where the float
    reference is the discrete one, from the discrete reference's record."""
    if model == "float" and comparison.float_reference == "continuous":
        times = comparison.times["float"][layer][sample]
        fired = np.flatnonzero(np.isfinite(times))
        return times[fired], fired
    events = (comparison.record.spikes if model == "chip" else comparison.discrete)[layer].events
    first, last = np.searchsorted(events[0], [sample, sample + 1])  # sorted by sample
    return events[1, first:last].astype(float), events[2, first:last]


def _time_window(times: np.ndarray, num_steps: int) -> tuple[float, float]:
    """The steps where a layer fired, with a margin: a step of difference must show."""
    if times.size == 0:
        return 0.0, float(num_steps)
    margin = max(2.0, 0.05 * np.ptp(times))
    return times.min() - margin, times.max() + margin


def raster_plot(comparison: Comparison, layer_order, sample: int, num_steps: int):
    """Every spike of one sample: float side (open circles) and chip (crosses), a panel per layer."""
    from matplotlib.ticker import MaxNLocator

    figure = _figure(11, 2.8)
    for index, layer in enumerate(layer_order):
        ax = figure.add_subplot(1, len(layer_order), index + 1)
        drawn = {model: spikes_of(comparison, model, layer, sample) for model in ("float", "chip")}
        dense = sum(times.size for times, _ in drawn.values()) > 400
        size = 14 if dense else 36
        times, neurons = drawn["float"]
        ax.scatter(times, neurons, marker="o", s=size, facecolors="none", edgecolors=FLOAT_COLOR,
                   linewidths=0.8, label=float_side(comparison))
        times, neurons = drawn["chip"]
        ax.scatter(times, neurons, marker="x", s=size, color=CHIP_COLOR, linewidths=0.8, label="chip")
        ax.set_xlim(*_time_window(np.concatenate([t for t, _ in drawn.values()]), num_steps))
        ax.set_ylim(-0.5, comparison.times["chip"][layer].shape[1] - 0.5)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(layer)
        ax.set_xlabel("step")
        if index == 0:
            ax.set_ylabel("neuron")
    _legend(figure)
    return figure


def _chip_minus_float(comparison: Comparison, layer: str) -> np.ndarray:
    chip, float_ = comparison.times["chip"][layer], comparison.times["float"][layer]
    both = np.isfinite(chip) & np.isfinite(float_)
    return chip[both] - float_[both]


def error_histograms(comparison: Comparison, layer_order):
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
    return figure


def budget_plot(metrics: Metrics, layer_order):
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
    ax = figure.add_subplot(1, 2, 2)
    ax.bar(["discretization\n(float -> discrete)", "quantization\n(discrete -> chip)"],
           [flips.float_to_discrete, flips.discrete_to_chip], color=[DISCRETE_COLOR, CHIP_COLOR])
    ax.set_ylabel("decision flips (samples)")
    _legend(figure)
    return figure


def firing_plot(firing: FiringStatistics):
    """Per layer, the distribution of spike counts per neuron and sample, float reference and chip side by side."""
    from matplotlib.ticker import MaxNLocator

    layers = list(firing.layers.items())
    figure = _figure(11, 3.0)
    for index, (layer, stats) in enumerate(layers):
        ax = figure.add_subplot(1, len(layers), index + 1)
        tally = stats.tally
        for offset, frequencies, color, label in ((-0.2, tally.reference_histogram, FLOAT_COLOR,
                                                   f"{firing.reference} float reference"),
                                                  (0.2, tally.chip_histogram, CHIP_COLOR, "chip")):
            ax.bar(np.arange(len(frequencies)) + offset, np.asarray(frequencies) / max(tally.pairs, 1), width=0.4,
                   color=color, label=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{layer}: EMD {stats.emd_spikes:.4g} spikes")
        ax.set_xlabel("spikes per neuron and sample")
        if index == 0:
            ax.set_ylabel("fraction of neurons x samples")
    _legend(figure, below=True)
    return figure


def accuracy_by_step_plot(timing: DecisionTiming, num_steps: int):
    """Accuracy if the run were stopped after each step, chip and float, with the early-decision step."""
    by_step, early = timing.accuracy_by_step, timing.early_decision
    steps = np.asarray(by_step.steps)
    chip, float_ = 100 * np.asarray(by_step.chip), 100 * np.asarray(by_step.float)
    figure = _figure(10, 3.4)
    ax = figure.add_subplot(1, 1, 1)
    within = 100 * early.within
    ax.axhspan(chip[-1] - within, chip[-1] + within, color=CHIP_COLOR, alpha=0.12, linewidth=0,
               label=f"within {within:g} points of the chip's final accuracy")
    ax.plot(steps, float_, color=FLOAT_COLOR, linewidth=1.4, label="float")
    ax.plot(steps, chip, color=CHIP_COLOR, linewidth=1.4, label="chip")
    ax.axvline(early.step, color=CHIP_COLOR, linestyle="--", linewidth=0.9)
    ax.scatter([early.step], [100 * early.accuracy], s=40, color=CHIP_COLOR, zorder=3,
               label=f"early decision: step {early.step}, {100 * early.accuracy:.1f}%")
    ax.set_xlim(0, num_steps + 1)
    ax.set_ylim(0, 100)
    ax.set_xlabel("stopped after step")
    ax.set_ylabel("accuracy (%)")
    _legend(figure, below=True)
    return figure


def robustness_plot(levels) -> object:
    """Accuracy (or, unlabelled, agreement) of chip and float against each perturbation's level, a panel a kind."""
    kinds = list(dict.fromkeys(level.kind for level in levels))
    figure = _figure(5 * len(kinds), 3.2)
    for index, kind in enumerate(kinds):
        ax = figure.add_subplot(1, len(kinds), index + 1)
        rows = sorted((level for level in levels if level.kind == kind), key=lambda level: level.level)
        x = [level.level for level in rows]
        if rows[0].accuracy_chip is not None:
            ax.plot(x, [100 * level.accuracy_float for level in rows], "o-", color=FLOAT_COLOR, label="float accuracy")
            ax.plot(x, [100 * level.accuracy_chip for level in rows], "s-", color=CHIP_COLOR, label="chip accuracy")
        ax.plot(x, [100 * level.agreement for level in rows], "^--", color="0.4", label="chip-float agreement")
        ax.margins(0.08, 0.15)  # markers whole at the extremes (100% agreement)
        ax.set_xlabel(f"{kind}: {PERTURBATIONS[kind]}", fontsize=8)
        ax.set_ylabel("%")
    _legend(figure, below=True)
    return figure


def robustness_section(verdict: Verdict) -> Section:
    levels = verdict.metrics.robustness
    rows = [[level.kind, level.level, level.accuracy_chip, level.accuracy_float, level.agreement] for level in levels]
    return Section("robustness", {"table": table(["perturbation", "level", "chip accuracy", "float accuracy",
                                                  "agreement"], rows),
                                  "plot": robustness_plot(levels)})


# The unit of the float model's margin, per decoding, and what "within one of it of a tie" means.
MARGIN_UNIT = {decision.FIRST_SPIKE: "step", **{decoding: "spike" for decoding in decision.COUNT_DECODINGS},
               **{decoding: "chip unit" for decoding in decision.MEMBRANE_DECODINGS}}
TIE_PHRASE = {decision.FIRST_SPIKE: "the trained model's first two output spikes at most one step apart",
              **{decoding: "the trained model's two largest output spike counts differ by at most one"
                 for decoding in decision.COUNT_DECODINGS},
              **{decoding: "the trained model's two highest readout scores at most one chip unit of membrane apart"
                 for decoding in decision.MEMBRANE_DECODINGS}}


def margin_label(decoding: str) -> str:
    if decoding in decision.MEMBRANE_DECODINGS:
        return "float margin: its two highest readout scores' difference, in chip units of membrane"
    return ("float margin: steps between its first two output spikes" if decoding == decision.FIRST_SPIKE
            else "float margin: its two largest output spike counts' difference")


def latency_margin_plot(per_sample: SampleTiming, flipped: np.ndarray, timing: DecisionTiming, decoding: str):
    """Each sample's chip decision latency against the float model's margin; decision flips stand out."""
    margin, latency = per_sample.margins, per_sample.chip_steps
    drawn = np.isfinite(margin) & (latency > 0)
    figure = _figure(10, 3.8)
    ax = figure.add_subplot(1, 1, 1)
    agree, flip = drawn & ~flipped, drawn & flipped
    ax.scatter(margin[agree], latency[agree], s=10, color=DISCRETE_COLOR, alpha=0.5, linewidths=0,
               label=f"chip decides as float ({int(agree.sum())})")
    ax.scatter(margin[flip], latency[flip], s=30, marker="x", color=CHIP_COLOR, linewidths=1.2,
               label=f"decision flip ({int(flip.sum())})")
    ax.axvline(TIE_WITHIN, color="black", linestyle=":", linewidth=0.9,
               label=f"within one {MARGIN_UNIT[decoding]} of a tie")
    rho = timing.difficulty.latency_margin_spearman
    ax.set_title("Spearman's rank correlation " + ("not defined (a constant)" if rho is None else f"{rho:+.2f}"),
                 fontsize=10)
    ax.set_xlabel(margin_label(decoding))
    ax.set_ylabel("chip decision final at step")
    _legend(figure, below=True)
    left_out = {"only one output fired in the float model": int(np.isinf(margin).sum()),
                "the float model does not decide": int(np.isnan(margin).sum()),
                "the chip does not decide": int((np.isfinite(margin) & (latency <= 0)).sum())}
    return figure, {why: n for why, n in left_out.items() if n}


def energy_plot(energy: EnergyEstimate):
    """Energy per inference as ranges: a line from low to high with a dot at the nominal value, per layer
    (dynamic), static (the chips over the whole run) and the total."""
    from matplotlib.ticker import FuncFormatter

    split = energy.total.energy_j
    rows = [(f"{name} (dynamic)", layer.energy_j, DYNAMIC_COLOR) for name, layer in energy.layers.items()]
    rows += [("dynamic, all layers", split.dynamic, DYNAMIC_COLOR),
             (f"static ({energy.chips_used} chip{'s' if energy.chips_used != 1 else ''}, whole run)", split.static,
              STATIC_COLOR), ("total", split.total, TOTAL_COLOR)]
    figure = _figure(10, 0.45 * len(rows) + 1.1)
    ax = figure.add_subplot(1, 1, 1)
    y = np.arange(len(rows))[::-1]
    lows, highs = [r.low for _, r, _ in rows], [r.high for _, r, _ in rows]
    for position, (_, values, color) in zip(y, rows):
        ax.hlines(position, values.low, values.high, color=color, linewidth=5, alpha=0.45)
        ax.scatter([values.nominal], [position], s=36, color=color, zorder=3)
    positive = [v for v in lows + highs if v > 0]
    if positive and max(positive) / min(positive) > 30:
        ax.set_xscale("log")
        ax.set_xlim(min(positive) / 2, max(positive) * 2)  # a log axis: markers get a factor of 2 either side
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: joules(value)))
    ax.set_yticks(y, [label for label, _, _ in rows])
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlabel("energy per inference (line: low to high estimate; dot: nominal)")
    ax.grid(axis="x", alpha=0.3)
    return figure


def chip_map(placement: Placement, target: Target):
    """Each chip's cores on its mesh (tile columns east-west, tile rows north-south, the cores of a tile in a
    small grid), coloured by layer; the filled height of a core is the synapse memory it uses."""
    from matplotlib.patches import Patch, Rectangle

    per_chip = int(target.value("chip", "neuro_cores"))
    columns, rows = (int(v) for v in target.value("chip", "mesh"))
    per_tile = int(target.value("chip", "cores_per_tile"))
    side = math.ceil(math.sqrt(per_tile))  # a tile's cores as a side x side grid
    memory = CoreBudget.of(target).memory_bits // 8
    layers = list(dict.fromkeys(core.population for core in placement.cores))
    colors = {layer: f"C{index % 10}" for index, layer in enumerate(layers)}
    chips = sorted({core.chip for core in placement.cores})[:CHIPS_DRAWN]
    cell = min(0.32 * side, 5.0 / max(columns, rows))  # inches per tile: about a third of an inch per core
    figure = _figure(len(chips) * (columns * cell + 0.9) + 2.6, rows * cell + 1.0)
    for index, chip in enumerate(chips):
        ax = figure.add_subplot(1, len(chips), index + 1)
        on_chip = tuple(core for core in placement.cores if core.chip == chip)
        at = Cores.of(on_chip, target)  # the mesh position the energy model routes by
        for core in range(per_chip):
            tile, slot = divmod(core, per_tile)
            x0, y0 = tile % columns + (slot % side) / side, tile // columns + (slot // side) / side
            ax.add_patch(Rectangle((x0 + 0.04 / side, y0 + 0.04 / side), 0.92 / side, 0.92 / side,
                                   facecolor="#f3f3f3", edgecolor="#cccccc", linewidth=0.5))
        by_core: dict[int, list[int]] = {}
        for position, core in enumerate(on_chip):
            by_core.setdefault(core.core, []).append(position)
        for core, positions in by_core.items():
            slot = core % per_tile
            for share, position in enumerate(positions):  # cores holding several layers' blocks: side by side
                assignment = on_chip[position]
                width = 0.92 / side / len(positions)
                x0 = at.x[position] + (slot % side) / side + 0.04 / side + share * width
                y0 = at.y[position] + (slot // side) / side + 0.04 / side
                used = assignment.memory_bytes / memory
                color = colors[assignment.population]
                ax.add_patch(Rectangle((x0, y0), width, 0.92 / side, facecolor=color, alpha=0.22,
                                       edgecolor=color, linewidth=1.0))
                ax.add_patch(Rectangle((x0, y0), width, 0.92 / side * min(used, 1.0), facecolor=color, alpha=0.85,
                                       linewidth=0))
                ax.text(x0 + width / 2, y0 + 0.46 / side, f"{100 * used:.0f}%", ha="center", va="center",
                        fontsize=7 if side == 1 else 5.5)
        if side > 1:  # the tiles' borders, around their cores
            ax.vlines(np.arange(1, columns), 0, rows, color="#999999", linewidth=0.8)
            ax.hlines(np.arange(1, rows), 0, columns, color="#999999", linewidth=0.8)
        ax.set_xlim(0, columns)
        ax.set_ylim(0, rows)
        ax.set_aspect("equal")
        ax.set_xticks(np.arange(columns) + 0.5, [str(v) for v in range(columns)], fontsize=7)
        ax.set_yticks(np.arange(rows) + 0.5, [str(v) for v in range(rows)], fontsize=7)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_xlabel("tile column (east-west)")
        if index == 0:
            ax.set_ylabel("tile row (north-south)")
        in_use = sum(core.memory_bytes for core in on_chip)
        ax.set_title(f"chip {chip}: {len(by_core)} of {per_chip} cores\n{readable_bytes(in_use)} of "
                     f"{readable_bytes(per_chip * memory)} synapse memory", fontsize=9)
    handles = [Patch(facecolor=colors[layer], alpha=0.85) for layer in layers]
    labels = []
    for layer in layers:
        cores = [core for core in placement.cores if core.population == layer]
        labels.append(f"{layer}: {len(cores)} core{'s' if len(cores) != 1 else ''}, "
                      f"{readable_bytes(sum(core.memory_bytes for core in cores))}")
    _legend(figure, handles, labels, title="layer: cores, synapse memory", title_fontsize=8)
    return figure


# --- sections: the data of each, laid out by templates/report.html.j2 ---------------------------

def _percent(count: int, total: int) -> str:
    """count / total in percent, with as many decimals as it takes not to round to 0% or 100% when it is neither."""
    value = 100 * count / total
    for digits in (1, 2, 3):
        text = f"{value:.{digits}f}"
        if (0 < count < total and float(text) not in (0.0, 100.0)) or count in (0, total):
            return f"{text}%"
    return f"{text}%"


def _origin_text(tolerances: Tolerances, field: str) -> str:
    where = origin(tolerances, field)
    if where.source == DEFAULT:
        return "default"
    return f"tolerance file {where.where}" if where.source == FILE else f"option {where.where}"


def _steps_as_time(steps: float | None, step_s: float) -> str:
    return "–" if steps is None else f"{steps:.0f} steps ({seconds(steps * step_s)})"


def verdict_sentences(comparison: Comparison, verdict: Verdict, per_sample: SampleTiming, timing: DecisionTiming,
                      decoding: str) -> list[str]:
    """The verdict in plain language, each claim computed from the comparison: agreement, how many flips lie
    within one step (first_spike) or one spike (spike_count) of a tie in the float model's margin, accuracy,
    when decisions are final, and pass or fail."""
    m = verdict.metrics
    samples = len(comparison.decisions["chip"])
    flipped = comparison.decisions["chip"] != comparison.decisions["float"]
    flips = int(flipped.sum())
    trained = "the trained model" + ("" if comparison.float_reference == "continuous" else
                                     " (here its discrete float reference: the chip's step schedule in float64, unquantized)")
    unit = MARGIN_UNIT[decoding]
    if not flips:
        agreement = f"The chip decides as {trained} on all {samples} samples."
    else:
        margin = per_sample.margins[flipped]
        near = int((margin <= TIE_WITHIN).sum())
        undecided = int(np.isnan(margin).sum())
        which = (f"{near} of the {flips} flips {'are' if near != 1 else 'is'}" if flips > 1
                 else f"the one flip is{'' if near else ' not'}")
        agreement = (f"The chip decides as {trained} on {_percent(samples - flips, samples)} of {samples} samples; "
                     f"{which} within one {unit} of a tie ({TIE_PHRASE[decoding]})"
                     + (f", and in {undecided} the trained model does not decide" if undecided else "") + ".")
    sentences = [agreement]
    hardest = timing.difficulty.flips_by_margin_quartile[0]
    if flips:
        which = (f"{hardest} of the {flips} flips {'are' if hardest != 1 else 'is'}" if flips > 1
                 else f"It is{'' if hardest else ' not'}")
        sentences.append(f"{which} among the quarter of samples that the trained model decides by the smallest "
                         f"margins (the hardest).")
    if m.accuracy is not None:
        sentences.append(f"Accuracy on the labels: trained model {100 * m.accuracy.float:.1f}%, chip "
                         f"{100 * m.accuracy.chip:.1f}%.")
    step_s = m.energy.latency.step_s.nominal
    chip, float_ = timing.decision_latency_steps["chip"], timing.decision_latency_steps["float"]
    if chip.median is not None:
        when = (f"Decisions are final after a median of {_steps_as_time(chip.median, step_s)} on the chip"
                + (f", {float_.median:.0f} steps for the trained model" if float_.median is not None else ""))
        if timing.early_decision is not None:
            early = timing.early_decision
            when += (f"; from step {early.step} of {m.num_steps} on, the chip's accuracy stays within "
                     f"{100 * early.within:g} points of its final value")
        sentences.append(when + ".")
    exceeded = [c for c in checks(m, verdict.tolerances) if not c.passed]
    sentences.append("PASS: every tolerance is met." if verdict.passed else
                     f"FAIL: {len(exceeded)} of {len(checks(m, verdict.tolerances))} tolerance checks exceeded.")
    return sentences


def header_data(comparison: Comparison, verdict: Verdict, per_sample: SampleTiming, timing: DecisionTiming,
                decoding: str) -> dict:
    m = verdict.metrics
    facts = [["model (NIR file)", m.nir_file], ["target", m.target], ["back end", m.backend],
             ["data set", m.dataset], ["samples", str(m.samples)],
             ["steps", f"{m.num_steps} steps of dt = {m.dt:.6g} {m.time_unit}"], ["decoding", decoding],
             ["float reference", m.float_reference], ["bundle checksum", m.bundle_checksum[:16]],
             *([["fine-tuned graph", format_tuned_graph(m.tuned_graph)]] if m.tuned_graph is not None else [])]
    tol = verdict.tolerances
    rows = checks(m, tol)
    cells = [[c.tolerance, c.subject, c.measured, f"{'>=' if c.at_least else '<='} {c.allowed:g}",
              "ok" if c.passed else "exceeded", _origin_text(tol, c.tolerance)] for c in rows]
    classes = ["" if c.passed else "exceeded" for c in rows]
    for field in FIELDS:  # the tolerances that checked nothing, and why
        if field not in {c.tolerance for c in rows}:
            cells.append([field, "off" if getattr(tol, field) is None else "not applied: the data have no labels",
                          None, None, "", _origin_text(tol, field)])
            classes.append("")
    tolerances = table(["tolerance", "measurement", "measured", "allowed", "", "from"], cells, classes)
    return {"nir_file": m.nir_file, "target": m.target, "passed": verdict.passed,
            "verdict": verdict_sentences(comparison, verdict, per_sample, timing, decoding),
            "facts": table(None, facts), "tolerances": tolerances, "failures": list(verdict.failures),
            "advice": [line.strip() for line in format_advice(verdict)]}


def accuracy_section(comparison: Comparison, verdict: Verdict, num_classes: int) -> Section:
    m = verdict.metrics
    rows = [[model, getattr(m.accuracy, model), float(np.mean(comparison.decisions[model] == comparison.decisions["float"])),
             int(np.sum(comparison.decisions[model] < 0))] for model in MODELS]
    return Section("accuracy", {"table": table(["model", "accuracy", "decides as float", "samples without decision"], rows),
                                "confusion": confusion_plot(comparison, num_classes)})


def timing_section(comparison: Comparison, verdict: Verdict, per_sample: SampleTiming, timing: DecisionTiming,
                   decoding: str) -> Section:
    m = verdict.metrics
    step_s = m.energy.latency.step_s.nominal
    latency = table(["model", "median", "p95", "mean", "samples without a decision"],
                    [[model, *(quantity(_steps_as_time(getattr(stats, key), step_s)) for key in ("median", "p95", "mean")),
                      stats.undecided] for model, stats in timing.decision_latency_steps.items()])
    flipped = comparison.decisions["chip"] != comparison.decisions["float"]
    scatter, left_out = latency_margin_plot(per_sample, flipped, timing, decoding)
    hard = timing.difficulty
    quartiles = table(["margin quartile", "samples", "decision flips"],
                      [[name, n, flips] for name, n, flips in zip(
                          ("1 (smallest margins: hardest)", "2", "3", "4 (largest margins: easiest)"),
                          hard.samples_by_margin_quartile, hard.flips_by_margin_quartile)])
    data = {"latency": latency, "step_time": seconds(step_s), "curve": None, "early": timing.early_decision,
            "scatter": scatter, "left_out": left_out, "quartiles": quartiles,
            "first_spike": decoding == decision.FIRST_SPIKE, "count_rule": hard.count_rule}
    if timing.accuracy_by_step is not None:
        data["curve"] = accuracy_by_step_plot(timing, m.num_steps)
    return Section("decision-timing", data)


def raster_section(comparison: Comparison, layer_order, num_steps: int) -> Section:
    disagrees = comparison.decisions["chip"] != comparison.decisions["float"]
    drawn = [{"sample": sample, "label": None if comparison.labels is None else int(comparison.labels[sample]),
              "float_decision": int(comparison.decisions["float"][sample]),
              "chip_decision": int(comparison.decisions["chip"][sample]), "disagrees": bool(disagrees[sample]),
              "plot": raster_plot(comparison, layer_order, sample, num_steps)}
             for sample in raster_samples(comparison, layer_order, num_steps)]
    return Section("raster", {"disagreeing": int(disagrees.sum()), "samples": len(disagrees), "drawn": drawn,
                              "float_side": float_side(comparison)})


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


def firing_section(verdict: Verdict) -> Section:
    firing = verdict.metrics.firing
    rows = [[layer, f.chip_mean_count, f.reference_mean_count, f.emd_spikes, f.count_error_mean_abs,
             f.count_error_max_abs, None if f.total_relative_difference is None else
             quantity(f"{100 * f.total_relative_difference:+.2f}%"),
             quantity(_percent(f.tally.identical_samples, f.tally.samples))] for layer, f in firing.layers.items()]
    return Section("firing", {"plot": firing_plot(firing), "reference": firing.reference,
                              "table": table(["layer", "chip mean count", "reference mean count", "EMD (spikes)",
                                              "mean |count error|", "max |count error|", "total spikes, chip vs reference",
                                              "samples with every count equal"], rows)})


def readout_section(verdict: Verdict) -> Section:
    """A readout output's membrane error per neuron, chip against the discrete float reference, in chip units; the
    readout's spikes (which its compiled bound should rule out) marked as a failure."""
    readout = verdict.metrics.readout
    error = readout.error
    rows = [[f"{readout.layer}[{index}]", *(quantity(f"{value:.3g}") for value in values)]
            for index, values in enumerate(zip(error.median, error.p95, error.max))]
    facts = [["readout layer", readout.layer], ["scale S (chip units per float unit of v)", quantity(f"{readout.scale:.6g}")],
             ["float membrane range S max |v| (chip units)", quantity(f"{readout.float_range:,.1f}")],
             ["v headroom of the compiled worst case (>= 1: it never fires)", quantity(f"{readout.headroom:.3g}")],
             ["readout spikes on the chip", quantity(f"{readout.readout_spikes:,}")]]
    return Section("readout", {"facts": table(None, facts, ["", "", "", "", "exceeded" if readout.readout_spikes else ""]),
                               "table": table(["neuron", "median |error|", "p95 |error|", "max |error|"], rows)})


def calibration_section(calibration: CalibrationReport, recommendation: Recommendation | None) -> Section:
    """What compile's calibration measured on its data: decisions like the float model's before and after, whether
    the calibrated integers were kept, the option compile measured would decide them more like the float model (if
    any), and per layer the membrane error and spike-count agreement before and after."""
    facts = [["calibration data", calibration.data], ["samples", quantity(f"{calibration.samples:,}")],
             ["sha256 of the input spikes", calibration.inputs_sha256],
             ["decisions equal to the float model's, rounded to nearest -> calibrated",
              quantity(f"{calibration.decision_agreement_before:.1%} -> {calibration.decision_agreement_after:.1%}")],
             ["in the bundle", "the calibrated integers" if calibration.applied else
              "the rounded integers (calibration decided no better, or no layer could be calibrated)"],
             *[["compile's recommendation", line] for line in format_recommendation(recommendation)]]
    rows = [[name, quantity(f"{r.membrane_error_before:.3g} -> {r.membrane_error_after:.3g}"),
             quantity(f"{r.spike_agreement_before:.1%} -> {r.spike_agreement_after:.1%}"),
             _counted(r.rounded_other_way), _counted(r.blocks_added)] for name, r in calibration.layers.items()]
    return Section("calibration", {"facts": table(None, facts), "table": table(
        ["layer", "RMS membrane error (thresholds)", "spike-count agreement", "weights rounded the other way",
         "blocks added"], rows) if rows else None})


def _range_cells(values: Range, unit: Callable[[float], str]) -> list[Cell]:
    return [quantity(unit(values.nominal)), quantity(unit(values.low)), quantity(unit(values.high))]


def _counted(value: float, digits: int = 0) -> Cell:
    return quantity(f"{value:,.{digits}f}")


def energy_section(energy: EnergyEstimate) -> Section:
    """Energy and latency per inference with unit prefixes (the command line's formatters), and the chart."""
    split, lat = energy.total.energy_j, energy.latency
    totals = table(["per inference", "nominal", "low", "high"],
                   [[part, *_range_cells(getattr(split, part), joules)] for part in ("dynamic", "static", "total")])
    layers = table(["layer", "synaptic ops", "spikes", "neuron updates active / inactive", "spike messages",
                    "hops E-W / N-S", "messages between chips", "energy (dynamic)"],
                   [[name, _counted(layer.synaptic_ops), _counted(layer.spikes, 1),
                     quantity(f"{layer.neuron_updates_active:,.0f} / {layer.neuron_updates_inactive:,.0f}"),
                     _counted(layer.spike_messages), quantity(f"{layer.hops_east_west:,.0f} / {layer.hops_north_south:,.0f}"),
                     _counted(layer.messages_between_chips), quantity(format_range(layer.energy_j, joules))]
                    for name, layer in energy.layers.items()])
    latency = table(["per inference", "nominal", "low", "high"], [
        ["one step", *_range_cells(lat.step_s, seconds)],
        [f"to the decision ({lat.steps_to_decision:.1f} steps on average)", *_range_cells(lat.to_decision_s, seconds)],
        [f"whole run ({energy.num_steps} steps)", *_range_cells(lat.run_s, seconds)]])
    bench, ann = energy.neurobench, energy.ann_baseline
    comparisons = table(None, [
        ["NeuroBench effective ACs", _counted(bench.effective_acs)], ["NeuroBench effective MACs", _counted(bench.effective_macs)],
        ["NeuroBench dense synaptic ops", _counted(bench.dense_synops)],
        ["NeuroBench activation sparsity", quantity(f"{bench.activation_sparsity:.4f}")],
        ["NeuroBench membrane updates", _counted(bench.membrane_updates)],
        ["as a conventional ANN: dense MACs", _counted(ann.dense_macs)],
        *([f"as a conventional ANN: energy, {kind}", quantity(joules(value))] for kind, value in ann.energy_j.items())])
    basis = [[name.replace("_", " "), text] for name, text in dataclasses.asdict(energy.basis).items()]
    return Section("energy", {"plot": energy_plot(energy), "totals": totals, "layers": layers, "latency": latency,
                              "comparisons": comparisons, "basis": table(["estimate", "basis"], basis),
                              "decided": _percent(round(lat.decided * energy.samples), energy.samples),
                              "target": energy.target, "chips": energy.chips_used})


def placement_section(bundle: Bundle) -> Section:
    target = bundle_target(bundle)
    report = bundle.report.placement if bundle.report is not None else None
    data = {"map": chip_map(bundle.placement, target) if bundle.placement.cores else None,
            "chips_drawn": min(CHIPS_DRAWN, bundle.placement.chips_used), "chips": bundle.placement.chips_used,
            "layers": None, "chip_use": None, "listing": "\n".join(format_placement(bundle.placement, target))}
    if report is not None:
        data["layers"] = table(["layer", "cores", "neurons", "synapses", "synapse memory", "encodings"],
                               [[name, layer.cores, _counted(layer.neurons), _counted(layer.synapses),
                                 quantity(readable_bytes(layer.memory_bytes)), ", ".join(layer.encodings)]
                                for name, layer in report.layers.items()])
        data["chip_use"] = table(["chip", "cores used", "neurons", "synapses", "synapse memory used"],
                                 [[chip.chip, quantity(f"{chip.cores} of {chip.cores_budget}"), _counted(chip.neurons),
                                   _counted(chip.synapses),
                                   quantity(f"{readable_bytes(chip.memory_bytes)} of {readable_bytes(chip.memory_budget_bytes)} "
                                            f"({_percent(chip.memory_bytes, chip.memory_budget_bytes)})")]
                                  for chip in report.chips])
    return Section("placement", data)


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


# --- the page -----------------------------------------------------------------------------------

@functools.cache
def _template():
    # Autoescaped, so every value lands as text; undefined names fail rather than render empty.
    environment = jinja2.Environment(loader=jinja2.PackageLoader(__package__, "templates"), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return environment.get_template("report.html.j2")


def _encoded(value, on_figure):
    """Section data with every Figure replaced by its data: URI (``on_figure`` sees each Figure first, its
    markers fitted, as it will be drawn)."""
    if _is_figure(value):
        fit_markers(value)
        if on_figure is not None:
            on_figure(value)
        return _png(value)
    if isinstance(value, dict):
        return {key: _encoded(item, on_figure) for key, item in value.items()}
    if isinstance(value, list):
        return [_encoded(item, on_figure) for item in value]
    return value


def render(comparison: Comparison, verdict: Verdict, net: FloatNetwork, bundle: Bundle,
           on_figure: Callable | None = None) -> str:
    """The report as one HTML string. ``on_figure`` is called with every plot (a matplotlib Figure, laid out
    and fitted) before it is encoded: the report test checks each one."""
    layer_order = [layer.name for layer in net.layers]
    num_steps = bundle.timing.num_steps
    labelled = comparison.labels is not None  # random input spike trains have no labels, hence no accuracy
    num_classes = bundle.network.population(bundle.network.output).size
    if labelled:
        num_classes = max(int(comparison.labels.max(initial=0)) + 1, num_classes)
    # The verdict's decision timing, and the per-sample figures behind it (stages.latency) for the plots.
    per_sample = sample_timing(comparison, bundle.network.output, bundle.decoding, num_steps,
                               bundle.timing.latency_steps)
    if bundle.decoding in decision.MEMBRANE_DECODINGS:  # margins in the readout's chip units, as ties are judged
        scale = bundle.report.quantization[bundle.network.output].scale
        per_sample = per_sample._replace(margins=per_sample.margins * scale)
    m = verdict.metrics
    timing = DecisionTiming(m.decision_latency_steps, m.accuracy_by_step, m.early_decision, m.difficulty)
    sections = [
        *([accuracy_section(comparison, verdict, num_classes)] if labelled else []),
        timing_section(comparison, verdict, per_sample, timing, bundle.decoding),
        *([robustness_section(verdict)] if verdict.metrics.robustness else []),
        raster_section(comparison, layer_order, num_steps),
        error_section(comparison, verdict, layer_order),
        budget_section(verdict, layer_order),
        firing_section(verdict),
        *([readout_section(verdict)] if verdict.metrics.readout is not None else []),
        Section("quantization", {"groups": data_tables(
            {name: dataclasses.asdict(row) for name, row in bundle.report.quantization.items()}
            if bundle.report is not None else {})}),
        *([calibration_section(m.calibration, m.recommendation)] if m.calibration is not None else []),
        energy_section(verdict.metrics.energy),
        *([placement_section(bundle)] if bundle.placement.cores or bundle.report is not None else []),
        divergence_section(first_divergence(comparison, layer_order), comparison.inputs.num_samples, bundle.timing),
    ]
    sections = [Section(s.id, _encoded(s.data, on_figure)) for s in sections]
    header = header_data(comparison, verdict, per_sample, timing, bundle.decoding)
    return _template().render(header=header, sections=sections)


def write_report(path, comparison: Comparison, verdict: Verdict, net: FloatNetwork, bundle: Bundle,
                 on_figure: Callable | None = None) -> None:
    """Write the report to ``path`` atomically (a temp file, then a rename); ``on_figure`` as for ``render``."""
    write_atomic(Path(path), render(comparison, verdict, net, bundle, on_figure).encode("utf-8"))
