"""Small builders shared by the tests."""

import numpy as np

from snn_deploy.models.ttfs import TTFSEncoding
from snn_deploy.models.zoo import TTFSModel


def random_ttfs_model(seed: int = 0, hidden: int = 20) -> TTFSModel:
    """A Yin-Yang-shaped TTFS model with Fast & Deep's initial weight statistics (untrained)."""
    rng = np.random.RandomState(seed)
    weights = (rng.normal(1.5, 0.8, (hidden, 5)), rng.normal(0.5, 0.8, (3, hidden)))
    return TTFSModel(name="random", weights=weights, threshold=1.0, encoding=TTFSEncoding(), dataset="yinyang",
                     meta={})
