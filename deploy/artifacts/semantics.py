"""What NIR leaves unsaid, stated: the semantics of a network, its enumerations and their validation.

NIR records the equations of each node but not how a network is meant to run: the time unit,
whether neurons fire once (time-to-first-spike) or many times, the reset mode, how inputs are
encoded and outputs decoded. snn-deploy writes those into the graph's metadata on export
(``metadata["snn_deploy"]``, a JSON string), the compiler copies them into the bundle, and every
later stage reads them from there. A choice that is neither in the metadata nor given as an
option is an error, never a silent default.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from ...targets.decision import DECODINGS
from ...targets.encoding import Encoding, encoding_from_description
from ...targets.fixed_point import RESET_MODES
from ..errors import DeployError

METADATA_KEY = "snn_deploy"
SEMANTICS_VERSION = 2
KNOWN_VERSIONS = (1, SEMANTICS_VERSION)
TIME_UNITS = ("tau", "s", "step")
SPIKE_KINDS = ("dirac", "pulse")
INTEGRATIONS = ("exact", "euler", "exponential")
# The steps of discrete-time simulators: they advance a feed-forward chain within one time step, where the chip
# delays each stage by one (``discretize.latency_steps``).
SIMULATOR_INTEGRATIONS = ("euler", "exponential")


@dataclass(frozen=True)
class Semantics:
    """What NIR leaves unsaid, stated.

    time_unit: the unit of every time constant and spike time (one of TIME_UNITS: "tau", the
        model's own time constant; "s", seconds; "step", the time step a discrete-time model was
        trained at).
    fire_once: neurons emit at most one spike (TTFS); later threshold crossings are ignored.
    reset: "zero" (v = v_reset after a spike) or "subtract" (v -= v_threshold).
    encoding: how data become input spike times, e.g. {"kind": "ttfs_linear", "t_early": 0.15,
        "t_late": 2.0, "bias_times": [0.9]}: t = t_early + x (t_late - t_early), plus bias spikes.
    decoding: one of ``targets.decision.DECODINGS``, the rules written there: "first_spike" (the first output
        neuron to fire), "spike_count" (the most spikes), "spike_count_argmax" (torch.argmax of the counts), or a
        readout's membrane decoding.
    horizon: how long a sample runs, in time units.
    spike: what one input spike of weight w is. "dirac": an impulse of area w, as NIR's equations
        read (a LIF jumps by r w / tau). "pulse": a pulse of height w lasting one time step, area
        w dt, as discrete-time simulators treat a spike (a LIF jumps by about r w dt / tau).
    integration: how a step of dt advances the equations. "exact": the linear dynamics integrated
        exactly over the step (snn-deploy's own models). "euler": the step snnTorch and norse take
        (and sinabs for its IAF layers): I <- (1 - dt/tau_syn) I + (dt/tau_syn) w_in x, then
        v <- (1 - dt/tau_mem) v + (dt/tau_mem) (v_leak + r I) with the new I. "exponential": the exponential
        Euler step, sinabs' for its LIF layers (alpha = exp(-1/tau_mem), v <- alpha v + (1 - alpha) x): the input
        held over the step, I <- a_s I + (1 - a_s) w_in x, then v <- a_m v + (1 - a_m) (v_leak + r I) with the new
        I, a_s = exp(-dt/tau_syn), a_m = exp(-dt/tau_mem); an IF layer steps as under euler (v <- v + dt r x).
        Both simulator steps (SIMULATOR_INTEGRATIONS) advance a feed-forward chain within one step.
    origin: for each field, where the choice came from ("metadata" or "option").
    """

    time_unit: str
    fire_once: bool
    reset: str
    encoding: dict[str, Any]
    decoding: str
    horizon: float
    spike: str = "dirac"
    integration: str = "exact"
    origin: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        body = {"semantics_version": SEMANTICS_VERSION, "time_unit": self.time_unit,
                "fire_once": self.fire_once, "reset": self.reset, "encoding": self.encoding,
                "decoding": self.decoding, "horizon": self.horizon, "spike": self.spike,
                "integration": self.integration}
        return json.dumps(body, sort_keys=True)


# The graph's encoding entry holds a model encoding's fields, with its bias spike as "bias_times", and the data set.
GRAPH_ONLY_FIELDS = ("bias_times", "dataset")


def input_encoding(entry: dict) -> Encoding:
    """The model encoding (``targets.encoding``) a graph's "encoding" entry describes; a malformed one
    is a DeployError naming the field."""
    if not isinstance(entry, dict):
        raise DeployError(f"the graph's input encoding must be a table, got {entry!r}")
    bias_times = entry.get("bias_times")
    if not (isinstance(bias_times, list) and len(bias_times) == 1):
        raise DeployError(f"the graph's input encoding: bias_times must be a list of one time, got {bias_times!r}")
    fields = {name: value for name, value in entry.items() if name not in GRAPH_ONLY_FIELDS}
    try:
        return encoding_from_description({**fields, "t_bias": bias_times[0]})
    except ValueError as error:
        raise DeployError(f"the graph's {error}") from None


@dataclass(frozen=True)
class _Field:
    """How a semantic field is given as an option, and which values it takes."""

    option: str
    expected: str  # completes "must be ..."
    valid: Callable[[Any], bool]
    choices: tuple[str, ...] = ()


def _choice(option: str, choices: tuple[str, ...]) -> _Field:
    return _Field(option, f"one of {', '.join(choices)}", lambda value: isinstance(value, str) and value in choices,
                  choices)


def _positive_time(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0


FIELDS = {
    "time_unit": _choice("--time-unit", TIME_UNITS),
    "fire_once": _Field("--fire-once/--multi-spike", "true or false", lambda value: isinstance(value, bool)),
    "reset": _choice("--reset", RESET_MODES),
    "decoding": _choice("--decoding", DECODINGS),
    "horizon": _Field("--duration", "a positive time", _positive_time),
    "spike": _choice("--spike", SPIKE_KINDS),
    "integration": _choice("--integration", INTEGRATIONS),
}


def semantic_fields(semantics: Semantics) -> dict[str, Any]:
    """Every field of FIELDS as ``semantics`` has it: the overrides that load a graph with exactly these semantics."""
    return {name: getattr(semantics, name) for name in FIELDS}


def semantic_overrides(*, time_unit: str | None = None, fire_once: bool | None = None, reset: str | None = None,
                       decoding: str | None = None, duration: float | None = None, spike: str | None = None,
                       integration: str | None = None) -> dict[str, Any]:
    """The semantic options, by the command line's names (``--duration`` states the horizon), as the
    overrides ``semantics_from_metadata`` takes (None: not given)."""
    return {"time_unit": time_unit, "fire_once": fire_once, "reset": reset, "decoding": decoding,
            "horizon": duration, "spike": spike, "integration": integration}


def semantics_from_metadata(metadata: dict, overrides: dict[str, Any] | None = None) -> Semantics:
    """Resolve the semantics: options override the graph's metadata; anything missing is an error, and
    every value, from either, is checked."""
    stored: dict[str, Any] = {}
    raw = (metadata or {}).get(METADATA_KEY)
    if raw is not None:
        if isinstance(raw, bytes):
            raw = raw.decode()
        try:
            stored = json.loads(str(raw))
        except json.JSONDecodeError:
            raise DeployError(f"graph metadata '{METADATA_KEY}' is not valid JSON") from None
        if not isinstance(stored, dict):
            raise DeployError(f"graph metadata '{METADATA_KEY}' must be a JSON object, got {type(stored).__name__}")
    version = stored.get("semantics_version", SEMANTICS_VERSION)
    if version not in KNOWN_VERSIONS or isinstance(version, bool):
        raise DeployError(f"graph metadata '{METADATA_KEY}' has semantics_version {version!r}; this snn-deploy "
                          f"reads versions {', '.join(map(str, KNOWN_VERSIONS))}")
    if version == 1:
        stored.setdefault("integration", "exact")  # version 1 of this metadata had exact integration only
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    values, origin = {}, {}
    missing = []
    for key, rule in FIELDS.items():
        if key in overrides:
            values[key], origin[key] = overrides[key], "option"
        elif key in stored:
            values[key], origin[key] = stored[key], "metadata"
        else:
            missing.append(f"{key} ({rule.option}{' ' + '|'.join(rule.choices) if rule.choices else ''})")
    if missing:
        raise DeployError("the graph does not state " + ", ".join(missing)
                          + "; give them as options (NIR leaves them open and snn-deploy does not guess)")
    for key, rule in FIELDS.items():
        if not rule.valid(values[key]):
            where = f"option {rule.option}" if origin[key] == "option" else f"graph metadata {key}"
            raise DeployError(f"{where} must be {rule.expected}, got {values[key]!r}")
    # How data become input spikes matters only when a data set is fed in (verify, run --data).
    values["encoding"] = stored.get("encoding", {})
    origin["encoding"] = "metadata" if "encoding" in stored else "absent: inputs must be given as spikes"
    if values["encoding"] != {}:
        input_encoding(values["encoding"])
    return Semantics(origin=origin, encoding=values["encoding"], **{k: values[k] for k in FIELDS})


def compiled_semantics(stored: dict[str, Any]) -> Semantics:
    """The semantics a bundle was compiled with (``targets.bundle.Source.semantics``), validated as graph metadata
    is, with the origins the compile recorded."""
    if not stored:
        raise DeployError("the bundle records no semantics (it was compiled by an older snn-deploy); compile it again")
    body = {key: value for key, value in stored.items() if key != "origin"}
    semantics = semantics_from_metadata({METADATA_KEY: json.dumps(body)})
    return replace(semantics, origin=dict(stored.get("origin", {})))


def first_difference(a: Semantics, b: Semantics) -> str | None:
    """The first field in which two semantics differ (origins aside), or None."""
    for name in (*FIELDS, "encoding"):
        if getattr(a, name) != getattr(b, name):
            return name
    return None
