"""The networks of the compile-time benchmark: one square dense layer per size, 10^4 to 10^7
synapses (random weights, TTFS semantics). ``bench.py --only compile`` times them.
"""

from __future__ import annotations

import math

import numpy as np

from snn_deploy.deploy.artifacts.network import FloatLayer, FloatNetwork, Projection
from snn_deploy.deploy.artifacts.semantics import Semantics

SIZES = (10**4, 10**5, 10**6, 10**7)
DT = 1 / 64  # a fixed time step (tau units): compile time does not depend on it


def dense_layer_network(synapses: int, seed: int = 0) -> FloatNetwork:
    side = int(round(math.sqrt(synapses)))
    weight = np.random.default_rng(seed).normal(0.5, 0.8, (side, side))
    ones = np.ones(side)
    projection = Projection(source="input", nodes=("fc",), weight=weight, bias=np.zeros(side))
    layer = FloatLayer(name="lif", projections=(projection,), tau_syn=ones, tau_mem=ones, r=ones, w_in=ones,
                       v_leak=np.zeros(side), v_threshold=ones, v_reset=np.zeros(side))
    semantics = Semantics(time_unit="tau", fire_once=True, reset="zero", decoding="first_spike", horizon=4.0,
                          encoding={"kind": "ttfs_linear", "t_early": 0.15, "t_late": 2.0, "bias_times": []})
    return FloatNetwork(input_name="input", input_size=side, layers=(layer,), output="lif", semantics=semantics)
