"""Model zoo: the committed checkpoint, the file format, and a short training run."""

import json

import numpy as np
import pytest

from snn_deploy.models import data, train, zoo
from snn_deploy.targets.encoding import TTFSEncoding


def test_committed_checkpoint_reproduces_its_stored_accuracies():
    model = zoo.load("yinyang-ttfs")
    assert model.name == "yinyang-ttfs" and model.dataset == "yinyang"
    assert [w.shape for w in model.weights] == [(120, 5), (3, 120)]
    for split in data.SPLITS:
        assert zoo.accuracy(model, data.yinyang(split)) == model.meta["accuracy"][split]
    assert model.meta["accuracy"]["test"] >= 0.955
    test_out = zoo.output_spike_times(model, data.yinyang("test").features)
    assert train.near_tie_fraction(test_out) == model.meta["test_near_tie_fraction"]


def test_committed_checkpoint_is_listed_and_loads_by_path():
    assert "yinyang-ttfs" in zoo.names()
    by_path = zoo.load(str(zoo.zoo_dir() / "yinyang-ttfs.npz"))
    by_name = zoo.load("yinyang-ttfs")
    for ours, theirs in zip(by_path.weights, by_name.weights):
        np.testing.assert_array_equal(ours, theirs)


def _toy_model() -> zoo.TTFSModel:
    rng = np.random.default_rng(3)
    return zoo.TTFSModel(
        name="toy",
        weights=(rng.normal(size=(4, 3)), rng.normal(size=(2, 4))),
        threshold=1.0,
        encoding=TTFSEncoding(t_early=0.1, t_late=1.9, t_bias=0.7),
        dataset="yinyang",
        meta={"accuracy": {"test": 0.123456789}, "note": "round trip"},
    )


def test_save_load_round_trip_is_exact(tmp_path):
    model = _toy_model()
    path = tmp_path / "toy.npz"
    zoo.save(model, path)
    loaded = zoo.load(str(path))
    assert len(loaded.weights) == len(model.weights)
    for ours, theirs in zip(loaded.weights, model.weights):
        np.testing.assert_array_equal(ours, theirs)
        assert ours.dtype == np.float64
    assert (loaded.name, loaded.threshold, loaded.encoding, loaded.dataset, loaded.meta) == (
        model.name,
        model.threshold,
        model.encoding,
        model.dataset,
        model.meta,
    )
    # Plain arrays only, and nothing but the two files is left behind.
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["weight_0", "weight_1"]
    assert json.loads((tmp_path / "toy.json").read_text())["name"] == "toy"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy.json", "toy.npz"]


def test_unknown_name_lists_the_zoo():
    with pytest.raises(ValueError, match="yinyang-ttfs"):
        zoo.load("no-such-model")


def test_missing_or_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="absent.npz"):
        zoo.load(str(tmp_path / "absent.npz"))
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip archive")
    (tmp_path / "corrupt.json").write_text(json.dumps({"n_layers": 1}))
    with pytest.raises(ValueError, match="corrupt.npz"):
        zoo.load(str(corrupt))


def test_short_training_run_is_finite_and_deterministic():
    def run():
        return train.train_yinyang_ttfs(seed=1, epochs=2, progress=False, log=lambda *_: None, n_train=300)

    first, second = run(), run()
    assert [w.shape for w in first.weights] == [(120, 5), (3, 120)]
    assert all(np.isfinite(w).all() for w in first.weights)
    for ours, theirs in zip(first.weights, second.weights):
        np.testing.assert_array_equal(ours, theirs)
    assert set(first.meta["accuracy"]) == set(data.SPLITS)


def test_trained_model_round_trips_with_its_meta(tmp_path):
    model = train.train_yinyang_ttfs(seed=2, epochs=1, progress=False, log=lambda *_: None, n_train=150)
    zoo.save(model, tmp_path / "tiny.npz")
    assert zoo.load(str(tmp_path / "tiny.npz")).meta == model.meta
