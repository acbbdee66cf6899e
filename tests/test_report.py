"""The HTML report: first_divergence, the verdict in words and the chip map by hand; every plot's markers
inside its axes and legends outside; then the whole page, of a TTFS and a spike-count network, in a real
headless Chromium.

The browser is Debian's ``chromium`` (tools/install-chromium installs it), driven by Playwright
(the `dev` extra) as its executable: Playwright's own browser download is never used. The
screenshot goes to the test's temporary directory only.
"""

import dataclasses
import io
import os
import shutil

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import sync_playwright

from snn_deploy.deploy.stages.compile import compile_network
from snn_deploy.deploy.stages.export import export
from snn_deploy.deploy import load_graph
from matplotlib.collections import PathCollection
from matplotlib.patches import Rectangle

from snn_deploy.deploy.reporting import html
from snn_deploy.deploy.reporting.html import first_divergence, raster_samples, write_report
from snn_deploy.deploy.reporting.text import joules
from snn_deploy.deploy import compare, judge
from snn_deploy.deploy.artifacts.energy import Range
from snn_deploy.deploy.artifacts.latency import DecisionTiming, Difficulty, EarlyDecision, LatencyStats
from snn_deploy.deploy.artifacts.robustness import RobustnessLevel
from snn_deploy.deploy.artifacts.verdict import Comparison
from snn_deploy.deploy.stages.energy import Cores
from snn_deploy.deploy.stages.latency import SampleTiming
from snn_deploy.deploy.stages.tolerances import load_tolerances
from snn_deploy.models import zoo
from snn_deploy.models.data import load as load_data
from snn_deploy.targets import description
from snn_deploy.targets.bundle import CoreAssignment, Placement

from helpers import random_ttfs_model

INF = np.inf
SECTIONS = ("header", "verdict", "accuracy", "decision-timing", "robustness", "raster", "spike-time-error", "error-budget",
            "firing", "quantization", "energy", "placement", "divergence")
SECTIONS_WITH_PLOTS = ("accuracy", "decision-timing", "robustness", "raster", "spike-time-error", "error-budget", "firing",
                       "energy", "placement")
# Text that reaches the page (here a target file's energy basis) is escaped, never markup.
MARKUP = "<script>estimate</script> & co"


# --- first_divergence ---------------------------------------------------------------------------

def _comparison(times: dict, decisions: dict, labels) -> Comparison:
    as_arrays = {model: {layer: np.array(t, dtype=float) for layer, t in layers.items()}
                 for model, layers in times.items()}
    return Comparison(labels=np.array(labels), decisions={k: np.array(v) for k, v in decisions.items()},
                      times=as_arrays, inputs=None, record=None, float_reference="continuous")


def test_first_divergence_is_the_first_layer_and_step_where_chip_and_discrete_part():
    # Four samples, two layers of two neurons; float times lie between steps.
    float_ = {"l1": [[3.4, 5.2], [3.4, 5.2], [3.4, 5.2], [3.4, 5.2]], "l2": [[9.1, 9.6]] * 4}
    discrete = {"l1": [[4, 6], [4, 6], [4, 6], [4, 6]], "l2": [[10, 10], [10, 11], [10, 11], [10, 11]]}
    chip = {"l1": [[4, 6], [4, 6], [5, INF], [4, 7]], "l2": [[10, 10], [11, 11], [10, 12], [10, 11]]}
    comparison = _comparison({"float": float_, "discrete": discrete, "chip": chip},
                             {"float": [0, 0, 0, 1], "discrete": [1, 0, 0, 0], "chip": [1, 1, 0, 0]},
                             labels=[0, 0, 0, 1])
    rows = first_divergence(comparison, ["l1", "l2"])
    # Sample 2 agrees and is not listed; sample 0's chip equals discrete: the flip is discretization's.
    assert rows == [
        {"sample": 0, "label": 0, "float_decision": 0, "discrete_decision": 1, "chip_decision": 1,
         "flipped_by": "discretization", "layer": None, "step": None, "neurons": None},
        {"sample": 1, "label": 0, "float_decision": 0, "discrete_decision": 0, "chip_decision": 1,
         "flipped_by": "quantization", "layer": "l2", "step": 10, "neurons": [0]},
        {"sample": 3, "label": 1, "float_decision": 1, "discrete_decision": 0, "chip_decision": 0,
         "flipped_by": "discretization", "layer": "l1", "step": 6, "neurons": [1]},
    ]


def test_first_divergence_counts_a_neuron_silent_in_one_model_and_takes_the_earliest_step():
    times = {"float": {"l1": [[2.5, 7.5, 8.5]]}, "discrete": {"l1": [[3, 8, INF]]}, "chip": {"l1": [[3, INF, 9]]}}
    comparison = _comparison(times, {"float": [0], "discrete": [0], "chip": [2]}, labels=[0])
    (row,) = first_divergence(comparison, ["l1"])
    assert (row["layer"], row["step"], row["neurons"], row["flipped_by"]) == ("l1", 8, [1], "quantization")
    times["discrete"]["l1"] = [[3, 9, 4]]  # now neuron 2 parts first, at step 4
    (row,) = first_divergence(_comparison(times, {"float": [0], "discrete": [1], "chip": [2]}, [0]), ["l1"])
    assert (row["step"], row["neurons"], row["flipped_by"]) == (4, [2], "both")


def test_raster_samples_put_the_worst_disagreeing_first_and_keep_an_agreeing_one():
    float_ = {"l1": [[1.0], [1.0], [1.0], [1.0], [1.0]]}
    chip = {"l1": [[1], [3], [INF], [9], [2]]}
    comparison = _comparison({"float": float_, "discrete": chip, "chip": chip},
                             {"float": [0, 0, 0, 0, 0], "discrete": [0, 1, 1, 1, 1], "chip": [0, 1, 1, 1, 1]},
                             labels=[0] * 5)
    # Samples 1-4 disagree, by 2, 20 (silent counts as step 21), 8 and 1 steps; sample 0 agrees.
    assert raster_samples(comparison, ["l1"], num_steps=20, count=4) == [2, 3, 1, 0]
    assert raster_samples(comparison, ["l1"], num_steps=20, count=1) == [2]


# --- the verdict in words, by hand -----------------------------------------------------------------

def _timing(early=None) -> DecisionTiming:
    stats = LatencyStats(median=12.0, p95=20.0, mean=13.0, undecided=0)
    return DecisionTiming(decision_latency_steps={"chip": stats, "float": dataclasses.replace(stats, median=11.0)},
                          accuracy_by_step=None, early_decision=early,
                          difficulty=Difficulty(-0.5, (2, 1, 0, 0), (2, 1, 1, 1)))


def test_verdict_in_words_counts_the_flips_within_one_step_of_a_tie(report):
    _, _, verdict, _, _ = report
    # Five samples: 0 and 1 agree; 2, 3 and 4 flip, with float margins 0.9 (near a tie), 3 steps and none (the
    # float model did not decide). A margin of exactly one step is within one step: sample 1 does not count,
    # it agrees.
    comparison = _comparison({}, {"float": [0, 1, 1, 2, -1], "discrete": [0, 1, 1, 2, -1], "chip": [0, 1, 2, 0, 1]},
                             labels=[0, 1, 1, 2, 1])
    margins = np.array([5.0, 1.0, 0.9, 3.0, np.nan])
    per_sample = SampleTiming(None, None, None, None, margins)
    step_s = verdict.metrics.energy.latency.step_s.nominal
    sentences = html.verdict_sentences(comparison, verdict, per_sample, _timing(EarlyDecision(15, 0.8, 0.005, Range(1e-6, 2e-6, 3e-6))),
                                       "first_spike")
    assert sentences[0] == ("The chip decides as the trained model on 40.0% of 5 samples; 1 of the 3 flips is within "
                            "one step of a tie (the trained model's first two output spikes at most one step apart), "
                            "and in 1 the trained model does not decide.")
    assert sentences[1] == ("2 of the 3 flips are among the quarter of samples that the trained model decides by "
                            "the smallest margins (the hardest).")
    assert sentences[3].startswith(f"Decisions are final after a median of 12 steps ({html.seconds(12 * step_s)}) "
                                   "on the chip, 11 steps for the trained model; from step 15 of")
    one_flip = _comparison({}, {"float": [0, 1], "discrete": [0, 1], "chip": [0, 2]}, labels=[0, 1])
    one = html.verdict_sentences(one_flip, verdict, SampleTiming(None, None, None, None, np.array([2.0, 1.5])),
                                 _timing(), "spike_count")
    assert one[:2] == ["The chip decides as the trained model on 50.0% of 2 samples; the one flip is not within one "
                       "spike of a tie (the trained model's two largest output spike counts differ by at most one).",
                       "It is among the quarter of samples that the trained model decides by the smallest margins "
                       "(the hardest)."]
    # The other count decoding's margin is in spikes too.
    assert html.verdict_sentences(one_flip, verdict, SampleTiming(None, None, None, None, np.array([2.0, 1.5])),
                                  _timing(), "spike_count_argmax")[:2] == one[:2]
    agreeing = _comparison({}, {"float": [0, 1], "discrete": [0, 1], "chip": [0, 1]}, labels=[0, 1])
    words = html.verdict_sentences(agreeing, verdict, SampleTiming(None, None, None, None, np.array([2.0, 0.5])),
                                   _timing(), "spike_count")
    assert words[0] == "The chip decides as the trained model on all 2 samples."
    assert words[-1] == ("PASS: every tolerance is met." if verdict.passed else
                         f"FAIL: {len(verdict.failures)} of {len(html.checks(verdict.metrics, verdict.tolerances))} "
                         "tolerance checks exceeded.")


def test_percentages_never_round_to_all_or_none():
    assert [html._percent(*c) for c in ((992, 1000), (1999, 2000), (1, 3000), (0, 7), (7, 7))] == [
        "99.2%", "99.95%", "0.03%", "0.0%", "100.0%"]


# --- plots: markers whole inside the axes, legends outside, every spike drawn ---------------------

def _marker_radius(collection, dpi) -> float:
    """Half the largest marker's diameter plus half its edge, in pixels (sizes are points squared)."""
    return (np.sqrt(collection.get_sizes().max()) / 2 + np.max(collection.get_linewidths(), initial=0) / 2) * dpi / 72


def test_every_plot_keeps_its_markers_inside_and_its_legends_off_the_axes(report):
    *_, figures = report
    assert len(figures) >= 8
    markers = legends = 0
    for figure in figures:
        figure.draw_without_rendering()
        renderer = figure.canvas.get_renderer()
        boxes = [ax.get_window_extent() for ax in figure.axes]
        for ax, box in zip(figure.axes, boxes):
            for collection in ax.collections:
                if not isinstance(collection, PathCollection) or not len(collection.get_offsets()):
                    continue
                xy = collection.get_offset_transform().transform(collection.get_offsets())
                xy = xy[np.isfinite(xy).all(axis=1)]
                r = _marker_radius(collection, figure.dpi)
                assert xy[:, 0].min() - r >= box.x0 and xy[:, 0].max() + r <= box.x1, ax.get_title()
                assert xy[:, 1].min() - r >= box.y0 and xy[:, 1].max() + r <= box.y1, ax.get_title()
                markers += len(xy)
        for legend in figure.legends + [ax.get_legend() for ax in figure.axes if ax.get_legend()]:
            extent = legend.get_window_extent(renderer)
            assert not any(extent.overlaps(box) for box in boxes), [t.get_text() for t in legend.get_texts()]
            legends += 1
    assert markers > 100 and legends >= 5


def _early_decision_marker(figures):
    for figure in figures:
        for ax in figure.axes:
            for collection in ax.collections:
                if str(collection.get_label()).startswith("early decision"):
                    return collection.get_offsets()
    return None


def test_accuracy_by_step_marks_the_early_decision_step(report):
    _, comparison, verdict, bundle, figures = report
    early = verdict.metrics.early_decision
    assert np.array_equal(_early_decision_marker(figures), [[early.step, 100 * early.accuracy]])


def test_rasters_draw_every_spike_of_chip_and_float(report):
    _, comparison, verdict, bundle, _ = report
    layers = list(comparison.times["chip"])
    sample = raster_samples(comparison, layers, bundle.timing.num_steps)[0]
    figure = html.raster_plot(comparison, layers, sample, bundle.timing.num_steps)
    for ax, layer in zip(figure.axes, layers):
        float_side, chip = (np.asarray(c.get_offsets()) for c in _scatters_of(ax))
        chip_events = comparison.record.spikes[layer].events
        mine = chip_events[:, chip_events[0] == sample]
        assert np.array_equal(chip, np.stack([mine[1], mine[2]], axis=1))  # every chip spike, not the first only
        if comparison.float_reference == "discrete":  # multi-spike: the discrete reference's every spike
            events = comparison.discrete[layer].events
            theirs = events[:, events[0] == sample]
            assert np.array_equal(float_side, np.stack([theirs[1], theirs[2]], axis=1))
        else:  # fire-once: the continuous model's one spike per neuron
            times = comparison.times["float"][layer][sample]
            fired = np.flatnonzero(np.isfinite(times))
            assert np.array_equal(float_side, np.stack([times[fired], fired], axis=1))
    if comparison.float_reference == "discrete":
        assert (comparison.record.spikes[layers[-1]].counts()[sample] > 1).any()  # the case that needs it


def test_firing_plot_draws_each_layers_count_distributions_of_chip_and_reference(report):
    _, comparison, verdict, _, _ = report
    firing = verdict.metrics.firing
    figure = html.firing_plot(firing)
    assert [ax.get_title() for ax in figure.axes] == [f"{layer}: EMD {stats.emd_spikes:.4g} spikes"
                                                       for layer, stats in firing.layers.items()]
    for ax, (layer, stats) in zip(figure.axes, firing.layers.items()):
        reference_bars, chip_bars = ax.containers
        for bars, events in ((reference_bars, comparison.discrete[layer]), (chip_bars, comparison.record.spikes[layer])):
            # The bars' heights are the fractions of neurons x samples with each count, from the spikes themselves.
            counts = events.counts().ravel()
            assert np.array_equal([bar.get_height() for bar in bars],
                                  np.trim_zeros(np.bincount(counts), "b") / counts.size)


def _scatters_of(ax):
    return [c for c in ax.collections if isinstance(c, PathCollection)]


def test_chip_map_puts_each_core_on_its_tile_filled_by_its_memory():
    target = description.load("loihi1")  # 4 cores per tile: a tile's cores as a 2 x 2 grid
    budget = target.value("core", "synapse_memory_bytes")
    cores = (CoreAssignment(0, "a", 0, 10, memory_bytes=budget // 2), CoreAssignment(1, "a", 10, 20),
             CoreAssignment(37, "b", 0, 5, memory_bytes=budget // 4), CoreAssignment(3, "c", 0, 1, chip=1,
                                                                                     memory_bytes=budget))
    figure = html.chip_map(Placement("loihi1", cores), target)
    chip0, chip1 = figure.axes
    assert [ax.get_title().split(":")[0] for ax in (chip0, chip1)] == ["chip 0", "chip 1"]
    for ax, on_chip in ((chip0, cores[:3]), (chip1, cores[3:])):
        at = Cores.of(on_chip, target)
        filled = [patch for patch in ax.patches if isinstance(patch, Rectangle) and patch.get_alpha() == 0.85]
        assert len(filled) == len(on_chip)
        for core, bar, x, y in zip(on_chip, filled, at.x, at.y):
            slot = core.core % 4
            assert (bar.get_x(), bar.get_y()) == pytest.approx((x + slot % 2 / 2 + 0.02, y + slot // 2 / 2 + 0.02))
            assert bar.get_height() == pytest.approx(0.46 * core.memory_bytes / budget)
        labels = [text.get_text() for text in ax.texts]
        assert labels == [f"{100 * core.memory_bytes / budget:.0f}%" for core in on_chip]
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend == ["a: 2 cores, 64 KB", "b: 1 core, 32 KB", "c: 1 core, 128 KB"]


# --- the page in a browser ----------------------------------------------------------------------

def _cli_option(field: str) -> str:
    return "--" + field.replace("_", "-")


def _deployed(root, model, samples: int):
    """A model through export, compile and verify on Yin-Yang test samples; its tolerances from a file beside it
    (min_agreement) and an option (max_spike_time_error_p95), the rest defaults."""
    export(model, root / "m.nir")
    (root / "m.tolerances.toml").write_text("min_agreement = 0.9\n")
    net = load_graph(root / "m.nir")
    # Uncalibrated: the zoo model then disagrees on some samples, whose rasters the report draws.
    bundle = compile_network(net, description.load("loihi2"), calibrate=None)
    data = load_data("yinyang:test")
    comparison = compare(net, bundle, data.features[:samples], data.labels[:samples])
    tolerances = load_tolerances(root / "m.nir", {"max_spike_time_error_p95": 2.0}, spelled=_cli_option)
    return comparison, judge(comparison, net, bundle, dataset=data.name, tolerances=tolerances), net, bundle


# A small untrained TTFS network (some samples disagree), and the zoo's spike-count network.
MODELS = {"ttfs": (lambda: random_ttfs_model(), 50), "spike_count": (lambda: zoo.load("yinyang-multispike"), 40)}


@pytest.fixture(scope="module", params=list(MODELS))
def report(request, tmp_path_factory):
    """The report's path, the comparison, and every plot of the page as it was drawn."""
    root = tmp_path_factory.mktemp(f"report-{request.param}")
    model, samples = MODELS[request.param]
    comparison, verdict, net, bundle = _deployed(root, model(), samples)
    path = root / "report.html"
    energy = verdict.metrics.energy
    energy = dataclasses.replace(energy, basis=dataclasses.replace(energy.basis, energy=MARKUP))
    # Robustness levels as verify --robustness states them (drawn, not measured, here).
    robustness = (RobustnessLevel("jitter", 0.5, 0.9, 0.92, 0.97), RobustnessLevel("jitter", 1.0, 0.85, 0.9, 1.0),
                  RobustnessLevel("drop", 0.1, 0.8, 0.8, 0.99))
    verdict = dataclasses.replace(verdict, metrics=dataclasses.replace(verdict.metrics, energy=energy,
                                                                       robustness=robustness))
    figures = []
    write_report(path, comparison, verdict, net, bundle, on_figure=figures.append)
    return path, comparison, verdict, bundle, figures


def test_report_is_self_contained_and_written_atomically(report):
    path, comparison, verdict, _, _ = report
    page = path.read_text()
    assert not list(path.parent.glob(".report.html.*"))  # no temp file left behind
    for section in SECTIONS:
        assert f'id="{section}"' in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "&lt;script&gt;estimate&lt;/script&gt; &amp; co" in page  # autoescaped
    assert page.count('src="data:image/png;base64,') >= 4
    disagreeing = np.flatnonzero(comparison.decisions["chip"] != comparison.decisions["float"])
    assert disagreeing.size, "the test network should disagree on some samples"
    # The advice verify prints under a failed decision tolerance, under the failures.
    from markupsafe import escape

    from snn_deploy.deploy.reporting.text import DECISION_CHECKS, format_advice

    advice = format_advice(verdict)
    exceeded = {check.tolerance for check in html.checks(verdict.metrics, verdict.tolerances) if not check.passed}
    assert bool(advice) == bool(exceeded & DECISION_CHECKS)  # each fixture's flips have a stage that dominates
    for line in advice:
        assert f'<p class="advice">{escape(line.strip())}</p>' in page
    assert f"sample {disagreeing[0]}:" in page  # its raster is drawn
    # Where each tolerance came from: the file beside the model, the option as typed, the defaults.
    assert f"tolerance file {path.parent / 'm.tolerances.toml'}" in page
    assert "option --max-spike-time-error-p95" in page and "<td class=\"text\">default</td>" in page
    # Energy and latency with unit prefixes, as the command line prints them; no raw keys, no Python dicts.
    total = verdict.metrics.energy.total.energy_j.total
    assert all(joules(value) in page for value in (total.low, total.nominal, total.high))
    assert "total.low" not in page and "step_s" not in page and "run_s" not in page
    assert "{&#39;" not in page and "{'" not in page
    # Firing statistics: a row per layer with its EMD, as the verdict states it.
    for layer, firing in verdict.metrics.firing.layers.items():
        assert f'<td class="text">{layer}</td><td>{firing.chip_mean_count:.4g}</td>' in page
        assert f"<td>{firing.emd_spikes:.4g}</td>" in page


def _chromium() -> str:
    path = shutil.which("chromium")
    if path:
        return path
    message = "chromium is not installed; run tools/install-chromium (Debian's chromium package)"
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"CI must run the browser test: {message}")
    pytest.skip(f"{message} (outside CI only; under CI this test fails instead)")


PAGE_FACTS = """() => ({
  sections: [...document.querySelectorAll("[id]")].map(e => e.id),
  images: [...document.images].map(i => ({section: i.closest("section, header").id, complete: i.complete,
                                          width: i.naturalWidth, height: i.naturalHeight})),
  verdict: document.querySelector(".verdict").textContent,
  height: document.documentElement.scrollHeight,
})"""
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 120_000  # against a hung browser only: nothing is timed

# A page with one of each error the report test must notice, to show that it would.
BROKEN_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; script-src 'unsafe-inline'">
</head><body><img src="http://127.0.0.1:9/x.png"><script>console.error("control"); missing();</script></body></html>"""


@pytest.fixture
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=_chromium())
        try:
            context = chromium.new_context(viewport=VIEWPORT, device_scale_factor=1)
            context.set_default_timeout(TIMEOUT_MS)
            yield context
        finally:
            chromium.close()


def _open(browser, url: str):
    """A new page at ``url``, after its load event; with the URLs it requested and the errors it
    caused: uncaught exceptions, console.error and console.assert, and browser log errors such as a
    blocked resource load."""
    page, requests, errors = browser.new_page(), [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: errors.append(f"console.{message.type}: {message.text}")
            if message.type in ("error", "assert") else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.goto(url, wait_until="load")
    return page, requests, errors


def _is_png(shot: bytes) -> Image.Image:
    assert shot.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(shot))
    image.load()  # decodes every row: a truncated PNG fails here
    return image.convert("RGB")


def test_report_in_headless_chromium(report, browser, tmp_path):
    path = report[0]
    page, requests, errors = _open(browser, path.as_uri())
    facts = page.evaluate(PAGE_FACTS)
    shot = page.screenshot(full_page=True)
    (tmp_path / "report.png").write_bytes(shot)  # to look at; pytest's temporary directory, not the repo
    (tmp_path / "broken.html").write_text(BROKEN_PAGE)
    _, broken_requests, broken_errors = _open(browser, (tmp_path / "broken.html").as_uri())

    assert set(SECTIONS) <= set(facts["sections"])
    assert facts["verdict"] in ("PASS", "FAIL")
    for image in facts["images"]:
        assert image["complete"] and image["width"] > 100 and image["height"] > 100, image
    assert {image["section"] for image in facts["images"]} >= set(SECTIONS_WITH_PLOTS)
    assert errors == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    # The checks above can fail: the broken page trips each of them.
    broken = "\n".join(broken_errors)
    assert all(kind in broken for kind in ("Content Security Policy", "console.error: control", "uncaught:")), broken
    assert "http://127.0.0.1:9/x.png" in broken_requests

    # The page renders: the full-page screenshot is the page's width and whole height, and not blank.
    screenshot = _is_png(shot)
    assert screenshot.size == (VIEWPORT["width"], facts["height"])
    assert facts["height"] > 4 * VIEWPORT["height"]  # ten sections, a dozen plots: several screens long
    colors = screenshot.getcolors(maxcolors=1 << 24)
    white = dict((color, count) for count, color in colors).get((255, 255, 255), 0)
    assert len(colors) > 1000 and white < 0.95 * screenshot.width * screenshot.height, (len(colors), white)
    badge = (0x2A, 0x8A, 0x3A) if facts["verdict"] == "PASS" else (0xC0, 0x39, 0x2B)  # .pass, .fail in the CSS
    assert badge in {color for _, color in colors}  # the inline style sheet applied
