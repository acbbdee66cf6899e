"""quantize: the discrete network -> the chip's integers. Each rounding stays within its stated bound."""

import numpy as np
import pytest

from snn_deploy.deploy import load_graph
from snn_deploy.deploy.stages.discretize import discretize
from snn_deploy.deploy.stages.export import export
from snn_deploy.deploy.stages.quantize import SPLIT_LOW_PART, quantize
from snn_deploy.targets import description

from helpers import random_ttfs_model

DT = 1 / 128


@pytest.fixture(scope="module")
def discrete(tmp_path_factory):
    path = tmp_path_factory.mktemp("quantize") / "m.nir"
    export(random_ttfs_model(seed=3, hidden=12), path)
    return discretize(load_graph(path), DT)


def _realized(quantized, layer: str) -> dict[str, np.ndarray]:
    """Per source, the weights the chip applies, in units of the neuron's own threshold (vth << 6 = 1)."""
    pop = quantized.network.population(layer)
    realized = {}
    for conn in quantized.network.connections:
        if conn.target == layer:
            source = conn.source
            part = conn.weights.astype(np.float64) * 2.0 ** (6 + conn.weight_exp) / (pop.vth[:, None] * 64.0)
            realized[source] = realized.get(source, 0) + part
    return realized


def test_weights_relative_to_the_threshold_are_within_half_a_mantissa_step(discrete):
    quantized = quantize(discrete, description.load("loihi2"))
    for disc in discrete.populations:
        pop = quantized.network.population(disc.name)
        realized = _realized(quantized, disc.name)
        for source, gain in disc.inputs:
            (conn,) = [c for c in quantized.network.connections if c.target == disc.name and c.source == source]
            exact = gain / disc.threshold[:, None]
            # Mixed-sign 8-bit blocks hold even mantissas: their step is 2, half of it 1.
            half_step = 1.0 if np.any(conn.weights < 0) and np.any(conn.weights > 0) else 0.5
            bound = half_step * 2.0 ** (6 + conn.weight_exp) / (pop.vth[:, None] * 64.0)
            assert np.all(np.abs(realized[source] - exact) <= bound * (1 + 1e-12)), (disc.name, source)
            if half_step == 1.0:
                assert np.all(conn.weights % 2 == 0)


def test_decays_are_lavas_offsets_of_the_discrete_factors(discrete):
    quantized = quantize(discrete, description.load("loihi2"))
    for disc in discrete.populations:
        pop = quantized.network.population(disc.name)
        if disc.bias_source:
            continue
        np.testing.assert_array_equal(pop.du, np.clip(np.rint(4096 * (1 - disc.alpha_u)) - 1, 0, 4095))
        np.testing.assert_array_equal(pop.dv, np.clip(np.rint(4096 * (1 - disc.alpha_v)), 0, 4095))


def test_split_weights_are_within_half_a_step_of_their_low_part(discrete):
    loihi2 = description.load("loihi2")
    plain, split = quantize(discrete, loihi2), quantize(discrete, loihi2, split_weights=True)
    assert any(c.name.endswith(SPLIT_LOW_PART) for c in split.network.connections)
    for disc in discrete.populations:
        pop = split.network.population(disc.name)
        for source, gain in disc.inputs:
            exact = gain / disc.threshold[:, None]
            parts = [c for c in split.network.connections if c.target == disc.name and c.source == source]
            finest = min(parts, key=lambda c: c.weight_exp)
            mixed = np.any(finest.weights < 0) and np.any(finest.weights > 0)
            bound = (1.0 if mixed else 0.5) * 2.0 ** (6 + finest.weight_exp) / (pop.vth[:, None] * 64.0)
            error_split = np.abs(_realized(split, disc.name)[source] - exact)
            assert np.all(error_split <= bound * (1 + 1e-12)), (disc.name, source)
            assert error_split.max() < np.abs(_realized(plain, disc.name)[source] - exact).max()
    assert split.report[discrete.output].split_weights and not plain.report[discrete.output].split_weights
