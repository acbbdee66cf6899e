"""The ``lava`` and ``loihi2`` back ends around the simulation: set-up, hardware, errors, interrupts.

Tests that run Lava need its environment (``./tools/setup-lava``): they skip without it, except
under CI (CI=true), where a missing environment fails.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from snn_deploy.targets import backends, bitsim, lava, lava_wire, loihi2
from snn_deploy.targets.backends import BackendUnavailable
from snn_deploy.targets.bundle import (Bundle, BundleError, DenseConnection, InputLayer, IntNetwork, LifPopulation,
                                       Placement, Timing)
from snn_deploy.targets.bundle import save as save_bundle
from snn_deploy.targets.record import SpikeEvents
from snn_deploy.targets.record import load as load_record

from helpers import assert_lava_matches_bitsim, target_fields


def small_bundle(*, fire_once: bool = False, num_steps: int = 20) -> Bundle:
    network = IntNetwork(
        input=InputLayer("input", 2),
        populations=(LifPopulation("hidden", 3, du=300, dv=200, vth=30, bias_mant=20),
                     LifPopulation("output", 2, du=300, dv=200, vth=30, bias_mant=0, fire_once=fire_once)),
        connections=(DenseConnection("d0", "input", "hidden", np.full((3, 2), 100)),
                     DenseConnection("d1", "hidden", "output", np.full((2, 3), 60))),
        output="output")
    return Bundle(**target_fields("loihi2"), network=network, placement=Placement("loihi2", ()),
                  timing=Timing(dt=1.0, num_steps=num_steps))


def random_inputs(num_samples: int, num_steps: int = 20) -> SpikeEvents:
    return SpikeEvents.from_raster(np.random.default_rng(0).random((num_samples, num_steps, 2)) < 0.3)


# --- set-up -------------------------------------------------------------------------------------

def test_missing_or_half_built_lava_environment_names_the_setup_command(monkeypatch, tmp_path):
    monkeypatch.delenv(lava.PYTHON_ENV_VAR, raising=False)
    monkeypatch.setattr(lava, "repo_root", lambda: tmp_path)
    # Installed from a wheel (site-packages holds no tools/): only the variable can name an environment.
    with pytest.raises(BackendUnavailable, match=r"^no Lava environment: set SNN_DEPLOY_LAVA_PYTHON to a Python 3\.10 "
                                                 r"with lava-nc 0\.10\.0, numpy < 2 and snn-deploy installed$"):
        lava.run(small_bundle(), random_inputs(1))
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "setup-lava").touch()  # a source tree
    with pytest.raises(BackendUnavailable, match=r"is missing: run \./tools/setup-lava"):
        lava.run(small_bundle(), random_inputs(1))
    python = tmp_path / ".venv-lava" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.touch()  # an interrupted set-up: no completion stamp
    with pytest.raises(BackendUnavailable, match=r"is incomplete: run \./tools/setup-lava"):
        lava.run(small_bundle(), random_inputs(1))


def test_the_lava_back_ends_are_registered():
    assert backends.get("lava").run is lava.run and backends.get("loihi2").run is loihi2.run


# --- hardware -----------------------------------------------------------------------------------

def test_loihi2_without_lava_loihi_says_who_can_get_it_and_what_to_use_instead(lava_python):
    with pytest.raises(BackendUnavailable) as raised:
        loihi2.run(small_bundle(fire_once=True), random_inputs(1))
    message = str(raised.value)
    for phrase in ("lava-loihi", "Intel Neuromorphic Research Community", "--backend lava", "--backend bitsim",
                   "custom neuron model (microcode)", "output"):
        assert phrase in message
    with pytest.raises(BackendUnavailable) as raised:
        loihi2.run(small_bundle(fire_once=False), random_inputs(1))
    assert "lava-loihi" in str(raised.value) and "microcode" not in str(raised.value)


# --- errors -------------------------------------------------------------------------------------

# Runs the worker with a population model that raises on step 5, inside the forked Lava process.
FAILING_WORKER = '''
import sys
from snn_deploy.targets import lava_worker

run_spk = lava_worker.AbstractSampleLifModel.run_spk


def fail_on_step_5(self):
    if self.time_step == 5:
        raise ValueError("deliberate failure in a Lava process")
    run_spk(self)


lava_worker.AbstractSampleLifModel.run_spk = fail_on_step_5
sys.exit(lava_worker.main(sys.argv[3:]))  # argv: this file, -m, the worker module, its options
'''


def test_an_exception_in_a_lava_process_surfaces_with_its_real_traceback(lava_python, monkeypatch, tmp_path):
    script = tmp_path / "failing_worker.py"
    script.write_text(FAILING_WORKER)
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\nexec "{lava_python}" "{script}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv(lava.PYTHON_ENV_VAR, str(wrapper))
    with pytest.raises(lava.LavaRunError) as raised:
        lava.run(small_bundle(), random_inputs(2))
    message = str(raised.value)
    assert "1 Exception(s) occurred" not in message
    assert "ValueError: deliberate failure in a Lava process" in message
    assert "in fail_on_step_5" in message  # the frame inside the Lava process


def test_the_worker_reports_a_bad_bundle_path_clearly(lava_python, tmp_path):
    missing = tmp_path / "no-such-bundle.npz"
    error_file = tmp_path / "error.json"
    result = subprocess.run([lava_python, "-m", lava.WORKER_MODULE, "--bundle", str(missing),
                             "--inputs", str(tmp_path / "inputs.npz"), "--output", str(tmp_path / "record.npz"),
                             "--error-file", str(error_file)],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert result.returncode == 2
    assert f"bundle file not found: {missing}" in result.stderr
    assert json.loads(error_file.read_text()) == {"kind": "BundleError", "message": f"bundle file not found: {missing}"}
    assert "Traceback" not in result.stderr


def test_a_wrong_input_is_refused_before_lava_starts(tmp_path):
    with pytest.raises(ValueError, match="input has 3 channels"):
        lava.run(small_bundle(), SpikeEvents.from_raster(np.zeros((1, 20, 3), bool)))
    with pytest.raises(ValueError, match="input has 10 steps; the bundle runs 20"):
        lava.run(small_bundle(), SpikeEvents.from_raster(np.zeros((1, 10, 2), bool)))


def test_the_worker_refuses_widths_lava_does_not_compute_in_naming_the_width(lava_python):
    widths = dataclasses.replace(small_bundle().widths, activation_shift=5)
    with pytest.raises(BundleError, match="arithmetic has activation_shift = 5; Lava 0.10.0's bit-accurate models "
                                          "compute with activation_shift = 6"):
        lava.run(dataclasses.replace(small_bundle(), widths=widths), random_inputs(1))


def test_limits_narrower_than_lavas_run_in_lava_bit_for_bit(lava_python):
    """loihi1's widths: Lava's arithmetic, with a narrower weight-exponent range and no graded spikes."""
    assert_lava_matches_bitsim(dataclasses.replace(small_bundle(), **target_fields("loihi1")), random_inputs(2))


# --- running --------------------------------------------------------------------------------------

def test_the_worker_command_line_writes_a_loadable_record(lava_python, tmp_path):
    bundle, inputs = small_bundle(fire_once=True), random_inputs(4)
    save_bundle(bundle, tmp_path / "bundle.npz")
    lava_wire.write_events(tmp_path / "inputs.npz", inputs)
    result = subprocess.run([lava_python, "-m", lava.WORKER_MODULE, "--bundle", str(tmp_path / "bundle.npz"),
                             "--inputs", str(tmp_path / "inputs.npz"), "--output", str(tmp_path / "record.npz"),
                             "--progress"], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [lava_wire.PROGRESS_PREFIX.strip(), "4"]
    record, expected = load_record(tmp_path / "record.npz"), bitsim.run(bundle, inputs)
    for name, events in expected.spikes.items():
        np.testing.assert_array_equal(record.spikes[name].events, events.events)
    assert record.counters == expected.counters and record.backend == "lava"


# In-process: with Lava already imported, lava.run uses the worker code directly.
IN_PROCESS_RUN = '''
import lava.magma.core.run_configs
import numpy as np
from snn_deploy.targets import bitsim, lava as lava_backend
from snn_deploy.targets.bundle import load
from snn_deploy.targets.record import SpikeEvents

bundle = load({bundle!r})
inputs = SpikeEvents.from_raster(np.random.default_rng(0).random((3, 20, 2)) < 0.3)
record = lava_backend.run(bundle, inputs, record_state=True)
expected = bitsim.run(bundle, inputs, record_state=True)
for name, events in expected.spikes.items():
    np.testing.assert_array_equal(record.spikes[name].events, events.events)
    np.testing.assert_array_equal(record.traces[name]["v"], expected.traces[name]["v"])
print("in-process run matches")
'''


def test_lava_already_imported_runs_in_process(lava_python, tmp_path):
    save_bundle(small_bundle(fire_once=True), tmp_path / "bundle.npz")
    # A worker subprocess would need this interpreter: pointing it nowhere proves none is started.
    env = dict(os.environ, **{lava.PYTHON_ENV_VAR: str(tmp_path / "no-python-here")})
    result = subprocess.run([lava_python, "-c", IN_PROCESS_RUN.format(bundle=str(tmp_path / "bundle.npz"))],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    assert "in-process run matches" in result.stdout


def _processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (forked Lava processes share the worker's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:  # the process ended meanwhile
                pass
    return found


def test_an_interrupt_stops_the_worker_and_every_lava_process_it_started(lava_python, monkeypatch, tmp_path):
    # The exchange folder, hence every worker and Lava process command line, is under tmp_path.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    bundle = small_bundle(num_steps=100)
    inputs = random_inputs(60, num_steps=100)  # 6000 steps: the first progress report comes after 2000

    def interrupt(samples: int) -> None:
        assert _processes_mentioning(str(tmp_path)), "the worker should still be running"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lava.run(bundle, inputs, progress=interrupt)
    assert _processes_mentioning(str(tmp_path)) == []
