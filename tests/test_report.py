"""The HTML report: first_divergence by hand, then the whole page in a real headless Chromium.

The browser is Debian's ``chromium`` (tools/install-chromium installs it), driven over the
DevTools protocol on a pipe: no Playwright, Selenium or downloaded browser. The screenshot and
the page are kept in tests/artifacts/.
"""

import base64
import json
import os
import select
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from snn_deploy.deploy.stages.compile import compile_network
from snn_deploy.deploy.stages.export import export
from snn_deploy.deploy import load_graph
from snn_deploy.deploy.reporting.html import first_divergence, raster_samples, write_report
from snn_deploy.deploy import Tolerances, compare, judge
from snn_deploy.deploy.artifacts.verdict import Comparison
from snn_deploy.models.data import load as load_data
from snn_deploy.targets import description

from helpers import random_ttfs_model

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
INF = np.inf
SECTIONS = ("header", "accuracy", "raster", "spike-time-error", "error-budget", "quantization", "energy",
            "placement", "divergence")
SECTIONS_WITH_PLOTS = ("accuracy", "raster", "spike-time-error", "error-budget")
# Not the energy module's output (another part of the project): any nested dict must render.
ENERGY = {"target": "loihi2", "samples": 50, "layers": {"lif1": {"synaptic_ops": 100.0, "energy_j": {"low": 1e-9}}},
          "total": {"spikes": 23.0, "energy_j": {"dynamic": {"low": 1e-9, "high": 1e-8}}},
          "latency": {"decided": 1.0, "run_s": {"low": 1e-4, "high": 1e-3}}}


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
    write_report(path, comparison, verdict, net, bundle, energy=ENERGY)
    return path, comparison


def test_report_is_self_contained_and_written_atomically(report):
    path, comparison = report
    page = path.read_text()
    assert not list(path.parent.glob(".report.html.*"))  # no temp file left behind
    for section in SECTIONS:
        assert f'id="{section}"' in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
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


class DevTools:
    """Chromium's DevTools protocol over --remote-debugging-pipe: the browser reads commands on its
    fd 3 and writes replies and events on its fd 4, each a JSON message ended by a NUL byte."""

    TIMEOUT_S = 120  # against a hung browser only: nothing is timed

    def __init__(self, binary: str, profile: Path, log: Path):
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--hide-scrollbars", "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"]
        # bash moves the pipe ends to fds 3 and 4, where Chromium expects them (dash takes one-digit fds only).
        self._log = log.open("wb")
        self.process = subprocess.Popen(["bash", "-c", f'exec "$@" 3<&{commands_read} 4>&{replies_write}', "bash",
                                         binary, *flags], pass_fds=(commands_read, replies_write),
                                        stdout=self._log, stderr=subprocess.STDOUT)
        os.close(commands_read)
        os.close(replies_write)
        self._buffer, self._next_id, self.events = b"", 0, []

    def send(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        reply = self._receive_until(lambda m: m.get("id") == self._next_id)
        assert "error" not in reply, f"{method}: {reply['error']}"
        return reply["result"]

    def wait_for(self, event: str) -> dict:
        return self._receive_until(lambda m: m.get("method") == event)

    def _receive_until(self, wanted) -> dict:
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "method" in message:
                    self.events.append(message)
                if wanted(message):
                    return message
            ready, _, _ = select.select([self._replies], [], [], self.TIMEOUT_S)
            chunk = os.read(self._replies, 1 << 20) if ready else b""
            assert chunk, f"Chromium stopped answering (see {self._log.name})"
            self._buffer += chunk

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                self.send("Browser.close")
            self.process.wait(timeout=self.TIMEOUT_S)
        except (AssertionError, OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            os.close(self._commands)
            os.close(self._replies)
            self._log.close()


PAGE_FACTS = """JSON.stringify({
  sections: [...document.querySelectorAll("[id]")].map(e => e.id),
  images: [...document.images].map(i => ({section: i.closest("section, header").id, complete: i.complete,
                                          width: i.naturalWidth, height: i.naturalHeight})),
  verdict: document.querySelector(".verdict").textContent,
  height: document.documentElement.scrollHeight,
})"""


def _console_errors(events: list[dict]) -> list[str]:
    """Errors the page caused: uncaught exceptions, console.error, and browser log errors such as a
    blocked or failed resource load."""
    errors = []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            errors.append(json.dumps(params["exceptionDetails"])[:300])
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(json.dumps(params.get("args"))[:300])
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(params["entry"]["text"])
    return errors


# A page with one of each error the report test must notice, to show that it would.
BROKEN_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; script-src 'unsafe-inline'">
</head><body><img src="http://127.0.0.1:9/x.png"><script>console.error("control"); missing();</script></body></html>"""


def _load(browser: DevTools, session: str, url: str) -> list[dict]:
    """Navigate and wait for the load event; returns the events of that page."""
    browser.events.clear()
    browser.send("Page.navigate", session, url=url)
    browser.wait_for("Page.loadEventFired")
    return list(browser.events)


def _requests(events: list[dict]) -> list[str]:
    return [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]


def test_report_in_headless_chromium(report, tmp_path):
    path, _ = report
    (tmp_path / "broken.html").write_text(BROKEN_PAGE)
    browser = DevTools(_chromium(), tmp_path / "profile", tmp_path / "chromium.log")
    try:
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session)
        browser.send("Emulation.setDeviceMetricsOverride", session, width=1200, height=900, deviceScaleFactor=1,
                     mobile=False)
        events = _load(browser, session, path.as_uri())
        facts = json.loads(browser.send("Runtime.evaluate", session, expression=PAGE_FACTS,
                                        returnByValue=True)["result"]["value"])
        shot = browser.send("Page.captureScreenshot", session, format="png", captureBeyondViewport=True,
                            clip={"x": 0, "y": 0, "width": 1200, "height": facts["height"], "scale": 1})
        broken_events = _load(browser, session, (tmp_path / "broken.html").as_uri())
    finally:
        browser.close()

    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report-screenshot.png").write_bytes(base64.b64decode(shot["data"]))
    shutil.copyfile(path, ARTIFACTS / "report.html")

    assert set(SECTIONS) <= set(facts["sections"])
    assert facts["verdict"] in ("PASS", "FAIL")
    for image in facts["images"]:
        assert image["complete"] and image["width"] > 100 and image["height"] > 100, image
    assert {image["section"] for image in facts["images"]} >= set(SECTIONS_WITH_PLOTS)
    assert _console_errors(events) == []
    assert all(url.startswith(("file:", "data:")) for url in _requests(events)), _requests(events)
    # The checks above can fail: the broken page trips each of them.
    broken = "\n".join(_console_errors(broken_events))
    assert all(kind in broken for kind in ("Content Security Policy", '"control"', "Uncaught")), broken
    assert "http://127.0.0.1:9/x.png" in _requests(broken_events)
