"""The command line: exit codes, one-line errors, and no partial output on bad input."""

import json
import subprocess
import sys

import nir
import numpy as np
import pytest

from snn_deploy.deploy.interfaces.cli import main
from snn_deploy.deploy.stages.export import export, to_nir
from snn_deploy.models.zoo import save

from helpers import random_ttfs_model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    model_path = root / "random.npz"
    save(random_ttfs_model(), model_path)
    assert main(["export", str(model_path), "-o", str(root / "m.nir"), "-q"]) == 0
    assert main(["compile", str(root / "m.nir"), "-o", str(root / "m.bundle"), "-q"]) == 0
    return root


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


def _fails_cleanly(argv, capsys, out_path, expected_text):
    code = main(argv)
    assert code == 2
    assert expected_text in _error_line(capsys)
    assert not out_path.exists()
    assert not list(out_path.parent.glob(f".{out_path.name}*"))  # no temp file left behind


def test_missing_nir_file(files, tmp_path, capsys):
    out = tmp_path / "x.bundle"
    _fails_cleanly(["compile", str(tmp_path / "nope.nir"), "-o", str(out)], capsys, out, "NIR file not found")


def test_corrupt_nir_file(files, tmp_path, capsys):
    bad = tmp_path / "corrupt.nir"
    bad.write_bytes(b"\x89HDF garbage" * 50)
    out = tmp_path / "x.bundle"
    _fails_cleanly(["compile", str(bad), "-o", str(out)], capsys, out, "is not a NIR file")


def test_truncated_nir_file(files, tmp_path, capsys):
    good = (files / "m.nir").read_bytes()
    bad = tmp_path / "truncated.nir"
    bad.write_bytes(good[: len(good) // 2])
    out = tmp_path / "x.bundle"
    _fails_cleanly(["compile", str(bad), "-o", str(out)], capsys, out, "truncated.nir")


def test_nan_weight(tmp_path, capsys):
    graph = to_nir(random_ttfs_model())
    graph.nodes["fc1"].weight[1, 1] = np.nan
    nir.write(tmp_path / "nan.nir", graph)
    out = tmp_path / "x.bundle"
    _fails_cleanly(["compile", str(tmp_path / "nan.nir"), "-o", str(out)], capsys, out,
                   "node fc1: weight contains NaN")


def test_negative_tau(tmp_path, capsys):
    graph = to_nir(random_ttfs_model())
    graph.nodes["lif2"].tau_syn[0] = -1.0
    nir.write(tmp_path / "tau.nir", graph)
    out = tmp_path / "x.bundle"
    _fails_cleanly(["compile", str(tmp_path / "tau.nir"), "-o", str(out)], capsys, out,
                   "node lif2: tau_syn must be > 0, got -1")


def test_unknown_data_set_and_back_end(files, tmp_path, capsys):
    out = tmp_path / "v.json"
    _fails_cleanly(["verify", str(files / "m.nir"), str(files / "m.bundle"), "--data", "mnist:test",
                    "--json", str(out)], capsys, out, "mnist")
    _fails_cleanly(["verify", str(files / "m.nir"), str(files / "m.bundle"), "--data", "yinyang:test",
                    "--backend", "spinnaker", "--json", str(out)], capsys, out, "unknown back end 'spinnaker'")


def test_corrupt_bundle(files, tmp_path, capsys):
    bad = tmp_path / "bad.bundle"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    out = tmp_path / "r.h5"
    _fails_cleanly(["run", str(bad), "--data", "yinyang:test", "-o", str(out)], capsys, out, "bad.bundle")


def test_unknown_model_and_missing_output_folder(files, tmp_path, capsys):
    out = tmp_path / "m.nir"
    _fails_cleanly(["export", "no-such-model", "-o", str(out)], capsys, out, "no-such-model")
    deep = tmp_path / "missing" / "m.nir"
    _fails_cleanly(["export", str(files / "random.npz"), "-o", str(deep)], capsys, deep,
                   "output folder does not exist")


def test_bundle_from_another_graph_is_refused(files, tmp_path, capsys):
    other = tmp_path / "other.nir"
    export(random_ttfs_model(seed=1), other)
    out = tmp_path / "v.json"
    _fails_cleanly(["verify", str(other), str(files / "m.bundle"), "--data", "yinyang:test", "--json", str(out)],
                   capsys, out, "the bundle was compiled from m.nir")


def test_verify_exit_code_one_when_a_tolerance_is_exceeded(files, tmp_path, capsys):
    out = tmp_path / "v.json"
    code = main(["verify", str(files / "m.nir"), str(files / "m.bundle"), "--data", "yinyang:test",
                 "--samples", "40", "--min-agreement", "1.0", "--max-accuracy-drop", "0", "--json", str(out)])
    summary = capsys.readouterr().out
    import json
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


def test_replay_verifies_a_stored_run_and_refuses_another_bundles(files, tmp_path, capsys):
    import json

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

    other = tmp_path / "other.bundle"
    assert main(["compile", str(files / "m.nir"), "--steps-per-tau", "50", "-o", str(other), "-q"]) == 0
    out = tmp_path / "v.json"
    _fails_cleanly(["verify", str(files / "m.nir"), str(other), *common, "--replay", str(run), "--json", str(out)],
                   capsys, out, "recorded from a different bundle")
    _fails_cleanly(["verify", str(files / "m.nir"), str(files / "m.bundle"), "--data", "yinyang:test",
                    "--samples", "31", "--replay", str(run), "--json", str(out)], capsys, out,
                   "was recorded on yinyang:test samples 0-29, not on yinyang:test samples 0-30")
    # The same number of samples from another split is another selection.
    _fails_cleanly(["verify", str(files / "m.nir"), str(files / "m.bundle"), "--data", "yinyang:train",
                    "--samples", "30", "--replay", str(run), "--json", str(out)], capsys, out,
                   "not on yinyang:train samples 0-29")


def test_train_refuses_a_non_positive_epoch_count(tmp_path, capsys):
    out = tmp_path / "m.npz"
    _fails_cleanly(["train", "digits-ttfs", "--epochs", "0", "-o", str(out)], capsys, out, "--epochs must be at least 1")


def test_console_script_unknown_option_exits_2():
    result = subprocess.run([sys.executable, "-m", "snn_deploy.deploy.interfaces.cli", "compile", "--bogus"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_hardware_back_end_without_lava_loihi_exits_2_naming_the_public_back_ends(files, tmp_path, capsys):
    out = tmp_path / "v.json"
    _fails_cleanly(["verify", str(files / "m.nir"), str(files / "m.bundle"), "--data", "yinyang:test",
                    "--samples", "3", "--backend", "loihi2", "--json", str(out)], capsys, out, "lava-loihi")


def test_ctrl_c_stops_cleanly_without_partial_output(files, tmp_path):
    """Ctrl-C once verify is running: stderr is a terminal, so the progress bar is drawn when the run
    starts; the interrupt follows its first drawing, with the 5000 samples (seconds of work) still ahead."""
    import fcntl
    import os
    import pty
    import signal
    import struct
    import termios

    out_json, out_report = tmp_path / "v.json", tmp_path / "r.html"
    primary, secondary = pty.openpty()
    # A terminal of 24 x 80 characters: a new pty has 0 x 0, on which tqdm draws nothing.
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "snn_deploy.deploy.interfaces.cli", "verify", str(files / "m.nir"), str(files / "m.bundle"),
         "--data", "yinyang:train", "--json", str(out_json), "--report", str(out_report)],
        stdout=subprocess.PIPE, stderr=secondary)
    os.close(secondary)
    terminal = os.read(primary, 4096)  # blocks until the bar is first drawn
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    while True:  # the rest of what reached the terminal; EIO once the process has closed it
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        terminal += chunk
    os.close(primary)
    stderr = terminal.decode(errors="replace")
    assert process.returncode == 130, stderr
    assert "interrupted; no output was written" in stderr and "Traceback" not in stderr
    assert not out_json.exists() and not out_report.exists()
    assert not list(tmp_path.glob(".*.tmp"))


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
                                                   "yinyang-ttfs"]
    assert all("test accuracy" in line and "not supported" not in line for line in lines)
