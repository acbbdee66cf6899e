"""run: a bundle and a stimulus -> the spike record of a back end (bitsim, lava, loihi2), which carries the
stimulus's data selection; and the checks a stored record must pass before it stands in for a run."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from ...targets import backends, bitsim
from ...targets.bundle import Bundle
from ...targets.record import SpikeEvents, SpikeRecord
from ..artifacts.stimulus import Stimulus
from ..errors import DeployError


def run(bundle: Bundle, stimulus: Stimulus, *, backend: str = "bitsim", record_state: bool = False,
        progress: Callable[[int], None] | None = None, engine: str | None = None) -> SpikeRecord:
    """Every sample of the stimulus through the bundle on ``backend``."""
    record = run_inputs(bundle, stimulus.inputs, backend=backend, engine=engine, record_state=record_state,
                        progress=progress)
    return replace(record, selection=stimulus.selection)


def run_inputs(bundle: Bundle, inputs: SpikeEvents, *, backend: str = "bitsim", engine: str | None = None,
               record_state: bool = False, progress: Callable[[int], None] | None = None) -> SpikeRecord:
    """Input spikes through the bundle on ``backend``. ``engine`` picks bitsim's engine ("compiled" or
    "reference"; None: its default); the other back ends have none and refuse one."""
    try:
        module = backends.get(backend, bundle)
    except ValueError as exc:
        raise DeployError(str(exc)) from None
    if engine is None:
        return module.run(bundle, inputs, record_state=record_state, progress=progress)
    if backend != bitsim.BACKEND:
        raise DeployError(f"the {backend} back end has no engines to choose from; --engine applies to bitsim only")
    try:
        bitsim.check_engine(engine)
    except ValueError as exc:
        raise DeployError(str(exc)) from None
    return module.run(bundle, inputs, record_state=record_state, progress=progress, engine=engine)


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
