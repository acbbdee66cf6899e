"""Target descriptions: one TOML file per target, every number with its source.

A user adds a target by dropping a ``<name>.toml`` next to these (or passing a path): no code
changes. The compiler reads limits and bit widths from here, the placer the core budgets and the
mesh, the energy model the per-operation costs.

A file must state every key in ``REQUIRED`` (``load`` names the file and the first key missing or
malformed). Kinds of values:
  count    a positive integer;
  integer  any integer;
  pair     two positive integers, e.g. the mesh [tiles east-west, tiles north-south];
  cost     a non-negative number, or a table {low, nominal, high} of them when the source gives
           only a range (low <= nominal <= high);
  resets   a non-empty list of reset modes from ``fixed_point.RESET_MODES``.
Optional: ``[core] max_input_axons`` and ``max_output_axons`` (checked only when present),
``[neuron] reset_modes`` (without it a target has only the zero reset of the fixed CUBA LIF),
``[[boards]]`` entries ``{name, chips}``, and the synapse encodings ``[synapse_memory.dense]`` and
``[synapse_memory.sparse]`` (at least one; sparse takes ``index_bits = [min, max]``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # the Lava worker runs on Python 3.10
    import tomli as tomllib

from .fixed_point import RESET_MODES, RESET_ZERO

TARGET_DIR = Path(__file__).resolve().parent

# The per-event costs every target states: in [energy] as <key>_pj, in [latency] as <key>_ns.
COSTS = ("synaptic_op", "neuron_update_active", "neuron_update_inactive", "spike_message", "hop_east_west",
         "hop_north_south")

REQUIRED: dict[str, dict[str, str]] = {
    "chip": {"neuro_cores": "count", "mesh": "pair", "cores_per_tile": "count"},
    "core": {"max_neurons": "count", "synapse_memory_bytes": "count"},
    "neuron": {"state_bits": "count", "threshold_bits": "count"},
    "synapse": {"weight_bits": "count", "weight_exp_min": "integer", "weight_exp_max": "integer"},
    "synapse_memory": {"word_bits": "count", "group_synapses": "count", "group_header_bits": "count"},
    "energy": {**{f"{key}_pj": "cost" for key in COSTS}, "static_power_w": "cost"},
    "latency": {**{f"{key}_ns": "cost" for key in COSTS}, "barrier_ns": "cost"},
}
OPTIONAL: dict[str, dict[str, str]] = {"core": {"max_input_axons": "count", "max_output_axons": "count"},
                                        "neuron": {"reset_modes": "resets"}}
ENCODINGS = ("dense", "sparse")


class TargetError(ValueError):
    """An unknown target or a malformed description file."""


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    spec: dict[str, Any]
    path: Path

    def value(self, section: str, key: str):
        try:
            return self.spec[section][key]
        except KeyError:
            raise TargetError(f"target {self.name} ({self.path}) has no [{section}] {key}") from None

    def optional(self, section: str, key: str):
        """The value, or None where the target does not state this limit."""
        return self.spec.get(section, {}).get(key)

    def cost(self, section: str, key: str) -> tuple[float, float, float]:
        """(low, nominal, high) of a cost; a single published number is all three."""
        value = self.value(section, key)
        if isinstance(value, dict):
            return float(value["low"]), float(value["nominal"]), float(value["high"])
        return float(value), float(value), float(value)

    @property
    def reset_modes(self) -> tuple[str, ...]:
        """How this target's neurons can reset after a spike (fixed_point.RESET_MODES)."""
        return tuple(self.optional("neuron", "reset_modes") or (RESET_ZERO,))

    @property
    def boards(self) -> list[tuple[str, int]]:
        """(name, chips) of the multi-chip boards and systems, smallest first."""
        return sorted(((b["name"], int(b["chips"])) for b in self.spec.get("boards", [])), key=lambda b: b[1])


def names() -> list[str]:
    return sorted(p.stem for p in TARGET_DIR.glob("*.toml"))


def load(name_or_path: str) -> Target:
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = TARGET_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            raise TargetError(f"unknown target {name_or_path!r}; known targets: {', '.join(names())}")
    if not path.is_file():
        raise TargetError(f"target file not found: {path}")
    try:
        spec = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TargetError(f"{path} is not valid TOML: {exc}") from None
    validate(spec, path)
    return Target(name=spec["name"], description=spec["description"], spec=spec, path=path)


def from_spec(spec: dict, origin: str) -> Target:
    """A target from a description already read, e.g. the copy a bundle carries."""
    validate(spec, Path(origin))
    return Target(name=spec["name"], description=spec["description"], spec=spec, path=Path(origin))


def validate(spec: dict, path: Path) -> None:
    """Raise a one-line TargetError naming the file and the first missing or malformed key."""
    for key in ("name", "description"):
        if not isinstance(spec.get(key), str) or not spec[key]:
            raise TargetError(f"{path}: '{key}' is missing or not a string")
    for section, keys in REQUIRED.items():
        if not isinstance(spec.get(section), dict):
            raise TargetError(f"{path}: section [{section}] is missing")
        for key, kind in keys.items():
            if key not in spec[section]:
                raise TargetError(f"{path}: [{section}] {key} is missing")
            _check(spec[section][key], kind, f"{path}: [{section}] {key}")
    for section, keys in OPTIONAL.items():
        for key, kind in keys.items():
            if key in spec.get(section, {}):
                _check(spec[section][key], kind, f"{path}: [{section}] {key}")
    chip = spec["chip"]
    tiles_ew, tiles_ns = chip["mesh"]
    if tiles_ew * tiles_ns * chip["cores_per_tile"] != chip["neuro_cores"]:
        raise TargetError(f"{path}: [chip] mesh {tiles_ew} x {tiles_ns} tiles x {chip['cores_per_tile']} cores "
                          f"per tile is not neuro_cores = {chip['neuro_cores']}")
    _check_encodings(spec["synapse_memory"], path)
    if not isinstance(spec.get("boards", []), list):
        raise TargetError(f"{path}: boards must be a list of [[boards]] tables")
    for index, board in enumerate(spec.get("boards", [])):
        where = f"{path}: [[boards]] entry {index + 1}"
        if not isinstance(board, dict) or not isinstance(board.get("name"), str):
            raise TargetError(f"{where} has no name")
        _check(board.get("chips"), "count", f"{where} ({board['name']}) chips")


def _check_encodings(memory: dict, path: Path) -> None:
    present = [name for name in ENCODINGS if name in memory]
    if not present:
        raise TargetError(f"{path}: [synapse_memory] names no encoding; add [synapse_memory.dense] "
                          "and/or [synapse_memory.sparse]")
    if "sparse" in memory:
        _check(memory["sparse"].get("index_bits"), "pair", f"{path}: [synapse_memory.sparse] index_bits")
        low, high = memory["sparse"]["index_bits"]
        if low > high:
            raise TargetError(f"{path}: [synapse_memory.sparse] index_bits [{low}, {high}] is not [min, max]")


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _check(value, kind: str, where: str) -> None:
    if kind == "count":
        if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            raise TargetError(f"{where} must be a positive integer, got {value!r}")
    elif kind == "integer":
        if not (isinstance(value, int) and not isinstance(value, bool)):
            raise TargetError(f"{where} must be an integer, got {value!r}")
    elif kind == "pair":
        if not (isinstance(value, list) and len(value) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
            raise TargetError(f"{where} must be two positive integers, got {value!r}")
    elif kind == "resets":
        if not (isinstance(value, list) and value and all(mode in RESET_MODES for mode in value)):
            raise TargetError(f"{where} must be a non-empty list of {', '.join(RESET_MODES)}, got {value!r}")
    elif kind == "cost":
        if isinstance(value, dict):
            parts = [value.get(k) for k in ("low", "nominal", "high")]
            if not all(_is_number(v) and v >= 0 for v in parts):
                raise TargetError(f"{where} must have non-negative numbers low, nominal and high, got {value!r}")
            if not parts[0] <= parts[1] <= parts[2]:
                raise TargetError(f"{where} must have low <= nominal <= high, got {value!r}")
        elif not (_is_number(value) and value >= 0):
            raise TargetError(f"{where} must be a non-negative number or a {{low, nominal, high}} table, "
                              f"got {value!r}")
