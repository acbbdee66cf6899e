"""run: a bundle and a stimulus -> the spike record of a back end (bitsim, lava, loihi2), which carries the
stimulus's data selection; and the checks a stored record must pass before it stands in for a run."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from ...targets import backends
from ...targets.bundle import Bundle
from ...targets.record import SpikeRecord
from ..artifacts.stimulus import Stimulus
from ..errors import DeployError


def run(bundle: Bundle, stimulus: Stimulus, *, backend: str = "bitsim", record_state: bool = False,
        progress: Callable[[int], None] | None = None) -> SpikeRecord:
    """Every sample of the stimulus through the bundle on ``backend``."""
    try:
        module = backends.get(backend, bundle)
    except ValueError as exc:
        raise DeployError(str(exc)) from None
    record = module.run(bundle, stimulus.inputs, record_state=record_state, progress=progress)
    return replace(record, selection=stimulus.selection)


def check_replay(record: SpikeRecord, bundle: Bundle, stimulus: Stimulus, origin: str = "the record") -> SpikeRecord:
    """A stored record stands in for a run only if it came from this bundle and this very data selection."""
    if record.bundle_checksum != bundle.checksum:
        raise DeployError(f"{origin} was recorded from a different bundle (checksum {record.bundle_checksum[:12]}, "
                          f"this bundle {bundle.checksum[:12]}); refusing to replay it")
    populations = {pop.name: pop.size for pop in bundle.network.populations}
    recorded = {name: events.size for name, events in record.spikes.items()}
    if recorded != populations or record.num_steps != bundle.timing.num_steps:
        raise DeployError(f"{origin} records populations {recorded} over {record.num_steps} steps; the bundle has "
                          f"{populations} over {bundle.timing.num_steps}")
    if record.selection != stimulus.selection:
        recorded = record.selection or "no data selection"
        raise DeployError(f"{origin} was recorded on {recorded}, not on {stimulus.selection} "
                          "(replay it with the --data and --samples of its run)")
    return record
