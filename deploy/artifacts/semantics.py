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
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ...targets.decision import DECODINGS
from ...targets.fixed_point import RESET_MODES
from ..errors import DeployError

METADATA_KEY = "snn_deploy"
SEMANTICS_VERSION = 2
TIME_UNITS = ("tau", "s", "step")
SPIKE_KINDS = ("dirac", "pulse")
INTEGRATIONS = ("exact", "euler")


# Each semantic field (but the encoding, which only graph metadata states) with the option that sets it.
SEMANTIC_OPTIONS = {"time_unit": "--time-unit", "fire_once": "--fire-once/--multi-spike", "reset": "--reset",
                    "decoding": "--decoding", "horizon": "--duration", "spike": "--spike",
                    "integration": "--integration"}


def option_usage(name: str) -> str:
    """How the option of a semantic field is written, with its choices: "--reset zero|subtract"."""
    choices = {"time_unit": TIME_UNITS, "reset": RESET_MODES, "decoding": DECODINGS, "spike": SPIKE_KINDS,
               "integration": INTEGRATIONS}.get(name)
    return SEMANTIC_OPTIONS[name] + (f" {'|'.join(choices)}" if choices else "")


@dataclass(frozen=True)
class Semantics:
    """What NIR leaves unsaid, stated.

    time_unit: the unit of every time constant and spike time ("tau": the model's own time
        constant; "s": seconds).
    fire_once: neurons emit at most one spike (TTFS); later threshold crossings are ignored.
    reset: "zero" (v = v_reset after a spike) or "subtract" (v -= v_threshold).
    encoding: how data become input spike times, e.g. {"kind": "ttfs_linear", "t_early": 0.15,
        "t_late": 2.0, "bias_times": [0.9]}: t = t_early + x (t_late - t_early), plus bias spikes.
    decoding: "first_spike" (the first output neuron to fire is the decision) or "spike_count".
    horizon: how long a sample runs, in time units.
    spike: what one input spike of weight w is. "dirac": an impulse of area w, as NIR's equations
        read (a LIF jumps by r w / tau). "pulse": a pulse of height w lasting one time step, area
        w dt, as discrete-time simulators treat a spike (a LIF jumps by about r w dt / tau).
    integration: how a step of dt advances the equations. "exact": the linear dynamics integrated
        exactly over the step (snn-deploy's own models). "euler": the step discrete-time simulators
        take (snnTorch, norse, sinabs): I <- (1 - dt/tau_syn) I + (dt/tau_syn) w_in x, then
        v <- (1 - dt/tau_mem) v + (dt/tau_mem) (v_leak + r I) with the new I.
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


def semantics_from_metadata(metadata: dict, overrides: dict[str, Any] | None = None) -> Semantics:
    """Resolve the semantics: options override the graph's metadata; anything missing is an error."""
    stored: dict[str, Any] = {}
    raw = (metadata or {}).get(METADATA_KEY)
    if raw is not None:
        if isinstance(raw, bytes):
            raw = raw.decode()
        try:
            stored = json.loads(str(raw))
        except json.JSONDecodeError:
            raise DeployError(f"graph metadata '{METADATA_KEY}' is not valid JSON") from None
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    values, origin = {}, {}
    needed = SEMANTIC_OPTIONS
    if stored.get("semantics_version") == 1:
        stored.setdefault("integration", "exact")  # version 1 of this metadata had exact integration only
    missing = []
    for key, option in needed.items():
        if key in overrides:
            values[key], origin[key] = overrides[key], "option"
        elif key in stored:
            values[key], origin[key] = stored[key], "metadata"
        else:
            missing.append(f"{key} ({option_usage(key)})")
    # How data become input spikes matters only when a data set is fed in (verify, run --data).
    values["encoding"] = stored.get("encoding", {})
    origin["encoding"] = "metadata" if "encoding" in stored else "absent: inputs must be given as spikes"
    if missing:
        raise DeployError("the graph does not state " + ", ".join(missing)
                          + "; give them as options (NIR leaves them open and snn-deploy does not guess)")
    if values["reset"] not in RESET_MODES:
        raise DeployError(f"reset mode {values['reset']!r} is not one of {', '.join(RESET_MODES)}")
    if values["decoding"] not in DECODINGS:
        raise DeployError(f"decoding {values['decoding']!r} is not one of {', '.join(DECODINGS)}")
    if values["spike"] not in SPIKE_KINDS:
        raise DeployError(f"spike kind {values['spike']!r} is not one of {', '.join(SPIKE_KINDS)}")
    if values["integration"] not in INTEGRATIONS:
        raise DeployError(f"integration {values['integration']!r} is not one of {', '.join(INTEGRATIONS)}")
    if not (np.isfinite(values["horizon"]) and values["horizon"] > 0):
        raise DeployError(f"horizon (--duration) must be a positive time, got {values['horizon']}")
    return Semantics(origin=origin, encoding=values["encoding"], **{k: values[k] for k in needed})


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
    for name in (*SEMANTIC_OPTIONS, "encoding"):
        if getattr(a, name) != getattr(b, name):
            return name
    return None
