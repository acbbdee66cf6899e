"""The HTML report: first_divergence by hand, then the whole page in a real headless Chromium.

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
from snn_deploy.deploy.reporting.html import first_divergence, raster_samples, write_report
from snn_deploy.deploy import Tolerances, compare, judge
from snn_deploy.deploy.artifacts.verdict import Comparison
from snn_deploy.models.data import load as load_data
from snn_deploy.targets import description

from helpers import random_ttfs_model

INF = np.inf
SECTIONS = ("header", "accuracy", "raster", "spike-time-error", "error-budget", "quantization", "energy",
            "placement", "divergence")
SECTIONS_WITH_PLOTS = ("accuracy", "raster", "spike-time-error", "error-budget")
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


# --- the page in a browser ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A report of a small untrained network on 50 Yin-Yang test samples (some disagree)."""
    root = tmp_path_factory.mktemp("report")
    export(random_ttfs_model(), root / "m.nir")
    net = load_graph(root / "m.nir")
    bundle = compile_network(net, description.load("loihi2"))
    data = load_data("yinyang:test")
    comparison = compare(net, bundle, data.features[:50], data.labels[:50])
    verdict = judge(comparison, net, bundle, dataset=data.name, tolerances=Tolerances(max_spike_time_error_p95=2.0))
    path = root / "report.html"
    energy = verdict.metrics.energy
    energy = dataclasses.replace(energy, basis=dataclasses.replace(energy.basis, energy=MARKUP))
    verdict = dataclasses.replace(verdict, metrics=dataclasses.replace(verdict.metrics, energy=energy))
    write_report(path, comparison, verdict, net, bundle)
    return path, comparison


def test_report_is_self_contained_and_written_atomically(report):
    path, comparison = report
    page = path.read_text()
    assert not list(path.parent.glob(".report.html.*"))  # no temp file left behind
    for section in SECTIONS:
        assert f'id="{section}"' in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "&lt;script&gt;estimate&lt;/script&gt; &amp; co" in page  # autoescaped
    assert page.count('src="data:image/png;base64,') >= 4
    disagreeing = np.flatnonzero(comparison.decisions["chip"] != comparison.decisions["float"])
    assert disagreeing.size, "the test network should disagree on some samples"
    assert f"sample {disagreeing[0]}:" in page  # its raster is drawn


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
    path, _ = report
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
    assert facts["height"] > 4 * VIEWPORT["height"]  # eight sections, eight plots: several screens long
    colors = screenshot.getcolors(maxcolors=1 << 24)
    white = dict((color, count) for count, color in colors).get((255, 255, 255), 0)
    assert len(colors) > 1000 and white < 0.95 * screenshot.width * screenshot.height, (len(colors), white)
    badge = (0x2A, 0x8A, 0x3A) if facts["verdict"] == "PASS" else (0xC0, 0x39, 0x2B)  # .pass, .fail in the CSS
    assert badge in {color for _, color in colors}  # the inline style sheet applied
