"""The command line: what each command writes, exit codes, and Ctrl-C at any stage (bad input, case by case:
test_bad_input.py)."""

import dataclasses
import json
import os
import signal
import subprocess
import sys

import nir
import numpy as np
import pytest

from snn_deploy.deploy.interfaces.cli import main
from snn_deploy.deploy.stages import load as load_stage
from snn_deploy.deploy.stages.export import to_nir
from snn_deploy.models import zoo
from snn_deploy.targets import bundle as bundle_io
from snn_deploy.targets.files import OutputSet

from helpers import random_ttfs_model, snapshot


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    model_path = root / "random.npz"
    zoo.save(random_ttfs_model(), model_path)
    assert main(["export", str(model_path), "-o", str(root / "m.nir"), "-q"]) == 0
    assert main(["compile", str(root / "m.nir"), "-o", str(root / "m.bundle"), "-q"]) == 0
    return root


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


def test_verify_exit_code_one_when_a_tolerance_is_exceeded(files, tmp_path, capsys):
    out = tmp_path / "v.json"
    code = main(["verify", str(files / "m.nir"), str(files / "m.bundle"), "--data", "yinyang:test",
                 "--samples", "40", "--min-agreement", "1.0", "--max-accuracy-drop", "0", "--json", str(out)])
    summary = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert code == (0 if result["passed"] else 1)
    assert ("PASS" in summary) == result["passed"]
    assert result["samples"] == 40
    code = main(["verify", str(files / "m.nir"), str(files / "m.bundle"), "--data", "yinyang:test",
                 "--samples", "40", "--min-agreement", "0", "--max-accuracy-drop", "1", "-q"])
    assert code == 0


def test_run_writes_a_record_with_the_bundle_checksum(files, tmp_path):
    from snn_deploy.targets import bundle, record

    out = tmp_path / "run.h5"
    assert main(["run", str(files / "m.bundle"), "--data", "yinyang:test", "--samples", "7", "-o", str(out),
                 "-q"]) == 0
    rec = record.load(out)
    assert rec.num_samples == 7 and rec.bundle_checksum == bundle.load(files / "m.bundle").checksum
    assert rec.spikes["lif2"].first_spike_steps().shape == (7, 3)


def test_replay_verifies_a_stored_run(files, tmp_path):
    run = tmp_path / "run.h5"
    common = ["--data", "yinyang:test", "--samples", "30"]
    assert main(["run", str(files / "m.bundle"), *common, "-o", str(run), "-q"]) == 0
    live, replayed = tmp_path / "live.json", tmp_path / "replay.json"
    main(["verify", str(files / "m.nir"), str(files / "m.bundle"), *common, "--json", str(live), "-q"])
    main(["verify", str(files / "m.nir"), str(files / "m.bundle"), *common, "--replay", str(run),
          "--json", str(replayed), "-q"])
    assert json.loads(live.read_text())["spike_time_error_steps"] == json.loads(replayed.read_text())[
        "spike_time_error_steps"]
    assert json.loads(live.read_text())["accuracy"] == json.loads(replayed.read_text())["accuracy"]


def test_a_layer_with_an_all_zero_weight_row_compiles_without_a_warning(tmp_path, capsys):
    import warnings

    graph = to_nir(random_ttfs_model())
    graph.nodes["fc1"].weight[0, :] = 0
    nir.write(tmp_path / "row.nir", graph)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "divide by zero" RuntimeWarning would now be an internal error
        assert main(["compile", str(tmp_path / "row.nir"), "-o", str(tmp_path / "row.bundle"), "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_a_layer_driven_by_its_bias_alone_compiles_and_runs_as_the_reference(tmp_path, capsys):
    """An output layer of LIF neurons with no weights at all but a v_leak drive is valid: it fires on its bias."""
    graph = to_nir(random_ttfs_model())
    graph.nodes["fc2"].weight[:] = 0
    graph.nodes["lif2"] = nir.LIF(tau=np.ones(3), r=np.ones(3), v_leak=np.full(3, 2.0), v_threshold=np.ones(3),
                                  v_reset=np.zeros(3))
    nir.write(tmp_path / "bias.nir", graph)
    assert main(["compile", str(tmp_path / "bias.nir"), "-o", str(tmp_path / "bias.bundle"), "-q"]) == 0
    assert main(["verify", str(tmp_path / "bias.nir"), str(tmp_path / "bias.bundle"), "--data", "random",
                 "--samples", "10", "--min-agreement", "1", "--json", str(tmp_path / "v.json"), "-q"]) == 0
    metrics = json.loads((tmp_path / "v.json").read_text())
    assert metrics["output_spike_count_error"]["max_abs"] == 0
    assert metrics["output_spike_count_error"]["reference_mean"] > 0  # it does fire
    assert capsys.readouterr().err == ""


def _ctrl_c():
    raise KeyboardInterrupt


def _sigterm():
    """A real SIGTERM: its handler runs before raise_signal returns to this thread's next instruction."""
    signal.raise_signal(signal.SIGTERM)


# How a command is stopped (``_stop`` calls the current one): (name, stop, exit code, the word stderr says).
STOPS = [("ctrl-c", _ctrl_c, 130, "interrupted"), ("sigterm", _sigterm, 143, "terminated")]
_current_stop = {"stop": _ctrl_c}


def _stop():
    _current_stop["stop"]()
    raise AssertionError("the stop did not stop the command")


def _interrupting(original=None):
    """A stand-in that stops the command (``_stop``), after calling ``original`` if given."""
    def interrupt(*args, **kwargs):
        if original is not None:
            original(*args, **kwargs)
        _stop()
    return interrupt


def _interrupt_after_staging(suffix):
    """OutputSet.stage that stages, then is interrupted if the output ends with ``suffix``."""
    stage = OutputSet.stage

    def staged_then_interrupted(self, path, content):
        tmp = stage(self, path, content)
        if str(path).endswith(suffix):
            _stop()
        return tmp
    return staged_then_interrupted


def _trained(**kwargs):
    """A stand-in trainer: the random test model, as a trainer returns it."""
    return dataclasses.replace(random_ttfs_model(), meta={"accuracy": {"test": 0.5}})


# (command, where the Ctrl-C lands, what is patched, its stand-in). Each stage of each command.
INTERRUPTIONS = [
    ("compile", "after load", "snn_deploy.deploy.stages.load.load",
     lambda: _interrupting(load_stage.load)),
    ("compile", "after compile", "snn_deploy.deploy.stages.compile.compile_network",
     lambda: _interrupting(lambda *a, **k: None)),
    ("compile", "inside the bundle writing", "snn_deploy.targets.bundle.save", lambda: _interrupting()),
    ("compile", "just before commit", "snn_deploy.targets.files.OutputSet.commit", lambda: _interrupting()),
    ("run", "after load", "snn_deploy.targets.bundle.load",
     lambda: _interrupting(bundle_io.load)),
    ("run", "inside the back-end run", "snn_deploy.targets.bitsim_compiled._run_samples", lambda: _interrupting()),
    ("run", "inside the record writing", "snn_deploy.targets.record.save", lambda: _interrupting()),
    ("run", "just before commit", "snn_deploy.targets.files.OutputSet.commit", lambda: _interrupting()),
    ("verify", "after load", "snn_deploy.deploy.stages.verify.load",
     lambda: _interrupting(load_stage.load)),
    ("verify", "inside the back-end run", "snn_deploy.targets.bitsim_compiled._run_samples",
     lambda: _interrupting()),
    ("verify", "after the JSON is staged", "snn_deploy.targets.files.OutputSet.stage",
     lambda: _interrupt_after_staging(".json")),
    ("verify", "inside the report writing", "snn_deploy.deploy.reporting.html.render", lambda: _interrupting()),
    ("verify", "just before commit", "snn_deploy.targets.files.OutputSet.commit", lambda: _interrupting()),
    ("export", "after load", "snn_deploy.models.zoo.load",
     lambda: _interrupting(zoo.load)),
    ("export", "inside the NIR writing", "nir.write", lambda: _interrupting()),
    ("export", "just before commit", "snn_deploy.targets.files.OutputSet.commit", lambda: _interrupting()),
    ("train", "inside training", "snn_deploy.models.train.train_yinyang_ttfs", lambda: _interrupting()),
    ("train", "between the checkpoint and its sidecar", "snn_deploy.models.zoo._write_atomically",
     lambda: _interrupting(zoo._write_atomically)),
    ("train", "just before commit", "snn_deploy.targets.files.OutputSet.commit", lambda: _interrupting()),
]


def _command(files, out, command):
    """Each command writing all its outputs into the folder ``out``."""
    return {
        "compile": ["compile", str(files / "m.nir"), "-o", str(out / "m.bundle")],
        "run": ["run", str(files / "m.bundle"), "--data", "yinyang:test", "--samples", "5", "-o", str(out / "r.h5")],
        "verify": ["verify", str(files / "m.nir"), str(files / "m.bundle"), "--data", "yinyang:test", "--samples",
                   "5", "--json", str(out / "v.json"), "--report", str(out / "r.html")],
        "export": ["export", str(files / "random.npz"), "-o", str(out / "m.nir")],
        "train": ["train", "yinyang-ttfs", "-o", str(out / "m.npz")],
    }[command]


@pytest.mark.parametrize("how, stop, exit_code, word", STOPS, ids=[name for name, *_ in STOPS])
@pytest.mark.parametrize("command, moment, target, stand_in", INTERRUPTIONS,
                         ids=[f"{c}: {m}" for c, m, _, _ in INTERRUPTIONS])
def test_ctrl_c_or_sigterm_at_any_stage_exits_leaving_no_output(files, tmp_path, capsys, monkeypatch, command, moment,
                                                                target, stand_in, how, stop, exit_code, word):
    """Ctrl-C (exit 130) or SIGTERM (143), injected deterministically at each stage of each command: the message
    says no output was written, and indeed no output and no temp file is left; the inputs are unchanged."""
    if command == "train":  # the stand-in trainer: no real training in this test
        monkeypatch.setattr("snn_deploy.models.train.train_yinyang_ttfs", _trained)
    monkeypatch.setitem(_current_stop, "stop", stop)
    before = snapshot(files)
    monkeypatch.setattr(target, stand_in())
    code = main(_command(files, tmp_path, command))
    err = capsys.readouterr().err
    assert code == exit_code, err
    assert err.strip() == f"snn-deploy {command}: {word}; no output was written"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # main left the handler as it found it
    assert list(tmp_path.iterdir()) == []
    assert snapshot(files) == before


def test_every_command_of_the_interruption_table_succeeds_without_the_interruption(files, tmp_path, monkeypatch):
    """The interrupted commands are real ones: unpatched, each writes exactly its outputs."""
    monkeypatch.setattr("snn_deploy.models.train.train_yinyang_ttfs", _trained)
    for command, outputs in (("compile", {"m.bundle"}), ("run", {"r.h5"}), ("verify", {"v.json", "r.html"}),
                             ("export", {"m.nir"}), ("train", {"m.npz", "m.json"})):
        out = tmp_path / command
        out.mkdir()
        assert main([*_command(files, out, command), "-q"]) in (0, 1)
        assert {path.name for path in out.iterdir()} == outputs, command


@pytest.mark.parametrize("number, exit_code, word", [(signal.SIGINT, 130, "interrupted"),
                                                     (signal.SIGTERM, 143, "terminated")], ids=["sigint", "sigterm"])
def test_a_stop_during_the_commit_takes_effect_after_it(files, tmp_path, capsys, monkeypatch, number, exit_code,
                                                        word):
    """A SIGINT or SIGTERM that arrives between two renames is held until the last one: both outputs are in place,
    and the message says so."""
    replace = os.replace
    finals = []

    def replace_with_a_stop(src, dst):
        if os.path.dirname(dst) == str(tmp_path) and not os.path.basename(dst).startswith("."):
            finals.append(dst)  # a rename of the final commit (the report's writer renames into its temp file)
            if len(finals) == 1:
                signal.raise_signal(number)
        replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_with_a_stop)
    code = main(_command(files, tmp_path, "verify"))
    err = capsys.readouterr().err
    assert code == exit_code and "Traceback" not in err
    assert err.strip() == (f"snn-deploy verify: {word}; it had written {tmp_path / 'v.json'}, "
                           f"{tmp_path / 'r.html'}")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["r.html", "v.json"]
    assert json.loads((tmp_path / "v.json").read_text())["samples"] == 5


def test_a_commit_holds_its_folders_lock_so_two_verifies_cannot_mix_their_outputs(files, tmp_path, monkeypatch):
    """While one command renames its outputs into place it holds an exclusive flock on the folder, which every
    snn-deploy commit takes: a second verify to the same outputs cannot put its JSON beside the first's report."""
    import fcntl
    import os

    replace = os.replace
    lock_free_during_renames = []

    def replace_checking_the_lock(src, dst):
        fd = os.open(tmp_path, os.O_RDONLY)  # another open file description: it conflicts, as another process's
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            lock_free_during_renames.append(dst)
        except BlockingIOError:
            pass
        finally:
            os.close(fd)
        replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_checking_the_lock)
    assert main([*_command(files, tmp_path, "verify"), "-q"]) in (0, 1)
    assert lock_free_during_renames == []


def test_an_internal_error_exits_4_with_its_traceback_and_a_request_to_report_it(files, tmp_path, capsys,
                                                                                 monkeypatch):
    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("snn_deploy.deploy.stages.compile.compile_network", bug)
    code = main(["compile", str(files / "m.nir"), "-o", str(tmp_path / "m.bundle")])
    err = capsys.readouterr().err
    assert code == 4
    assert "Traceback" in err and "ZeroDivisionError: a bug" in err
    assert err.strip().splitlines()[-1].endswith("this is a bug in snn-deploy, not in your input; please report it "
                                                 "with the command line and the traceback above")
    assert list(tmp_path.iterdir()) == []


def test_a_failing_back_end_exits_3(files, tmp_path, capsys, monkeypatch):
    from snn_deploy.targets.lava import LavaRunError

    def failing(*args, **kwargs):
        raise LavaRunError("Traceback (most recent call last):\n  ...\nRuntimeError: inside Lava")

    monkeypatch.setattr("snn_deploy.targets.bitsim.run", failing)
    code = main(["run", str(files / "m.bundle"), "--data", "yinyang:test", "--samples", "3", "-o",
                 str(tmp_path / "r.h5")])
    assert code == 3 and "RuntimeError: inside Lava" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_exit_codes_are_one_thing_each_and_help_lists_them(capsys):
    from snn_deploy.deploy.interfaces.cli import ExitCode

    assert {code.name: code.value for code in ExitCode} == {
        "PASSED": 0, "TOLERANCE_EXCEEDED": 1, "BAD_INPUT": 2, "BACKEND_FAILED": 3, "INTERNAL_ERROR": 4,
        "INTERRUPTED": 130, "TERMINATED": 143}
    assert main(["--help"]) == 0
    epilog = " ".join(capsys.readouterr().out.split())
    for code in ExitCode:
        assert f"{code.value} {code.meaning}" in epilog


def test_an_imported_graph_compiles_and_verifies_on_random_spike_trains(reference_dir, tmp_path, capsys):
    """The whole command line for a graph from another tool: every open semantic stated, then verify
    without a data set, on seeded random input spike trains; the choices are printed and stored."""
    graph = str(reference_dir / "nir-paper-graphs" / "braille_noDelay_noBias_subtract.nir")
    semantics = ["--time-unit", "s", "--multi-spike", "--reset", "subtract", "--decoding", "spike_count",
                 "--duration", "0.03", "--spike", "pulse", "--integration", "euler"]
    bundle = tmp_path / "braille.npz"
    assert main(["compile", graph, "--target", "loihi2", "--dt", "1e-4", "--split-weights", "-o", str(bundle),
                 *semantics]) == 0
    out = capsys.readouterr().out
    assert "reset=subtract, spike=pulse, integration=euler" in out and "integration from option" in out
    report = tmp_path / "v.json"
    assert main(["verify", graph, str(bundle), "--data", "random:rate=0.05,seed=3", "--samples", "40",
                 "--min-agreement", "0.9", "--json", str(report), *semantics]) == 0
    out = capsys.readouterr().out
    assert "random spike trains (rate 0.05 per step, seed 3) (40 samples" in out
    assert "accuracy" not in out.split("\n")[1] and "output spike counts" in out
    metrics = json.loads(report.read_text())
    assert metrics["accuracy"] is None and metrics["samples"] == 40
    assert set(metrics["divergence"]) == {"samples_identical", "first_layer", "first_step", "per_sample"}
    for bad, message in (("random:rate=2", "rate must be in (0, 1]"), ("random:speed=1", "takes rate= and seed=")):
        assert main(["verify", graph, str(bundle), "--data", bad, *semantics]) == 2
        assert message in _error_line(capsys)


def test_zoo_lists_every_model_with_its_accuracy_and_no_caveat(capsys):
    """Every zoo model, TTFS and multi-spike alike, exports (tests/test_zoo_deploy.py deploys the multi-spike ones)."""
    assert main(["zoo"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["digits-multispike", "digits-ttfs", "yinyang-multispike",
                                                   "yinyang-ttfs", "eventdigits-cnn"]
    assert all("test accuracy" in line and "not supported" not in line for line in lines)


def _cli_with_closed_stdout(argv) -> subprocess.CompletedProcess:
    """The CLI in a fresh interpreter whose stdout is a pipe nobody reads any more (``snn-deploy zoo | head -1`` once
    head has left): every write to it fails, from the first."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "snn_deploy.deploy.interfaces.cli", *argv], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, check=False)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("argv", [["zoo"], ["targets"], ["--help"]])
def test_a_reader_that_left_ends_the_listing_quietly(argv):
    result = _cli_with_closed_stdout(argv)
    assert (result.returncode, result.stderr) == (0, "")


def test_a_verdict_piped_to_a_reader_that_left_is_still_written_and_returned(files, tmp_path):
    """The lines are lost; the verdict JSON and the exit code are the command's own, as with stdout read."""
    argv = ["verify", str(files / "m.nir"), str(files / "m.bundle"), "--data", "yinyang:test", "--samples", "40",
            "--min-agreement", "1.0", "--max-accuracy-drop", "0"]
    read = subprocess.run([sys.executable, "-m", "snn_deploy.deploy.interfaces.cli", *argv, "--json",
                           str(tmp_path / "read.json")], capture_output=True, text=True, check=False)
    left = _cli_with_closed_stdout([*argv, "--json", str(tmp_path / "left.json")])
    assert left.stderr == ""
    assert left.returncode == read.returncode and read.returncode in (0, 1)
    assert (tmp_path / "left.json").read_bytes() == (tmp_path / "read.json").read_bytes()
