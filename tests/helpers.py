"""Small builders shared by the tests."""

import hashlib
import re
from pathlib import Path

import numpy as np

from snn_deploy.targets.encoding import TTFSEncoding
from snn_deploy.models.zoo import TTFSModel
from snn_deploy.targets import bitsim, description, lava
from snn_deploy.targets.bundle import Bundle
from snn_deploy.targets.record import SpikeEvents, SpikeRecord


def edited_target(folder: Path, substitutions: list[tuple[str, str]], base: str = "loihi1") -> Path:
    """A copy of a shipped target file in ``folder`` with each (line pattern, replacement) applied once."""
    text = (description.TARGET_DIR / f"{base}.toml").read_text()
    for pattern, replacement in substitutions:
        text, count = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE)
        assert count == 1, pattern
    path = folder / "edited.toml"
    path.write_text(text)
    return path


def target_fields(name: str = "loihi2") -> dict:
    """The fields a bundle takes from its target: its name, arithmetic widths and back ends."""
    target = description.load(name)
    return {"target": target.name, "widths": target.widths, "backends": target.backends}


def random_ttfs_model(seed: int = 0, hidden: int = 20) -> TTFSModel:
    """A Yin-Yang-shaped TTFS model with Fast & Deep's initial weight statistics (untrained)."""
    rng = np.random.RandomState(seed)
    weights = (rng.normal(1.5, 0.8, (hidden, 5)), rng.normal(0.5, 0.8, (3, hidden)))
    return TTFSModel(name="random", weights=weights, threshold=1.0, encoding=TTFSEncoding(), dataset="yinyang",
                     meta={})


def assert_records_equal(expected: SpikeRecord, actual: SpikeRecord, context: str = "") -> None:
    """Every spike, every trace value and every counter equal, population by population."""
    assert (actual.num_samples, actual.num_steps) == (expected.num_samples, expected.num_steps)
    assert actual.spikes.keys() == expected.spikes.keys()
    for name, events in expected.spikes.items():
        np.testing.assert_array_equal(actual.spikes[name].events, events.events,
                                      err_msg=f"spikes of {name} {context}")
        assert actual.counters[name] == expected.counters[name], f"counters of {name} {context}"
        for key, trace in expected.traces.get(name, {}).items():
            np.testing.assert_array_equal(actual.traces[name][key], trace, err_msg=f"{key} of {name} {context}")


def assert_lava_matches_bitsim(bundle: Bundle, inputs: SpikeEvents, *, record_state: bool = True,
                               context: str = "") -> tuple[SpikeRecord, SpikeRecord]:
    """Run both back ends on the same bundle and inputs; return (bitsim's, Lava's) equal records."""
    expected = bitsim.run(bundle, inputs, record_state=record_state)
    actual = lava.run(bundle, inputs, record_state=record_state)
    assert actual.backend == "lava" and actual.bundle_checksum == bundle.checksum
    assert_records_equal(expected, actual, context)
    return expected, actual


def snapshot(*folders: Path) -> dict:
    """Every file and folder below ``folders`` (hidden temp files too), with each file's sha256: equal
    snapshots mean nothing was created, deleted or changed."""
    return {path: hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder"
            for folder in folders for path in sorted(folder.rglob("*"))}
