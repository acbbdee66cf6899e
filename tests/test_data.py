"""Data sets: the Yin-Yang splits reproduce the published generator, digits splits are fixed and stratified."""

import numpy as np
import pytest

from snn_deploy.models import data


def test_yinyang_train_reproduces_the_original_rng_order():
    train = data.load("yinyang:train")
    assert train.features.shape == (5000, 4) and train.features.dtype == np.float64
    # Class counts of the published train split (seed 42): any change in the order of RNG calls changes them.
    np.testing.assert_array_equal(np.bincount(train.labels), [1681, 1702, 1617])


def test_yinyang_features_and_labels_are_consistent():
    for split, size in [("validation", 1000), ("test", 1000)]:
        dataset = data.yinyang(split)
        assert dataset.name == f"yinyang:{split}" and dataset.n_classes == 3
        assert len(dataset.labels) == size and dataset.labels.dtype == np.int64
        x, y = dataset.features[:, 0], dataset.features[:, 1]
        np.testing.assert_allclose(dataset.features[:, 2:], 1.0 - dataset.features[:, :2])
        assert np.all(np.hypot(x - 0.5, y - 0.5) <= 0.5)
        assert [data.yinyang_class(a, b) for a, b in zip(x, y)] == dataset.labels.tolist()


def test_yinyang_class_regions():
    assert data.yinyang_class(0.75, 0.5) == 2  # centre of the right dot
    assert data.yinyang_class(0.25, 0.5) == 2  # centre of the left dot
    assert data.yinyang_class(0.25, 0.66) == 1  # inside the left lobe, outside its dot
    assert data.yinyang_class(0.75, 0.34) == 0  # inside the right lobe, outside its dot
    assert data.yinyang_class(0.5, 0.95) == 1  # top half, far from the right dot
    assert data.yinyang_class(0.5, 0.05) == 0  # bottom half


def test_splits_are_deterministic():
    np.testing.assert_array_equal(data.load("yinyang:test").features, data.load("yinyang:test").features)
    np.testing.assert_array_equal(data.load("digits:test").labels, data.load("digits:test").labels)


def test_digits_splits_partition_the_data_stratified():
    splits = {split: data.digits(split) for split in data.SPLITS}
    assert [len(splits[s].labels) for s in data.SPLITS] == [1257, 180, 360]
    for dataset in splits.values():
        assert dataset.features.shape[1] == 64 and dataset.n_classes == 10
        assert dataset.features.min() >= 0.0 and dataset.features.max() <= 1.0
    # Stratified: every class appears in every split, validation exactly 18 per class.
    np.testing.assert_array_equal(np.bincount(splits["validation"].labels), [18] * 10)
    assert np.all(np.bincount(splits["test"].labels, minlength=10) >= 35)
    # Together the splits are exactly the 1797 images, each used once.
    from sklearn.datasets import load_digits

    rows = np.concatenate([splits[s].features for s in data.SPLITS])
    everything = load_digits().data / 16.0
    assert rows.shape == everything.shape
    ours = np.unique(rows, axis=0, return_counts=True)
    reference = np.unique(everything, axis=0, return_counts=True)
    for our_part, reference_part in zip(ours, reference):
        np.testing.assert_array_equal(our_part, reference_part)


@pytest.mark.parametrize("spec", ["mnist:train", "yinyang:dev", "yinyang", "digits:"])
def test_unknown_spec_lists_known_sets(spec):
    with pytest.raises(ValueError, match="yinyang, digits, eventdigits with splits train, validation, test"):
        data.load(spec)
