"""Chip-aware fine-tuning's artifacts: its settings, the record of each epoch, and the tuned graph
(``stages.finetune``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class TuningSettings:
    """How ``finetune`` trains; the defaults are the command line's.

    ``learning_rate`` is relative: each parameter array's Adam step is this fraction of its largest |value|, so
    one rate suits weights of any scale. Adam moves every weight by about that step at once, and 0.1% of noise on
    every gain already flips 8.5% of the Braille graph's decisions (tools/bench/SENSITIVITY.md): the default,
    1e-5, is the rate at which the measured losses fell (at 1e-3 and 1e-4 the first epochs raised them on both
    Braille graphs and tests/test_recommendation.py's close-outputs graph, tools/bench/FINETUNE.md).
    ``decision_weight``: the cross-entropy on the original model's decisions, against the relative squared error of
    its outputs (0: the outputs alone). ``label_weight``: the cross-entropy on the labels where the data have them
    (0: none). ``split_weights``: tune for a --split-weights bundle. ``calibrate``: each epoch is measured as
    ``compile --calibrate`` on the tuning data deploys it (False: as ``compile --calibrate none`` does)."""

    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-5
    decision_weight: float = 1.0
    label_weight: float = 0.1
    seed: int = 0
    split_weights: bool = False
    calibrate: bool = True

    def as_metadata(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EpochRecord:
    """One epoch: its mean training loss (before the epoch's updates for epoch 0: the original weights) and the
    fraction of the tuning data whose decision on the chip (bitsim, these weights compiled) equals the original
    float model's."""

    epoch: int
    loss: float
    chip_agreement: float


@dataclass(frozen=True)
class TuningReport:
    """What fine-tuning did: the data, its samples, the parameters trained (``node.field``) and those kept as
    they are with why, every epoch, and the epoch whose weights were kept (the best chip agreement; ties: the
    earliest, so epoch 0, the original weights, unless an epoch improves on them)."""

    data: str
    samples: int
    trained: tuple[str, ...]
    frozen: tuple[tuple[str, str], ...]
    epochs: tuple[EpochRecord, ...]
    kept_epoch: int

    @property
    def kept(self) -> EpochRecord:
        return self.epochs[self.kept_epoch]


@dataclass(frozen=True)
class TunedGraph:
    """The tuned NIR graph (its metadata says what it was tuned from) and the report."""

    graph: Any  # nir.NIRGraph
    report: TuningReport
