"""compile, run and verify without torch: torch, tqdm and scikit-learn are optional extras
(pyproject.toml), and a NIR graph must compile, run and verify on a machine without them, as must the zoo's
listing, its export and the demo. Each
command runs in a fresh interpreter whose import system refuses those packages (a ``sys.meta_path``
finder installed before snn_deploy is imported), and must exit 0 with the full environment's result.
A command that does need a missing extra exits 2 with one line naming it, not as a bug."""

import json
import os
import pty
import subprocess
import sys

import pytest

from snn_deploy.deploy.interfaces.cli import main
from snn_deploy.targets import bundle as bundle_io
from snn_deploy.targets import record as record_io

from helpers import assert_records_equal

BLOCKED = ("torch", "tqdm", "sklearn")

# Refuses the blocked packages, noting each attempt in the file $SNN_BLOCKED_LOG, then runs the CLI.
BLOCKED_CLI = """
import json, os, sys

BLOCKED = tuple(os.environ["SNN_BLOCKED"].split(","))
assert not [name for name in sys.modules if name.split(".")[0] in BLOCKED], "imported before the blocker"
attempts = []


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            attempts.append(name)
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by this test)", name=name)
        return None


sys.meta_path.insert(0, Blocker())
from snn_deploy.deploy.interfaces.cli import main

try:
    code = main(sys.argv[1:])
finally:
    with open(os.environ["SNN_BLOCKED_LOG"], "w") as log:
        json.dump(attempts, log)
sys.exit(code)
"""

VERIFY_SAMPLES = "300"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The Yin-Yang TTFS zoo model exported and compiled in the full environment."""
    root = tmp_path_factory.mktemp("no_torch")
    assert main(["export", "yinyang-ttfs", "-o", str(root / "yy.nir"), "-q"]) == 0
    assert main(["compile", str(root / "yy.nir"), "-o", str(root / "yy.bundle"), "-q"]) == 0
    return root


def blocked_cli(argv, tmp_path, stderr=subprocess.PIPE, blocked: tuple[str, ...] = BLOCKED
                ) -> tuple[subprocess.CompletedProcess, list[str]]:
    """The CLI in a fresh interpreter without ``blocked`` (torch, tqdm and scikit-learn): its result and the imports
    it tried. The log lies outside tmp_path, whose emptiness some tests check."""
    log = tmp_path.parent / f"{tmp_path.name}-blocked-imports.json"
    result = subprocess.run([sys.executable, "-c", BLOCKED_CLI, *argv], stdout=subprocess.PIPE, stderr=stderr,
                            text=True, env={**os.environ, "SNN_BLOCKED_LOG": str(log), "SNN_BLOCKED": ",".join(blocked)},
                            check=False)
    return result, json.loads(log.read_text())


def test_compile_without_torch_writes_the_same_bundle(files, tmp_path):
    result, attempts = blocked_cli(["compile", str(files / "yy.nir"), "-o", str(tmp_path / "yy.bundle"), "-q"],
                                   tmp_path)
    assert result.returncode == 0, result.stderr
    assert attempts == []
    assert bundle_io.load(tmp_path / "yy.bundle").checksum == bundle_io.load(files / "yy.bundle").checksum


@pytest.mark.parametrize("data", ["yinyang:test", "random:rate=0.05,seed=1"])
def test_verify_without_torch_gives_the_same_verdict(files, tmp_path, data):
    """Verify takes the continuous reference (the numpy closed form) on Yin-Yang, the discrete one on
    random spike trains: the verdict JSON, accuracies and every other figure, is the full environment's."""
    argv = ["verify", str(files / "yy.nir"), str(files / "yy.bundle"), "--data", data, "--samples", VERIFY_SAMPLES,
            "-q"]
    assert main([*argv, "--json", str(tmp_path / "full.json")]) == 0
    result, attempts = blocked_cli([*argv, "--json", str(tmp_path / "blocked.json")], tmp_path)
    assert result.returncode == 0, result.stderr
    assert attempts == []
    full, blocked = (json.loads((tmp_path / name).read_text()) for name in ("full.json", "blocked.json"))
    assert blocked == full
    if data.startswith("yinyang"):
        assert full["float_reference"] == "continuous" and full["accuracy"]["float"] > 0.9
    else:
        assert full["float_reference"] == "discrete" and full["accuracy"] is None


def test_run_without_torch_writes_the_same_record(files, tmp_path):
    """On a terminal the CLI would show a tqdm progress bar: without tqdm it runs without one."""
    argv = ["run", str(files / "yy.bundle"), "--data", "yinyang:test", "--samples", "50", "-q"]
    assert main([*argv, "-o", str(tmp_path / "full.h5")]) == 0
    primary, secondary = pty.openpty()  # stderr a terminal: the progress bar's path
    try:
        result, attempts = blocked_cli([*argv[:-1], "-o", str(tmp_path / "blocked.h5")], tmp_path, stderr=secondary)
    finally:
        os.close(secondary)
        os.close(primary)
    assert result.returncode == 0
    assert attempts == ["tqdm"]  # tried for the bar, refused; torch and scikit-learn never asked for
    full, blocked = (record_io.load(tmp_path / name) for name in ("full.h5", "blocked.h5"))
    assert blocked.bundle_checksum == full.bundle_checksum
    assert_records_equal(full, blocked, "without torch")


def test_digits_without_scikit_learn_is_a_one_line_error_naming_the_extra(files, tmp_path):
    result, attempts = blocked_cli(["run", str(files / "yy.bundle"), "--data", "digits:test", "-o",
                                    str(tmp_path / "digits.h5")], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("snn-deploy run: error: the digits data set needs scikit-learn: "
                                     "pip install 'snn-deploy[data]'")
    assert attempts == ["sklearn"] and not (tmp_path / "digits.h5").exists()


TORCH_LINE = "torch is not installed; it comes with the extra 'torch': pip install 'snn-deploy[torch]'"


@pytest.mark.parametrize("command", ["train", "finetune"])
def test_a_command_that_needs_torch_names_the_extra_in_one_line(files, tmp_path, command):
    """Exit 2 (the installation lacks an extra), not 4 (a bug in snn-deploy), and nothing written."""
    argv = {"train": ["train", "yinyang-ttfs", "--epochs", "1", "-o", str(tmp_path / "yy.npz")],
            "finetune": ["finetune", str(files / "yy.nir"), "--data", "random:rate=0.05", "--samples", "4",
                         "-o", str(tmp_path / "yy.tuned.nir")]}[command]
    result, attempts = blocked_cli(argv, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"snn-deploy {command}: error: {TORCH_LINE}"
    assert "torch" in attempts
    assert list(tmp_path.iterdir()) == []


def test_zoo_lists_the_same_models_without_torch(tmp_path, capsys):
    """Listing reads the checkpoints' sidecars; only a model's closed-form forward pass needs torch."""
    assert main(["zoo"]) == 0
    full = capsys.readouterr().out
    result, attempts = blocked_cli(["zoo"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert attempts == []
    assert result.stdout == full and "yinyang-multispike" in full


@pytest.mark.parametrize("model", ["yinyang-ttfs", "digits-multispike"])
def test_export_without_torch_writes_the_same_graph(tmp_path, model):
    assert main(["export", model, "-o", str(tmp_path / "full.nir"), "-q"]) == 0
    result, attempts = blocked_cli(["export", model, "-o", str(tmp_path / "blocked.nir"), "-q"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert attempts == []
    assert (tmp_path / "blocked.nir").read_bytes() == (tmp_path / "full.nir").read_bytes()


def test_the_demo_runs_without_torch_to_the_same_verdict(tmp_path):
    """export, compile, run and verify of the demo: a pip install without extras runs the main job."""
    argv = ["demo", "--samples", "20", "-q"]
    assert main([*argv, "--out", str(tmp_path / "full")]) == 0
    result, attempts = blocked_cli([*argv, "--out", str(tmp_path / "blocked")], tmp_path)
    assert result.returncode == 0, result.stderr
    assert attempts == []
    full, blocked = (json.loads((tmp_path / name / "verify.json").read_text()) for name in ("full", "blocked"))
    assert full["passed"] and full["accuracy"]["chip"] > 0.8
    assert {**blocked, "nir_file": None} == {**full, "nir_file": None}  # each names the graph in its own folder


def test_a_report_without_its_extra_is_refused_before_the_run(files, tmp_path):
    """verify --report needs matplotlib and jinja2: refused up front, with no verdict written either."""
    result, attempts = blocked_cli(["verify", str(files / "yy.nir"), str(files / "yy.bundle"), "--data",
                                    "yinyang:test", "--samples", "20", "--json", str(tmp_path / "v.json"),
                                    "--report", str(tmp_path / "r.html")], tmp_path, blocked=("jinja2",))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == ("snn-deploy verify: error: --report needs jinja2, the extra 'report' "
                                     "(pip install 'snn-deploy[report]')")
    assert result.stdout == ""  # not a line of the run: it never started
    assert attempts == ["jinja2"] and list(tmp_path.iterdir()) == []
