"""The multi-spike and digits checkpoints of the zoo: they load, reproduce their stored accuracies exactly, and say
how they were trained (the digits models are refit on training + validation)."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from snn_deploy.models import data, multispike, train, train_multispike, zoo
from snn_deploy.targets.encoding import PixelLatencyEncoding, encoding_description, encoding_from_description

torch.set_num_threads(1)  # the machine is shared; more threads only contend

NEW_MODELS = {
    # name: (kind, dataset, layer shapes)
    "yinyang-multispike": (zoo.MultiSpikeModel, "yinyang", [(200, 5), (3, 200)]),
    "digits-ttfs": (zoo.TTFSModel, "digits", [(200, 65), (10, 200)]),
    "digits-multispike": (zoo.MultiSpikeModel, "digits", [(200, 65), (10, 200)]),
}


@pytest.mark.parametrize("name", sorted(NEW_MODELS))
def test_checkpoint_reproduces_its_stored_test_accuracy(name):
    kind, dataset, shapes = NEW_MODELS[name]
    model = zoo.load(name)
    assert isinstance(model, kind) and model.name == name and model.dataset == dataset
    assert [w.shape for w in model.weights] == shapes
    assert zoo.accuracy(model, data.load(f"{dataset}:test")) == model.meta["accuracy"]["test"]


@pytest.mark.parametrize("name", ["digits-multispike"])
def test_stored_chip_step_accuracies_reproduce(name):
    model = zoo.load(name)
    stored = model.meta["discrete_test_accuracy"]
    config = train_multispike.MultiSpikeConfig(threshold=model.threshold, n_max=model.n_max, horizon=model.horizon)
    for reset in ("subtract", "zero"):
        measured = train_multispike.discrete_accuracy(model.weights, config, model.encoding,
                                                      data.load(f"{model.dataset}:test"), reset, stored["dt_tau"])
        assert measured == stored[reset]


def test_multispike_checkpoints_state_their_semantics():
    for name in ("yinyang-multispike", "digits-multispike"):
        description = json.loads(zoo.sidecar_path(zoo.zoo_dir() / f"{name}.npz").read_text())
        assert description["kind"] == "multispike"
        assert description["tau_mem"] == 2 * description["tau_syn"]
        assert description["horizon"] == description["meta"]["horizon_tau"]
    assert zoo.load("digits-ttfs").encoding == train.DIGITS_TTFS_ENCODING
    assert zoo.load("digits-multispike").encoding == train.DIGITS_ENCODING


def test_pixel_latency_encoding_brighter_is_earlier_and_blank_is_silent():
    encoding = PixelLatencyEncoding(t_early=0.15, t_late=2.0, t_bias=0.9)
    np.testing.assert_allclose(encoding.encode(np.array([[1.0, 0.5, 0.0]])), [[0.15, 1.075, np.inf, 0.9]])


def test_pixel_latency_encoding_with_blank_spikes_sends_blank_pixels_at_t_late():
    encoding = PixelLatencyEncoding(t_early=0.15, t_late=2.0, t_bias=0.9, blank_spikes=True)
    np.testing.assert_allclose(encoding.encode(np.array([[1.0, 0.5, 0.0]])), [[0.15, 1.075, 2.0, 0.9]])
    assert encoding_from_description(encoding_description(encoding)) == encoding


def test_multispike_model_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(4)
    model = zoo.MultiSpikeModel(
        name="toy-multispike",
        weights=(rng.normal(size=(4, 3)), rng.normal(size=(2, 4))),
        threshold=1.0,
        encoding=PixelLatencyEncoding(t_early=0.1, t_late=1.9, t_bias=0.7),
        dataset="digits",
        meta={"accuracy": {"test": 0.5}},
        n_max=(7, 9),
        horizon=3.5,
    )
    zoo.save(model, tmp_path / "toy.npz")
    loaded = zoo.load(str(tmp_path / "toy.npz"))
    for ours, theirs in zip(loaded.weights, model.weights):
        np.testing.assert_array_equal(ours, theirs)
    assert loaded == zoo.MultiSpikeModel(**{**model.__dict__, "weights": loaded.weights})


def test_a_multispike_checkpoint_of_another_tau_ratio_is_refused(tmp_path):
    """The closed form (models/multispike.py) solves for tau_syn = tau_mem / 2: another ratio would export a graph
    the trained model never was."""
    model = zoo.load("yinyang-multispike")
    zoo.save(dataclasses.replace(model, tau_syn=0.4), tmp_path / "other.npz")
    with pytest.raises(ValueError, match=r"tau_syn / tau_mem is 0\.4; the multi-spike model's closed form is for 0\.5"):
        zoo.load(str(tmp_path / "other.npz"))


def test_short_multispike_training_is_finite_and_deterministic():
    def run():
        return train_multispike.train_digits_multispike(seed=1, epochs=1, progress=False, log=lambda *_: None,
                                                        n_train=100, refit=False)

    first, second = run(), run()
    for ours, theirs in zip(first.weights, second.weights):
        assert np.isfinite(ours).all()
        np.testing.assert_array_equal(ours, theirs)
    assert set(first.meta["accuracy"]) == set(data.SPLITS)
    assert first.meta["trained_on"] == "digits:train" and first.meta["n_train"] == 100
    assert set(first.meta["discrete_test_accuracy"]) == {"dt_tau", "subtract", "zero"}
    assert multispike.predict(zoo.output_spike_times(first, data.digits("test").features[:5])).shape == (5,)


def test_refit_learns_from_training_and_validation_and_keeps_the_last_epoch():
    splits = tuple(data.digits(split) for split in data.SPLITS)
    learned = train.trained_on(splits, refit=True, n_train=None)
    assert learned.name == "digits:train+validation"
    assert len(learned.labels) == len(splits[0].labels) + len(splits[1].labels)
    np.testing.assert_array_equal(learned.features[len(splits[0].labels):], splits[1].features)
    assert train.trained_on(splits, refit=False, n_train=None).features.shape == splits[0].features.shape

    weights = [[np.full(1, float(epoch))] for epoch in range(3)]
    best, last = train.BestEpoch(weights[0]), train.LastEpoch(weights[0])
    for epoch, accuracy in ((1, 0.9), (2, 0.8)):
        best.offer(epoch, weights[epoch], accuracy)
        last.offer(epoch, weights[epoch], accuracy)
    assert (best.epoch, best.weights) == (1, weights[1]) and (last.epoch, last.weights) == (2, weights[2])


@pytest.mark.parametrize("name", ["digits-ttfs", "digits-multispike"])
def test_digits_checkpoints_are_refit_on_training_and_validation(name):
    meta = zoo.load(name).meta
    assert meta["trained_on"] == "digits:train+validation" and meta["kept_epoch"] == "last"
    assert meta["n_train"] == len(data.digits("train").labels) + len(data.digits("validation").labels)
    assert set(meta["accuracy"]) == {"train+validation", "test"}  # no held-out validation figure to state
    trainer_epochs = {"digits-ttfs": train.DIGITS_TTFS_EPOCHS, "digits-multispike": train_multispike.DIGITS_EPOCHS}
    assert meta["epochs"] == trainer_epochs[name]


def test_short_refit_training_states_what_it_learned_from():
    model = train.train_digits_ttfs(seed=1, epochs=1, progress=False, log=lambda *_: None, n_train=100)
    assert model.meta["trained_on"] == "digits:train+validation" and model.meta["kept_epoch"] == "last"
    assert set(model.meta["accuracy"]) == {"train+validation", "test"} and model.meta["epochs"] == 1
