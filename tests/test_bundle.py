"""The bundle file: what a population's reset mode and the decoding become on disk and back."""

import dataclasses
import json

import numpy as np
import pytest

from snn_deploy.targets import bundle as bundle_io
from snn_deploy.targets.bundle import (Bundle, DenseConnection, InputLayer, IntNetwork, LifPopulation,
                                       Placement, Timing)

from helpers import target_fields


def _bundle(reset: str) -> Bundle:
    network = IntNetwork(input=InputLayer("input", 2),
                         populations=(LifPopulation("lif", 2, du=100, dv=50, vth=20, bias_mant=0, reset=reset),),
                         connections=(DenseConnection("dense", "input", "lif", np.full((2, 2), 30)),), output="lif")
    return Bundle(**target_fields("loihi2"), network=network, placement=Placement("loihi2", ()),
                  timing=Timing(dt=1.0, num_steps=10))


def _manifest_populations(path) -> list[dict]:
    with np.load(path, allow_pickle=False) as data:
        return json.loads(str(data["manifest"]))["populations"]


def test_reset_mode_round_trips(tmp_path):
    bundle_io.save(_bundle("subtract"), tmp_path / "b.npz")
    assert bundle_io.load(tmp_path / "b.npz").network.population("lif").reset == "subtract"


def test_zero_reset_is_written_as_before_the_field_existed_and_loads_as_zero(tmp_path):
    # A manifest entry without "reset" is what older bundles hold: they keep loading, checksum intact.
    bundle_io.save(_bundle("zero"), tmp_path / "b.npz")
    assert all("reset" not in entry for entry in _manifest_populations(tmp_path / "b.npz"))
    assert bundle_io.load(tmp_path / "b.npz").network.population("lif").reset == "zero"


def test_an_unknown_reset_mode_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown reset mode 'to_rest'"):
        LifPopulation("lif", 1, du=0, dv=0, vth=1, bias_mant=0, reset="to_rest")


def test_every_decoding_round_trips_and_an_unknown_one_is_refused_by_name(tmp_path):
    from snn_deploy.targets import decision

    for decoding in decision.DECODINGS:
        bundle_io.save(dataclasses.replace(_bundle("zero"), decoding=decoding), tmp_path / "b.npz")
        assert bundle_io.load(tmp_path / "b.npz").decoding == decoding
    with pytest.raises(bundle_io.BundleError, match="decoding must be one of .*, got 'most_spikes'"):
        dataclasses.replace(_bundle("zero"), decoding="most_spikes")


def test_latency_steps_round_trip(tmp_path):
    for latency in (0, 2):
        bundle = dataclasses.replace(_bundle("zero"), timing=Timing(dt=1.0, num_steps=12, latency_steps=latency))
        bundle_io.save(bundle, tmp_path / "b.npz")
        loaded = bundle_io.load(tmp_path / "b.npz")
        assert loaded.timing.latency_steps == latency and loaded.checksum == bundle.checksum
