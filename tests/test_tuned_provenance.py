"""A bundle compiled from a fine-tuned graph keeps what the graph was tuned from (the original file's name and
sha256, the data, the settings), and verify accepts the original graph, comparing the chip with the original float
model, or the tuned graph itself; any other graph is refused, naming both."""

import hashlib
import json

import nir
import numpy as np
import pytest

from snn_deploy.deploy.interfaces.cli import main
from snn_deploy.deploy.stages.export import to_nir
from snn_deploy.deploy.stages.verify import reference_network
from snn_deploy.targets import bundle as bundle_io
from snn_deploy.targets.bundle import TUNED_FROM_KEY, TunedFrom

from helpers import random_ttfs_model

COMPILE = ["--target", "loihi2", "--calibrate", "none", "-q"]
# Tolerances loose enough that an untrained network passes: these tests are about which graphs verify accepts.
VERIFY = ["--backend", "bitsim", "--data", "yinyang:test", "--samples", "20", "--min-agreement", "0",
          "--max-accuracy-drop", "1", "--max-spike-time-error-p95", "1e9", "--max-hardware-events", "1000000000"]
SETTINGS = {"epochs": 3, "learning_rate": 0.001, "noise": True, "optimizer": "adam"}
TUNED_WEIGHT_CHANGE = 0.05  # added to fc1's first weight


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tuned_graph(original, metadata_value: str):
    """The original's graph with one weight changed and ``metadata_value`` under TUNED_FROM_KEY."""
    graph = nir.read(original)
    graph.nodes["fc1"].weight[0, 0] += TUNED_WEIGHT_CHANGE
    graph.metadata[TUNED_FROM_KEY] = metadata_value
    return graph


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("tuned")
    original, tuned, other = root / "G.nir", root / "G.tuned.nir", root / "other.nir"
    nir.write(original, to_nir(random_ttfs_model()))
    provenance = TunedFrom(nir_file=original.name, nir_sha256=_sha256(original), data="yinyang:train",
                           settings=SETTINGS)
    nir.write(tuned, _tuned_graph(original, provenance.to_metadata()))
    nir.write(other, to_nir(random_ttfs_model(seed=1)))
    bundle = root / "G.tuned.bundle"
    assert main(["compile", str(tuned), "-o", str(bundle), *COMPILE]) == 0
    return {"root": root, "original": original, "tuned": tuned, "other": other, "bundle": bundle,
            "provenance": provenance}


def _verify(files, graph, tmp_path, capsys, *extra) -> tuple[dict, str]:
    out = tmp_path / "verdict.json"
    assert main(["verify", str(graph), str(files["bundle"]), *VERIFY, "--json", str(out), *extra]) == 0
    return json.loads(out.read_text()), capsys.readouterr().out


def test_the_bundle_records_what_its_graph_was_tuned_from(files):
    source = bundle_io.load(files["bundle"]).source
    assert source.nir_file == "G.tuned.nir" and source.nir_sha256 == _sha256(files["tuned"])
    assert source.tuned_from == files["provenance"]
    assert source.tuned_from.nir_sha256 == _sha256(files["original"])


def test_verify_with_the_original_graph_compares_the_chip_with_the_original_float_model(files, tmp_path, capsys):
    report = tmp_path / "report.html"
    verdict, printed = _verify(files, files["original"], tmp_path, capsys, "--report", str(report))
    assert verdict["schema_version"] == 7 and verdict["nir_file"] == "G.nir"
    assert verdict["tuned_graph"] == {
        "tuned_file": "G.tuned.nir", "tuned_sha256": _sha256(files["tuned"]), "original_file": "G.nir",
        "original_sha256": _sha256(files["original"]), "data": "yinyang:train", "settings": SETTINGS,
        "compared_with": "original"}
    line = (f"compared with the original float model G.nir (sha256 {_sha256(files['original'])[:12]}); the bundle "
            "was compiled from G.tuned.nir, tuned on yinyang:train")
    assert f"  {line}\n" in printed
    assert line in report.read_text()
    # The float model verify built is the original's, not the tuned one's.
    bundle = bundle_io.load(files["bundle"])
    original_weight = nir.read(files["original"]).nodes["fc1"].weight[0, 0]
    weight = reference_network(files["original"], bundle).layer("lif1").feed_forward.weight[0, 0]
    assert weight == original_weight
    tuned_weight = reference_network(files["tuned"], bundle).layer("lif1").feed_forward.weight[0, 0]
    assert tuned_weight == pytest.approx(original_weight + TUNED_WEIGHT_CHANGE)


def test_verify_with_the_tuned_graph_itself_says_so(files, tmp_path, capsys):
    verdict, printed = _verify(files, files["tuned"], tmp_path, capsys)
    assert verdict["nir_file"] == "G.tuned.nir"
    assert verdict["tuned_graph"]["compared_with"] == "tuned"
    assert verdict["tuned_graph"]["original_sha256"] == _sha256(files["original"])
    assert "compared with the tuned float model G.tuned.nir" in printed


def test_verify_with_an_unrelated_graph_is_refused_naming_the_tuned_graph_and_the_original(files, tmp_path, capsys):
    out = tmp_path / "verdict.json"
    assert main(["verify", str(files["other"]), str(files["bundle"]), *VERIFY, "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert (f"the bundle was compiled from G.tuned.nir (sha256 {_sha256(files['tuned'])[:12]}), tuned from G.nir "
            f"(sha256 {_sha256(files['original'])[:12]}), not from other.nir") in err
    assert not out.exists()


def test_an_untuned_bundle_is_verified_as_before(files, tmp_path, capsys):
    bundle = tmp_path / "G.bundle"
    assert main(["compile", str(files["original"]), "-o", str(bundle), *COMPILE]) == 0
    with np.load(bundle, allow_pickle=False) as data:
        manifest = json.loads(str(data["manifest"]))
    assert "tuned_from" not in manifest["source"]  # left out: untuned bundles keep their checksums
    assert bundle_io.load(bundle).source.tuned_from is None
    out = tmp_path / "verdict.json"
    assert main(["verify", str(files["original"]), str(bundle), *VERIFY, "--json", str(out)]) == 0
    assert json.loads(out.read_text())["tuned_graph"] is None
    assert "compared with the" not in capsys.readouterr().out
    # And a graph it was not compiled from is refused as before, without a "tuned from".
    assert main(["verify", str(files["tuned"]), str(bundle), *VERIFY, "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"the bundle was compiled from G.nir (sha256 {_sha256(files['original'])[:12]}), not from G.tuned.nir" in err


def test_tuned_from_round_trips_through_save_and_load(files, tmp_path):
    bundle = bundle_io.load(files["bundle"])
    again = tmp_path / "again.bundle"
    bundle_io.save(bundle, again)
    loaded = bundle_io.load(again)
    assert loaded.source.tuned_from == files["provenance"] and loaded.checksum == bundle.checksum


def test_tuned_from_round_trips_through_its_metadata_string():
    provenance = TunedFrom(nir_file="G.nir", nir_sha256="ab" * 32, data="random:seed=1", settings=SETTINGS)
    assert TunedFrom.from_metadata(provenance.to_metadata()) == provenance


@pytest.mark.parametrize("value, message", [
    ("{not json", "'snn_deploy_tuned_from' is not valid JSON"),
    ("[1, 2]", "'snn_deploy_tuned_from' must be a JSON object, got list"),
    (json.dumps({"nir_file": "G.nir", "nir_sha256": "ab" * 32}), "'snn_deploy_tuned_from' lacks data, settings"),
    (json.dumps({"nir_file": "G.nir", "nir_sha256": "ab" * 32, "data": "d", "settings": {}, "seed": 1}),
     "'snn_deploy_tuned_from' has unknown fields seed"),
    (json.dumps({"nir_file": "G.nir", "nir_sha256": "abc", "data": "d", "settings": {}}),
     "'snn_deploy_tuned_from': nir_sha256 must be 64 lowercase hex digits (or empty: an original graph not read from a file), got 'abc'"),
    (json.dumps({"nir_file": "G.nir", "nir_sha256": "ab" * 32, "data": "d", "settings": {"layers": [1]}}),
     "'snn_deploy_tuned_from': setting 'layers' must be a number, true/false or a string, got [1]"),
])
def test_a_malformed_tuned_from_is_bad_input_at_compile(files, tmp_path, capsys, value, message):
    graph, out = tmp_path / "bad.tuned.nir", tmp_path / "bad.bundle"
    nir.write(graph, _tuned_graph(files["original"], value))
    assert main(["compile", str(graph), "-o", str(out), *COMPILE]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"bad.tuned.nir: graph metadata {message}" in err
    assert not out.exists()
