"""bitsim's compiled engine equals its reference (numpy) engine bit for bit: every spike, every u and v at every
step, every counter, on

- hypothesis-generated networks spanning the space of the Lava equivalence tests (tests/networks.py: sign modes,
  weight bits, exponents of both signs, graded spikes, recurrence, fire-once, both resets; 20 networks per example,
  each forced to cover one property or unforced), in Loihi 2's widths and in other widths;
- constructed cases that wrap the current (also Lava's int32 accumulator and the -2**23 quirk), saturate the voltage,
  cross the sample boundary, and come back to rest between inputs;
- every zoo model, exported and compiled as the pipeline does;
- every imported reference graph of ../shared/reference, with the semantics its test states.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snn_deploy.deploy import compile_network, export, load_graph
from snn_deploy.deploy.errors import DeployError
from snn_deploy.deploy.interfaces.cli import main
from snn_deploy.deploy.stages.run import run_inputs
from snn_deploy.deploy.stages.stimulus import input_times, random_spike_trains, to_steps
from snn_deploy.models import data, zoo
from snn_deploy.models.zoo import save
from snn_deploy.targets import bitsim, bitsim_compiled, description
from snn_deploy.targets import record as record_io
from snn_deploy.targets import fixed_point as fx
from snn_deploy.targets.backends import BackendUnavailable
from snn_deploy.targets.bitsim import ENGINES
from snn_deploy.targets.bundle import Bundle, DenseConnection, InputLayer, IntNetwork, LifPopulation, Placement, Timing
from snn_deploy.targets.bundle import load as load_bundle
from snn_deploy.targets.record import SpikeEvents

from helpers import assert_records_equal, random_ttfs_model
from networks import (FORCED, UNFORCED, Case, current_wrap_cases, make_bundle, networks, sample_boundary_case,
                      voltage_saturation_cases)

HYPOTHESIS_EXAMPLES = 10  # x 20 networks: 200 networks, 3 samples x 32 steps each


def assert_engines_agree(bundle: Bundle, inputs: SpikeEvents, context: str = "", **run_options):
    """Both engines on the same bundle and inputs, with state traces: equal records. Returns the reference's."""
    expected = bitsim.run(bundle, inputs, record_state=True, engine="reference")
    actual = bitsim.run(bundle, inputs, record_state=True, engine="compiled", **run_options)
    assert actual.backend == expected.backend and actual.bundle_checksum == expected.bundle_checksum
    assert_records_equal(expected, actual, context)
    # Without traces the kernel writes none; spikes and counters stay the same.
    untraced = bitsim.run(bundle, inputs, engine="compiled", **run_options)
    assert not untraced.traces
    assert_records_equal(replace(expected, traces={}), untraced, f"{context} (no traces)")
    return expected


# --- random networks ----------------------------------------------------------------------------

@settings(max_examples=HYPOTHESIS_EXAMPLES, derandomize=True, deadline=None)
@given(cases=st.tuples(*(networks(**forced) for forced in FORCED), *(networks() for _ in range(UNFORCED))))
def test_random_networks_run_alike_on_both_engines(cases):
    for case in cases:
        assert_engines_agree(case.bundle, case.inputs, case.label)


def in_widths(widths: fx.Widths, seed: int) -> Case:
    """A random recurrent two-layer network whose every parameter spans the ranges of ``widths``."""
    rng = np.random.default_rng(seed)
    low, high = widths.bias_mantissa_range

    def population(name, size, fire_once, reset):
        # A third of the currents do not decay (du = 0): they integrate until they wrap.
        return LifPopulation(name, size, du=rng.integers(0, widths.decay_max + 1, size) * (rng.random(size) < 0.7),
                             dv=rng.integers(0, widths.decay_max + 1, size),
                             vth=rng.integers(0, min(widths.threshold_max, 2000) + 1, size),
                             bias_mant=rng.integers(low, high + 1, size) * (rng.random(size) < 0.5),
                             bias_exp=int(rng.integers(-3, 4)), fire_once=fire_once, reset=reset)

    def dense(name, source, target, shape):
        weights = fx.stored_weights(widths, rng.integers(-(1 << widths.weight_bits), 1 << widths.weight_bits, shape),
                                    widths.weight_bits)
        return DenseConnection(name, source, target, weights, num_weight_bits=widths.weight_bits,
                               weight_exp=int(rng.integers(widths.weight_exp_min, widths.weight_exp_max + 1)))

    pops = [population("hidden", 6, False, fx.RESET_SUBTRACT), population("out", 3, True, fx.RESET_ZERO)]
    conns = [dense("in", "input", "hidden", (6, 4)), dense("rec", "hidden", "hidden", (6, 6)),
             dense("out", "hidden", "out", (3, 6))]
    network = IntNetwork(InputLayer("input", 4), tuple(pops), tuple(conns), "out")
    bundle = Bundle(target="custom", network=network, placement=Placement("custom", ()),
                    timing=Timing(dt=1.0, num_steps=40), widths=widths, backends=("bitsim",))
    return Case(bundle, SpikeEvents.from_raster(rng.random((4, 40, 4)) < 0.3), f"widths {widths}, seed {seed}")


# Widths other than Loihi's (which the hypothesis networks have): every shift, offset and width differs.
OTHER_WIDTHS = {
    "20-bit": fx.Widths(state_bits=20, decay_bits=10, current_decay_offset=0, voltage_decay_offset=2,
                        threshold_bits=12, threshold_shift=3, activation_shift=4, bias_mantissa_bits=10, weight_bits=7,
                        weight_exp_min=-5, weight_exp_max=5, graded_spikes=True),
    "16-bit": fx.Widths(state_bits=16, decay_bits=8, current_decay_offset=2, voltage_decay_offset=1,
                        threshold_bits=10, threshold_shift=2, activation_shift=2, bias_mantissa_bits=8, weight_bits=6,
                        weight_exp_min=-3, weight_exp_max=3, graded_spikes=False),
    # Wide states and weights.
    "16-bit weights": fx.Widths(state_bits=30, decay_bits=12, current_decay_offset=1, voltage_decay_offset=0,
                                threshold_bits=20, threshold_shift=6, activation_shift=6, bias_mantissa_bits=16,
                                weight_bits=16, weight_exp_min=-8, weight_exp_max=7, graded_spikes=True)}


@pytest.mark.parametrize("widths", OTHER_WIDTHS.values(), ids=OTHER_WIDTHS.keys())
def test_the_engines_take_their_widths_from_the_bundle(widths):
    counters = []
    for seed in range(10):
        case = in_widths(widths, seed)
        counters.append(assert_engines_agree(case.bundle, case.inputs, case.label).counters)
    # Narrow states with strong weights: both hardware events occur and are counted alike.
    assert sum(c["hidden"]["current_wraps"] + c["out"]["current_wraps"] for c in counters) > 0
    assert sum(c["hidden"]["voltage_saturations"] + c["out"]["voltage_saturations"] for c in counters) > 0


# --- constructed edge cases ---------------------------------------------------------------------

def exact_state_limit_case() -> Case:
    """Four inputs of -256 << 7, shifted by 6: u = -2**23 exactly, which Lava's wrap turns into +2**23 (counted)."""
    pop = LifPopulation("at_the_limit", 1, du=4095, dv=4095, vth=2**17 - 1, bias_mant=0)
    weights = np.array([[-256, -256, -256, -256, 254]])  # the 254 (never spiking) makes the block mixed
    dense = DenseConnection("dense", "input", "at_the_limit", weights, weight_exp=7)
    raster = np.zeros((2, 8, 5), bool)
    raster[:, :, :4] = True
    return Case(make_bundle(5, [pop], [dense], num_steps=8), SpikeEvents.from_raster(raster), "u = -2**23")


def accumulator_wrap_case() -> Case:
    """1100 inputs of 255 << 7, shifted by 6: 2.3e9 passes the int32 register Lava adds in, before the state wrap."""
    pop = LifPopulation("beyond_int32", 2, du=4095, dv=4095, vth=2**17 - 1, bias_mant=0)
    dense = DenseConnection("dense", "input", "beyond_int32", np.full((2, 1100), 255), weight_exp=7)
    return Case(make_bundle(1100, [pop], [dense], num_steps=4), SpikeEvents.from_raster(np.ones((2, 4, 1100), bool)),
                "int32 accumulator wrap")


def resting_between_inputs_case() -> Case:
    """Input on steps 2 and 20 only, into neurons that forget each step (du = dv = 4095) and a slow layer behind:
    the layers come back to rest between the inputs and after them, which the compiled engine skips."""
    fast = LifPopulation("fast", 3, du=4095, dv=4095, vth=5, bias_mant=0)
    slow = LifPopulation("slow", 2, du=2000, dv=3000, vth=20, bias_mant=0, fire_once=True)
    negative_bias = LifPopulation("negative_bias", 2, du=4095, dv=4095, vth=0, bias_mant=-1, bias_exp=-4)
    conns = [DenseConnection("in_fast", "input", "fast", np.full((3, 2), 100)),
             DenseConnection("fast_slow", "fast", "slow", np.full((2, 3), 60), weight_exp=-2),
             DenseConnection("fast_bias", "fast", "negative_bias", np.full((2, 3), 1))]
    raster = np.zeros((3, 40, 2), bool)
    raster[:, [1, 19]] = True
    raster[2] = False  # a sample without input
    return Case(make_bundle(2, [fast, slow, negative_bias], conns, num_steps=40), SpikeEvents.from_raster(raster),
                "rest between inputs")


def test_wraps_saturations_sample_boundaries_and_rest_run_alike_and_are_counted():
    cases = (current_wrap_cases() + voltage_saturation_cases() +
             [sample_boundary_case(), exact_state_limit_case(), accumulator_wrap_case(), resting_between_inputs_case()])
    records = {case.label: assert_engines_agree(case.bundle, case.inputs, case.label) for case in cases}
    for name in ("wraps_up", "wraps_down"):
        assert records[name].counters[name]["current_wraps"] > 0
    for name in ("saturates_up", "saturates_up_subtracting", "saturates_down", "saturates_once"):
        assert records[name].counters[name]["voltage_saturations"] > 0, name
    limit = records["u = -2**23"]
    assert limit.counters["at_the_limit"]["current_wraps"] == 2 * 7  # every step after the first, both samples
    assert (limit.traces["at_the_limit"]["u"][:, 1:] == 2**23).all()
    wide = records["int32 accumulator wrap"]
    assert wide.counters["beyond_int32"]["current_wraps"] > 0
    rest = records["rest between inputs"]
    assert rest.spikes["slow"].events.shape[1] > 0 and (rest.traces["fast"]["u"][:, 21:] == 0).all()


def test_batches_and_threads_do_not_change_the_record():
    """Samples split into batches of 5 on 3 threads: the same record as one batch (the reference's)."""
    rng = np.random.default_rng(5)
    case = sample_boundary_case()
    inputs = SpikeEvents.from_raster(rng.random((23, case.inputs.num_steps, case.inputs.size)) < 0.5)
    done = []
    assert_engines_agree(case.bundle, inputs, "batches", batch_size=5, progress=done.append)
    assert done == [5, 5, 5, 5, 3] * 2  # told of each batch, in both compiled runs
    spikes, counters, traces = bitsim_compiled.run(case.bundle, inputs, record_state=True, batch_size=5, workers=3)
    reference = bitsim.run(case.bundle, inputs, record_state=True, engine="reference")
    for name, events in reference.spikes.items():
        np.testing.assert_array_equal(spikes[name].events, events.events)
        assert counters[name] == reference.counters[name]
        np.testing.assert_array_equal(traces[name]["v"], reference.traces[name]["v"])


def test_unsorted_and_repeated_input_events_run_as_their_raster():
    """SpikeEvents read from a file keep their order; a repeated event is one spike, as in the raster."""
    case = sample_boundary_case()
    events = np.concatenate([case.inputs.events[:, ::-1], case.inputs.events[:, :5]], axis=1)
    shuffled = SpikeEvents(np.ascontiguousarray(events), case.inputs.num_samples, case.inputs.num_steps,
                           case.inputs.size)
    expected = bitsim.run(case.bundle, case.inputs, record_state=True, engine="reference")
    assert_records_equal(expected, bitsim.run(case.bundle, shuffled, record_state=True, engine="compiled"))


def test_no_samples_and_no_steps_give_what_the_reference_gives():
    case = sample_boundary_case()
    empty = SpikeEvents.from_raster(np.zeros((0, case.inputs.num_steps, case.inputs.size), bool))
    assert_engines_agree(case.bundle, empty, "no samples")
    no_steps = make_bundle(case.inputs.size, list(case.bundle.network.populations),
                           list(case.bundle.network.connections), num_steps=0)
    assert_engines_agree(no_steps, SpikeEvents.from_raster(np.zeros((2, 0, case.inputs.size), bool)), "no steps")


# --- zoo models and imported graphs -------------------------------------------------------------

ZOO_SAMPLES = 300  # without traces; the first TRACED_SAMPLES of them with traces too
TRACED_SAMPLES = 20


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_models_run_alike_on_both_engines(name, tmp_path):
    model = zoo.load(name)
    export(model, tmp_path / f"{name}.nir")
    bundle = compile_network(load_graph(tmp_path / f"{name}.nir"), description.load("loihi2"))
    features = data.load(f"{model.dataset}:test").features[:ZOO_SAMPLES]
    inputs = to_steps(input_times(bundle.encoding, features), bundle.timing.dt, bundle.timing.num_steps)
    expected = bitsim.run(bundle, inputs, engine="reference")
    assert_records_equal(expected, bitsim.run(bundle, inputs, engine="compiled"), name)
    assert expected.spikes[bundle.network.output].events.shape[1] > 0
    traced = to_steps(input_times(bundle.encoding, features[:TRACED_SAMPLES]), bundle.timing.dt,
                      bundle.timing.num_steps)
    assert_engines_agree(bundle, traced, name)


def imported_graphs(reference_dir) -> dict:
    """Every graph of ../shared/reference that compiles, with the semantics of tests/test_imported_graphs.py and
    tests/test_nir_import.py, and the input rate and samples to run it on."""
    graphs, lif = reference_dir / "nir-paper-graphs", reference_dir / "nir-paper-lif"
    loihi2 = description.load("loihi2")
    braille = {"time_unit": "s", "fire_once": False, "decoding": "spike_count", "horizon": 300 * 1e-4,
               "spike": "pulse", "integration": "euler"}
    paper = {"time_unit": "s", "fire_once": False, "reset": "zero", "decoding": "spike_count", "horizon": 0.1,
             "integration": "exact"}
    # 10 steps of the CNN (its own test runs 30): its 4096-neuron layers make the reference take ~0.3 s a step.
    cnn = {"time_unit": "step", "fire_once": False, "reset": "subtract", "decoding": "spike_count", "horizon": 10,
           "spike": "dirac", "integration": "euler"}
    return {
        "braille_bias_zero": (compile_network(load_graph(graphs / "braille_noDelay_bias_zero.nir",
                                                         {**braille, "reset": "zero"}), loihi2, dt=1e-4,
                                              split_weights=True), 0.05, 8),
        "braille_subtract": (compile_network(load_graph(graphs / "braille_noDelay_noBias_subtract.nir",
                                                        {**braille, "reset": "subtract"}), loihi2, dt=1e-4,
                                             split_weights=True), 0.05, 8),
        "cnn_sinabs": (compile_network(load_graph(graphs / "cnn_sinabs.nir", cnn), loihi2, dt=1, split_weights=True),
                       0.05, 1),
        "two_lif_neurons": (compile_network(load_graph(graphs / "two_lif_neurons.nir", {**paper, "spike": "dirac"}),
                                            loihi2, steps_per_tau=100), 0.01, 2),
        "lif_norse pulse": (compile_network(load_graph(lif / "lif_norse.nir", {**paper, "spike": "pulse"}), loihi2,
                                            dt=1e-4), 0.05, 4),
        "lif_norse dirac": (compile_network(load_graph(lif / "lif_norse.nir", {**paper, "spike": "dirac"}), loihi2,
                                            dt=1e-4), 0.05, 4),
    }


def test_imported_reference_graphs_run_alike_on_both_engines(reference_dir):
    for name, (bundle, rate, samples) in imported_graphs(reference_dir).items():
        inputs = random_spike_trains(bundle.network.input.size, samples, bundle.timing.num_steps, rate, seed=3)
        expected = assert_engines_agree(bundle, inputs, name)
        assert sum(events.events.shape[1] for events in expected.spikes.values()) > 0, name


# --- choosing the engine ------------------------------------------------------------------------

def test_the_default_engine_is_the_compiled_one_where_numba_is_installed():
    assert bitsim.default_engine() == "compiled"


def test_an_unknown_engine_or_a_missing_numba_is_refused_by_name(monkeypatch):
    case = sample_boundary_case()
    with pytest.raises(ValueError, match="unknown bitsim engine 'fast'; choose one of: compiled, reference"):
        bitsim.run(case.bundle, case.inputs, engine="fast")
    monkeypatch.setattr(bitsim.importlib.util, "find_spec", lambda name: None)
    assert bitsim.default_engine() == "reference"
    with pytest.raises(BackendUnavailable, match=r"needs numba, the extra 'compiled' .*snn-deploy\[compiled\]"):
        bitsim.run(case.bundle, case.inputs, engine="compiled")
    assert bitsim.run(case.bundle, case.inputs).spikes.keys() == {"busy", "ttfs"}


# --- the pipeline and the command line ----------------------------------------------------------

@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("engine-cli")
    save(random_ttfs_model(), root / "random.npz")
    assert main(["export", str(root / "random.npz"), "-o", str(root / "m.nir"), "-q"]) == 0
    assert main(["compile", str(root / "m.nir"), "-o", str(root / "m.bundle"), "-q"]) == 0
    return root


def test_run_and_verify_give_the_same_record_and_verdict_on_either_engine(cli_files):
    common = ["--data", "yinyang:test", "--samples", "40", "-q"]
    records, verdicts = [], []
    for engine in ENGINES:
        run_out, json_out = cli_files / f"{engine}.h5", cli_files / f"{engine}.json"
        assert main(["run", str(cli_files / "m.bundle"), *common, "--engine", engine, "-o", str(run_out)]) == 0
        assert main(["verify", str(cli_files / "m.nir"), str(cli_files / "m.bundle"), *common, "--engine", engine,
                     "--json", str(json_out)]) in (0, 1)
        records.append(record_io.load(run_out))
        verdicts.append(json.loads(json_out.read_text()))
    assert_records_equal(*records)
    assert verdicts[0] == verdicts[1]


def test_an_engine_for_a_back_end_without_engines_is_refused_in_one_line(cli_files, tmp_path, capsys):
    out = tmp_path / "lava.h5"
    code = main(["run", str(cli_files / "m.bundle"), "--data", "yinyang:test", "--samples", "2", "--backend", "lava",
                 "--engine", "compiled", "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists() and "Traceback" not in err
    assert err.splitlines() == [err.splitlines()[0]] and "--engine applies to bitsim only" in err
    bundle = load_bundle(cli_files / "m.bundle")
    inputs = random_spike_trains(bundle.network.input.size, 2, bundle.timing.num_steps, 0.1, seed=0)
    with pytest.raises(DeployError, match="the lava back end has no engines to choose from"):
        run_inputs(bundle, inputs, backend="lava", engine="reference")
    with pytest.raises(DeployError, match="unknown bitsim engine 'fast'"):
        run_inputs(bundle, inputs, engine="fast")


def test_without_numba_targets_imports_and_bitsim_runs_its_reference_engine():
    """The Lava worker's environment has no numba: bitsim must import and run there, on the numpy engine."""
    code = ("import sys; sys.modules['numba'] = None\n"  # any `import numba` now raises ImportError
            "sys.path.insert(0, 'tests')\n"
            "from networks import sample_boundary_case\n"
            "from snn_deploy.targets import bitsim\n"
            "case = sample_boundary_case()\n"
            "record = bitsim.run(case.bundle, case.inputs)\n"
            "print(bitsim.default_engine(), record.spikes['busy'].events.shape[1])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0, result.stderr
    case = sample_boundary_case()
    spikes = bitsim.run(case.bundle, case.inputs).spikes["busy"].events.shape[1]
    assert result.stdout.split() == ["reference", str(spikes)]
