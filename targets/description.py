"""Target descriptions: one TOML file per target, every number with its source.

A user adds a target by dropping a ``<name>.toml`` next to these (or passing a path): no code
changes. The compiler reads the arithmetic's widths and limits from here (``Target.widths``), the
placer the core and chip budgets and the mesh, the energy model the per-operation costs, the back-end
check which back ends run the target's bundles (``Target.backends``).

Every key a file may hold is in ``REQUIRED`` or ``OPTIONAL`` (section -> key -> kind; the section ""
is the file's top level), and code reads each of them: ``load`` refuses a file that misses a required
key, holds a malformed one, or holds a key not in these tables, naming the file and the key.
Kinds of values:
  text        a non-empty string;
  count       a positive integer;
  natural     a non-negative integer;
  integer     any integer;
  flag        true or false;
  pair        two positive integers, e.g. the mesh [tiles east-west, tiles north-south];
  cost        a non-negative number, or a table {low, nominal, high} of them when the source gives
              only a range (low <= nominal <= high);
  resets      a non-empty list of reset modes from ``fixed_point.RESET_MODES``;
  arithmetic  the name of the arithmetic the stages implement (``fixed_point.ARITHMETIC``);
  backends    a non-empty list of back ends from ``backends.BACKENDS``, without repeats;
  delay       the steps a Dense block delays its input, which must be the schedule's
              (``schedule.DENSE_DELAY_STEPS``): the delay is part of the dynamics, not a free parameter;
  encoding    a synapse encoding's table (its keys, if any, are a section of their own);
  boards      a list of [[boards]] tables {name, chips}.
Optional: ``[core] max_input_axons`` and ``max_output_axons`` (checked only when present),
``[neuron] reset_modes`` (without it a target has only the zero reset of the fixed CUBA LIF),
``[[boards]]``, and the synapse encodings ``[synapse_memory.dense]`` and ``[synapse_memory.sparse]``
(at least one; sparse takes ``index_bits = [min, max]``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from numbers import Real
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # the Lava worker runs on Python 3.10
    import tomli as tomllib

from .backends import BACKENDS
from .fixed_point import ARITHMETIC, RESET_MODES, RESET_ZERO, Widths
from .schedule import DENSE_DELAY_STEPS

TARGET_DIR = Path(__file__).resolve().parent

# The per-event costs every target states: in [energy] as <key>_pj, in [latency] as <key>_ns.
COSTS = ("synaptic_op", "neuron_update_active", "neuron_update_inactive", "spike_message", "hop_east_west",
         "hop_north_south")

TOP = ""  # the section name of the file's top level
REQUIRED: dict[str, dict[str, str]] = {
    TOP: {"name": "text", "description": "text", "arithmetic": "arithmetic", "backends": "backends"},
    "chip": {"neuro_cores": "count", "mesh": "pair", "cores_per_tile": "count", "max_neurons": "count",
             "max_synapses": "count"},
    "core": {"max_neurons": "count", "synapse_memory_bytes": "count"},
    # The fields of fixed_point.Widths, in the sections of their keys (Target.widths).
    "neuron": {"state_bits": "count", "decay_bits": "count", "current_decay_offset": "natural",
               "voltage_decay_offset": "natural", "threshold_bits": "count", "threshold_shift": "natural",
               "activation_shift": "natural", "bias_mantissa_bits": "count"},
    "synapse": {"weight_bits": "count", "weight_exp_min": "integer", "weight_exp_max": "integer",
                "graded_spikes": "flag", "dense_delay_steps": "delay"},
    "synapse_memory": {"word_bits": "count", "group_synapses": "count", "group_header_bits": "count"},
    "energy": {"basis": "text", **{f"{key}_pj": "cost" for key in COSTS}, "static_power_w": "cost"},
    "latency": {"basis": "text", **{f"{key}_ns": "cost" for key in COSTS}, "barrier_ns": "cost"},
}
ENCODINGS = ("dense", "sparse")
OPTIONAL: dict[str, dict[str, str]] = {
    TOP: {"boards": "boards"},
    "core": {"max_input_axons": "count", "max_output_axons": "count"},
    "neuron": {"reset_modes": "resets"},
    # Per-synapse delays (Delay nodes): a field of this many bits, 0 .. 2**delay_bits - 1 steps; none without it.
    "synapse": {"delay_bits": "count"},
    "synapse_memory": {name: "encoding" for name in ENCODINGS},
    "synapse_memory.dense": {},
    "synapse_memory.sparse": {"index_bits": "pair"},
}
# The keys of a [[boards]] entry and of a cost range.
BOARD_KEYS = ("name", "chips")
COST_RANGE_KEYS = ("low", "nominal", "high")


def sections() -> set[str]:
    """Every section a file may hold (dotted: "synapse_memory.sparse"), the top level "" included."""
    return set(REQUIRED) | set(OPTIONAL)


def known_keys() -> set[str]:
    """Every key a file may hold, as a dotted path ("synapse.weight_bits", "backends" at the top level)."""
    return {f"{section}.{key}" if section else key for table in (REQUIRED, OPTIONAL)
            for section, keys in table.items() for key in keys}


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
    def widths(self) -> Widths:
        """The arithmetic's widths, shifts, offsets and limits: the [neuron] and [synapse] keys of ``Widths``."""
        return _widths(self.spec)

    @property
    def backends(self) -> tuple[str, ...]:
        """The back ends that run this target's bundles (``backends.check_runs``)."""
        return tuple(self.spec["backends"])

    @property
    def reset_modes(self) -> tuple[str, ...]:
        """How this target's neurons can reset after a spike (fixed_point.RESET_MODES)."""
        return tuple(self.optional("neuron", "reset_modes") or (RESET_ZERO,))

    @property
    def boards(self) -> list[tuple[str, int]]:
        """(name, chips) of the multi-chip boards and systems, smallest first."""
        return sorted(((b["name"], int(b["chips"])) for b in self.spec.get("boards", [])), key=lambda b: b[1])


def _widths(spec: dict) -> Widths:
    stated = {**spec["neuron"], **spec["synapse"]}
    return Widths(**{f.name: stated[f.name] for f in fields(Widths)})


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
    """Raise a one-line TargetError naming the file and the first missing, malformed or unknown key."""
    for section in sorted(sections()):
        table = _section(spec, section)
        where = f"{path}: [{section}]" if section else f"{path}:"
        if table is None:
            if section in REQUIRED:
                raise TargetError(f"{path}: section [{section}] is missing")
            continue
        if not isinstance(table, dict):
            raise TargetError(f"{where} must be a table")
        known = {**REQUIRED.get(section, {}), **OPTIONAL.get(section, {})}
        subsections = {name.rsplit(".", 1)[-1] for name in sections() if _parent(name) == section}
        for key in table:
            if key not in known and key not in subsections:
                raise TargetError(f"{where} {key} is not a key snn-deploy reads (known: {', '.join(known)}); "
                                  "delete it or correct its name")
        for key, kind in REQUIRED.get(section, {}).items():
            if key not in table:
                raise TargetError(f"{where} {key} is missing")
        for key, kind in known.items():
            if key in table:
                _check(table[key], kind, f"{where} {key}")
    chip = spec["chip"]
    tiles_ew, tiles_ns = chip["mesh"]
    if tiles_ew * tiles_ns * chip["cores_per_tile"] != chip["neuro_cores"]:
        raise TargetError(f"{path}: [chip] mesh {tiles_ew} x {tiles_ns} tiles x {chip['cores_per_tile']} cores "
                          f"per tile is not neuro_cores = {chip['neuro_cores']}")
    _check_encodings(spec["synapse_memory"], path)
    try:
        _widths(spec)
    except ValueError as exc:
        raise TargetError(f"{path}: [neuron]/[synapse] {exc}") from None


def _parent(section: str) -> str | None:
    """The section holding ``section`` ("" for a top-level one, None for the top level itself)."""
    if not section:
        return None
    return section.rsplit(".", 1)[0] if "." in section else TOP


def _section(spec: dict, section: str):
    """The table of a (dotted) section, or None where the file has none."""
    table = spec
    for part in section.split(".") if section else ():
        if not isinstance(table, dict) or part not in table:
            return None
        table = table[part]
    return table


def _check_encodings(memory: dict, path: Path) -> None:
    if not any(name in memory for name in ENCODINGS):
        raise TargetError(f"{path}: [synapse_memory] names no encoding; add [synapse_memory.dense] "
                          "and/or [synapse_memory.sparse]")
    if "sparse" in memory:
        if "index_bits" not in memory["sparse"]:
            raise TargetError(f"{path}: [synapse_memory.sparse] index_bits is missing")
        low, high = memory["sparse"]["index_bits"]
        if low > high:
            raise TargetError(f"{path}: [synapse_memory.sparse] index_bits [{low}, {high}] is not [min, max]")


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(value, kind: str, where: str) -> None:
    if kind == "text":
        if not (isinstance(value, str) and value):
            raise TargetError(f"{where} must be a non-empty string, got {value!r}")
    elif kind == "count":
        if not (_is_integer(value) and value > 0):
            raise TargetError(f"{where} must be a positive integer, got {value!r}")
    elif kind == "natural":
        if not (_is_integer(value) and value >= 0):
            raise TargetError(f"{where} must be a non-negative integer, got {value!r}")
    elif kind == "integer":
        if not _is_integer(value):
            raise TargetError(f"{where} must be an integer, got {value!r}")
    elif kind == "flag":
        if not isinstance(value, bool):
            raise TargetError(f"{where} must be true or false, got {value!r}")
    elif kind == "pair":
        if not (isinstance(value, list) and len(value) == 2 and all(_is_integer(v) and v > 0 for v in value)):
            raise TargetError(f"{where} must be two positive integers, got {value!r}")
    elif kind == "resets":
        if not (isinstance(value, list) and value and all(mode in RESET_MODES for mode in value)):
            raise TargetError(f"{where} must be a non-empty list of {', '.join(RESET_MODES)}, got {value!r}")
    elif kind == "arithmetic":
        if value != ARITHMETIC:
            raise TargetError(f"{where} must name an arithmetic snn-deploy implements ({ARITHMETIC!r}), got {value!r}")
    elif kind == "backends":
        if not (isinstance(value, list) and value and all(name in BACKENDS for name in value)
                and len(set(value)) == len(value)):
            raise TargetError(f"{where} must be a non-empty list of distinct back ends from "
                              f"{', '.join(BACKENDS)}, got {value!r}")
    elif kind == "delay":
        if value != DENSE_DELAY_STEPS or not _is_integer(value):
            raise TargetError(f"{where} must be {DENSE_DELAY_STEPS}, the one step by which the step schedule "
                              f"(targets/schedule.py) delays every Dense block's input, got {value!r}")
    elif kind == "encoding":
        if not isinstance(value, dict):
            raise TargetError(f"{where} must be a table, got {value!r}")
    elif kind == "boards":
        if not isinstance(value, list):
            raise TargetError(f"{where} must be a list of [[boards]] tables")
        for index, board in enumerate(value):
            entry = f"{where} entry {index + 1}"
            if not isinstance(board, dict) or not isinstance(board.get("name"), str):
                raise TargetError(f"{entry} has no name")
            _check(board.get("chips"), "count", f"{entry} ({board['name']}) chips")
            if set(board) != set(BOARD_KEYS):
                raise TargetError(f"{entry} ({board['name']}) must have exactly the keys {', '.join(BOARD_KEYS)}")
    elif kind == "cost":
        if isinstance(value, dict):
            parts = [value.get(k) for k in COST_RANGE_KEYS]
            if set(value) != set(COST_RANGE_KEYS) or not all(_is_number(v) and v >= 0 for v in parts):
                raise TargetError(f"{where} must have non-negative numbers low, nominal and high, got {value!r}")
            if not parts[0] <= parts[1] <= parts[2]:
                raise TargetError(f"{where} must have low <= nominal <= high, got {value!r}")
        elif not (_is_number(value) and value >= 0):
            raise TargetError(f"{where} must be a non-negative number or a {{low, nominal, high}} table, "
                              f"got {value!r}")
    else:
        raise AssertionError(f"no kind {kind!r}")
