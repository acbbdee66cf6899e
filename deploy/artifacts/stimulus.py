"""The stimulus: what a run is fed (the artifact ``stages.stimulus`` returns), and how the user's data became it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...targets.record import SpikeEvents


@dataclass(frozen=True)
class DataOptions:
    """How the user's data are read onto a bundle's input (the command line's ``--labels``, ``--data-root``,
    ``--time-scale`` and ``--downsample``; None: not given).

    ``labels``: one integer class per sample: a ``.npy`` file, a ``.npz`` holding one array or an array
    ``labels``, or from Python an array or a sequence.
    ``data_root``: the folder holding a tonic data set (``nmnist:test``, ``shd:test``, ...).
    ``time_scale``: the recording's seconds per network time unit, for time-stamped events.
    ``downsample``: the (width, height) a larger sensor is reduced to (tonic's Downsample)."""

    labels: str | Path | np.ndarray | Sequence[int] | None = None
    data_root: str | Path | None = None
    time_scale: float | None = None
    downsample: tuple[int, int] | None = None

    def given(self) -> dict[str, Any]:
        """The options given (not None), by their command-line names: each field's, dashed (``--data-root``)."""
        return {f"--{field.name.replace('_', '-')}": getattr(self, field.name) for field in fields(self)
                if getattr(self, field.name) is not None}


@dataclass(frozen=True)
class DataReport:
    """What reading the user's data did to it, stated in the output and in the verdict: nothing is dropped
    unsaid.

    ``time_mapping``: how recording time became chip steps, one line. ``time_scale``: the recording's seconds
    per network time unit (None where the data come in steps). ``events``: input events read;
    ``cropped_events``: of them, those after the run's input steps (dropped); ``merged_events``: those
    falling on a channel in a step that already had one (the chip's input carries one spike per channel
    and step); ``empty_samples``: samples left without any input spike; ``data_steps``: the steps the data have
    (a raster's; None where their length is unstated, as for events), padded with silence or cropped to the
    run's ``input_steps``."""

    source: str
    time_mapping: str
    time_scale: float | None
    time_scale_given: bool
    input_steps: int
    events: int
    cropped_events: int
    merged_events: int
    empty_samples: int
    downsample: tuple[int, int] | None = None
    data_steps: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Stimulus:
    """What a run is fed: input spikes in chip steps, with the data set's labels and continuous input spike
    times where the data come from a labelled data set (None for random spike trains and for spike data).

    ``selection`` says exactly which samples these are, canonically (e.g. "yinyang:test samples 0-999",
    "random:rate=0.05,seed=1 samples 0-99"): a spike record carries it, so that a replay of the record
    against any other selection is refused. ``report`` says how the user's data were read (None for the
    shipped data sets and random spike trains)."""

    name: str
    inputs: SpikeEvents
    labels: np.ndarray | None = None
    times: np.ndarray | None = None
    selection: str = ""
    report: DataReport | None = None

    @property
    def num_samples(self) -> int:
        return self.inputs.num_samples

    @property
    def labelled(self) -> bool:
        return self.labels is not None


@dataclass(frozen=True)
class DataSpec:
    """Data named by a spec that each worker of a split verification loads its own samples of
    (``stages.stimulus.load_stimulus_part``): a shipped data set split ("yinyang:test"), seeded random spike
    trains ("random:rate=0.05,seed=0"), a file of the user's (.npz, NIR data; its absolute path: a worker on
    another machine needs it at the same path) or a tonic data set in a folder ("nmnist:test" with
    ``options.data_root``). No input spikes are held: what is shipped to a worker is this, and a sample range.

    ``data``: the spec; ``samples``: --samples as given (None: the default); ``options``: how the data are
    read; ``num_samples``: the samples it selects; ``name``: the stimulus's name, as ``load_stimulus`` gives
    it; ``labelled``: whether the data have labels. ``report`` is None: how the user's data were read is
    known once the workers have read them (their parts' reports, added up)."""

    data: str
    samples: int | None
    options: DataOptions
    num_samples: int
    name: str
    labelled: bool
    report: DataReport | None = None
