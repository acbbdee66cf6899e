"""Tolerances: from options, from a small TOML file next to the model, or the defaults.

The file, for ``models/yy.nir``, is the first of
    models/yy.tolerances.toml      (this model only)
    models/snn-deploy.toml         (every model in the folder)
that exists; only that one file is read. Every key is optional:

    max_accuracy_drop = 0.01        # float accuracy - chip accuracy, in [0, 1]
    min_agreement = 0.98            # fraction of samples where chip and float decide alike, in [0, 1]
    max_hardware_events = 0         # 24-bit current wraps over the whole run
    [max_spike_time_error_steps]
    p95 = 2.0                       # per layer, |chip - float| first-spike time, in chip steps

Precedence: an option given > the file > the defaults of ``Tolerances``. An unknown key or a
bad value is a DeployError naming the file and the key. The tolerances state where each value came
from (``Tolerances.origins``): the default, the file (its path) or the option (as it was spelled).

``checks`` applies tolerances to a verdict's metrics one by one, measured against allowed, for
messages that show what exceeded which tolerance.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

if sys.version_info >= (3, 11):
    import tomllib
else:  # the Lava worker runs on Python 3.10
    import tomli as tomllib

from ..artifacts.tolerances import DEFAULT, FILE, OPTION, ToleranceOrigin, Tolerances
from ..artifacts.verdict import Metrics
from ..errors import DeployError


FOLDER_FILE = "snn-deploy.toml"
MODEL_FILE_SUFFIX = ".tolerances.toml"
SPIKE_TIME_TABLE = "max_spike_time_error_steps"


def _fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError("must be a number in [0, 1]")
    return float(value)


def _steps(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
        raise ValueError("must be a number of steps >= 0")
    return float(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("must be a whole number >= 0")
    return value


# Each field of Tolerances, with the name it has in the file and the check of its value.
FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "max_accuracy_drop": ("max_accuracy_drop", _fraction),
    "min_agreement": ("min_agreement", _fraction),
    "max_spike_time_error_p95": (f"{SPIKE_TIME_TABLE}.p95", _steps),
    "max_hardware_events": ("max_hardware_events", _count),
}
_FIELD_OF_FILE_KEY = {file_key: field for field, (file_key, _) in FIELDS.items()}


def tolerance_file(nir_path: str | Path) -> Path | None:
    """The tolerance file that applies to ``nir_path``, or None."""
    nir_path = Path(nir_path)
    for candidate in (nir_path.with_name(nir_path.stem + MODEL_FILE_SUFFIX), nir_path.with_name(FOLDER_FILE)):
        if candidate.is_file():
            return candidate
    return None


def dotted(table: dict, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}: nested tables as dotted keys, as TOML can write them."""
    flat = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _validated(values: dict[str, Any], where: str, names: dict[str, str]) -> dict[str, Any]:
    """Check each value by its field's rule; ``names`` maps a field to how ``where`` spells it."""
    checked = {}
    for field, value in values.items():
        try:
            checked[field] = FIELDS[field][1](value)
        except ValueError as exc:
            raise DeployError(f"{where}: {names[field]} {exc}, got {value!r}") from None
    return checked


def read_tolerance_file(path: str | Path) -> dict[str, Any]:
    """The tolerances a file sets, by ``Tolerances`` field name."""
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DeployError(f"{path}: cannot read the tolerance file ({exc.__class__.__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise DeployError(f"{path}: not valid TOML ({exc})") from None
    flat = dotted(table)
    unknown = [key for key in flat if key not in _FIELD_OF_FILE_KEY]
    if unknown:
        raise DeployError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(_FIELD_OF_FILE_KEY)})")
    return _validated({_FIELD_OF_FILE_KEY[key]: value for key, value in flat.items()}, str(path),
                      {field: file_key for field, (file_key, _) in FIELDS.items()})


def keyword(field: str) -> str:
    """How a tolerance is spelled as a Python keyword (``verify(tolerances={...})``, ``snn_verify(...)``)."""
    return f"{field}="


def load_tolerances(nir_path: str | Path | None, overrides: dict[str, Any] | None = None,
                    spelled: Callable[[str], str] = keyword) -> Tolerances:
    """The tolerances for the model at ``nir_path`` (None: a model without a file, e.g. a graph in memory):
    ``overrides`` (by field name; None = not given) over its tolerance file over the defaults, with where each
    came from; ``spelled`` says how the caller's options are written (the command line: ``--min-agreement``)."""
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    unknown = [key for key in given if key not in FIELDS]
    if unknown:
        raise DeployError(f"unknown tolerance {unknown[0]!r} (known: {', '.join(FIELDS)})")
    path = tolerance_file(nir_path) if nir_path is not None else None
    from_file = read_tolerance_file(path) if path else {}
    options = _validated(given, "tolerance option", {field: field for field in FIELDS})
    origins = {field: (ToleranceOrigin(OPTION, spelled(field)) if field in options
                       else ToleranceOrigin(FILE, str(path)) if field in from_file else ToleranceOrigin(DEFAULT))
               for field in FIELDS}
    return Tolerances(**{**from_file, **options}, origins=origins)


def origin(tolerances: Tolerances, field: str) -> ToleranceOrigin:
    """Where one tolerance came from. A Tolerances built in code states no origins: a value there is the
    default when it equals it, else given in code."""
    if field in tolerances.origins:
        return tolerances.origins[field]
    if getattr(tolerances, field) == getattr(Tolerances(), field):
        return ToleranceOrigin(DEFAULT)
    return ToleranceOrigin(OPTION, f"Tolerances({field}=)")


def _of_samples(fraction: float, samples: int) -> Fraction:
    """A fraction of ``samples`` samples (an accuracy, an agreement), exactly: count / samples."""
    return Fraction(round(fraction * samples), samples)


@dataclass(frozen=True)
class Check:
    """One tolerance applied to one measurement."""

    tolerance: str  # the Tolerances field
    subject: str  # what was measured
    measured: float
    allowed: float
    at_least: bool  # ``allowed`` is a minimum (else a maximum)
    failure: str  # the verdict's failure line, for when it is exceeded
    # A measurement that counts samples, as the exact fraction it is. A drop of one sample in 100
    # is 0.5 - 0.49 = 0.010000000000000009 in floats, above a max_accuracy_drop of 0.01; so it is
    # compared as 1/100 against the tolerance as the decimal it is written as (Fraction of its
    # shortest repr: 0.01 is 1/100), exactly.
    exact: Fraction | None = None

    @property
    def passed(self) -> bool:
        measured, allowed = ((self.exact, Fraction(repr(float(self.allowed)))) if self.exact is not None
                             else (self.measured, self.allowed))
        return measured >= allowed if self.at_least else measured <= allowed


def checks(metrics: Metrics, tolerances: Tolerances) -> list[Check]:
    """Every tolerance applied to a verdict's metrics, in the order of the verdict's failures."""
    tol = tolerances
    agreement, samples = metrics.agreement, metrics.samples
    result = []
    if metrics.accuracy is not None:  # unlabelled input spike trains have no accuracy
        accuracy = metrics.accuracy
        drop = accuracy.float - accuracy.chip
        result.append(Check("max_accuracy_drop", "accuracy drop (float - chip)", drop, tol.max_accuracy_drop, False,
                            f"accuracy drop {drop:.4f} > max_accuracy_drop {tol.max_accuracy_drop}",
                            _of_samples(accuracy.float, samples) - _of_samples(accuracy.chip, samples)))
    result.append(Check("min_agreement", "agreement (chip vs float decisions)", agreement, tol.min_agreement, True,
                        f"agreement {agreement:.4f} < min_agreement {tol.min_agreement}",
                        _of_samples(agreement, samples)))
    if tol.max_spike_time_error_p95 is not None:
        for layer, stats in metrics.spike_time_error_steps.items():
            if stats.p95 is not None:
                result.append(Check(
                    "max_spike_time_error_p95", f"layer {layer}: spike-time error p95 (steps)", stats.p95,
                    tol.max_spike_time_error_p95, False,
                    f"layer {layer}: spike-time error p95 {stats.p95:.2f} steps > "
                    f"max_spike_time_error_p95 {tol.max_spike_time_error_p95}"))
    wraps = sum(events.current_wraps for events in metrics.hardware_events.values())
    result.append(Check("max_hardware_events", "current wraps", wraps, tol.max_hardware_events, False,
                        f"{wraps} current wraps > max_hardware_events {tol.max_hardware_events}"))
    if metrics.readout is not None:  # a readout that fired: its membrane was reset, past its compiled bound
        fired = metrics.readout.readout_spikes
        result.append(Check("max_hardware_events", f"readout {metrics.readout.layer}: spikes", fired,
                            tol.max_hardware_events, False,
                            f"readout {metrics.readout.layer} fired {fired} times on the chip > max_hardware_events "
                            f"{tol.max_hardware_events}"))
    return result
