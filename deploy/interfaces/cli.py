"""snn-deploy: the command line, a thin layer over the pipeline functions.

Exit codes: 0 success (verify: passed), 1 verify exceeded a tolerance, 2 bad input,
3 the back end itself failed (e.g. an exception inside Lava, reported with its traceback).
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ...targets import backends, bitsim
from ...targets import bundle as bundle_io
from ...targets import description
from ...targets import record as record_io
from ...targets.backends import BackendUnavailable
from ...targets.bundle import BundleError
from ...targets.description import TargetError
from ...targets.files import write_atomic
from ...targets.lava import LavaRunError
from ...targets.record import RecordError
from ..errors import DeployError
from ..reporting.text import format_placement, format_quantization, format_summary
from ..artifacts.tolerances import Tolerances
from ..stages.stimulus import DEFAULT_RANDOM_SAMPLES, load_stimulus

EXIT_OK, EXIT_TOLERANCE, EXIT_BAD_INPUT, EXIT_BACKEND_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


# --- helpers ----------------------------------------------------------------------------------

def _say(args, *lines: str) -> None:
    if not getattr(args, "quiet", False):
        for line in lines:
            print(line)


@contextmanager
def _progress(args, total: int, what: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on a terminal; nothing when piped or with --quiet."""
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=what, unit="sample", leave=False) as bar:
        yield bar.update


def _output_path(path: str) -> Path:
    out = Path(path)
    if not out.parent.is_dir():
        raise DeployError(f"output folder does not exist: {out.parent}")
    return out


def _load_model(name_or_path: str):
    from ...models import zoo

    try:
        return zoo.load(name_or_path)
    except ValueError as exc:
        raise DeployError(str(exc).splitlines()[0]) from None


def _load_bundle(path: str):
    try:
        return bundle_io.load(path)
    except BundleError as exc:
        raise DeployError(str(exc)) from None


def _semantic_overrides(args) -> dict:
    return {"time_unit": getattr(args, "time_unit", None), "reset": getattr(args, "reset", None),
            "decoding": getattr(args, "decoding", None), "horizon": getattr(args, "duration", None),
            "fire_once": getattr(args, "fire_once", None), "spike": getattr(args, "spike", None),
            "integration": getattr(args, "integration", None)}


def _load_graph(path: str, args):
    from ..stages.load import load

    return load(path, _semantic_overrides(args))


# --- commands ---------------------------------------------------------------------------------

def cmd_zoo(args) -> int:
    from ...models import zoo

    for name in zoo.names():
        model = zoo.load(name)
        acc = model.meta.get("accuracy", {}).get("test")
        deployable = "" if isinstance(model, zoo.TTFSModel) else "  (export not supported yet)"
        print((f"{name:24s} {model.dataset:10s} test accuracy {acc:.4f}" if acc is not None else name) + deployable)
    return EXIT_OK


def cmd_targets(args) -> int:
    for name in description.names():
        try:
            target = description.load(name)
        except TargetError as exc:
            print(f"{name:12s} (unusable: {exc})")
            continue
        boards = ", ".join(f"{board} ({chips} chip{'s' if chips != 1 else ''})" for board, chips in target.boards)
        print(f"{name:12s} {target.description}" + (f"; boards: {boards}" if boards else ""))
    return EXIT_OK


def cmd_train(args) -> int:
    from ...models import zoo
    from ...models.train import train_digits_ttfs, train_yinyang_ttfs
    from ...models.train_multispike import train_digits_multispike, train_yinyang_multispike

    trainers = {"yinyang-ttfs": train_yinyang_ttfs, "digits-ttfs": train_digits_ttfs,
                "yinyang-multispike": train_yinyang_multispike, "digits-multispike": train_digits_multispike}
    if args.model not in trainers:
        raise DeployError(f"no trainer for {args.model!r}; trainable models: {', '.join(trainers)}")
    out = _output_path(args.output or f"{args.model}.npz")
    kwargs = {"seed": args.seed, "progress": not args.quiet and sys.stderr.isatty()}
    if args.epochs is not None:
        if args.epochs < 1:
            raise DeployError(f"--epochs must be at least 1, got {args.epochs}")
        kwargs["epochs"] = args.epochs
    if args.refit is not None:
        kwargs["refit"] = args.refit
    model = trainers[args.model](**kwargs)
    zoo.save(model, out)
    _say(args, f"test accuracy {model.meta['accuracy']['test']:.4f}; wrote {out}")
    return EXIT_OK


def cmd_export(args) -> int:
    from ..stages.export import export, to_nir

    model = _load_model(args.model)
    out = _output_path(args.output)
    shape = " -> ".join(f"{w.shape[1]}" for w in model.weights) + f" -> {model.weights[-1].shape[0]}"
    if args.format == "nir":
        export(model, out)
        _say(args, f"wrote {out} (NIR graph of {model.name}: {shape})")
        return EXIT_OK
    from ..references.onnx import export_onnx
    from ..stages.compile import choose_timing
    from ..stages.discretize import discretize
    from ..stages.load import from_graph

    net = from_graph(to_nir(model))
    # Snapped for the compile command's default target, so that the reference matches its bundles.
    timing = choose_timing(net, args.steps_per_tau, snap_decay=not args.no_snap,
                           decay_bits=description.load("loihi2").widths.decay_bits)
    export_onnx(net, discretize(net, timing.dt), timing.num_steps, out)
    _say(args, f"wrote {out} (ONNX, the discrete float reference of {model.name}: {shape}, unrolled over "
               f"T = {timing.num_steps} steps of dt = {timing.dt:.6g} {timing.time_unit}; batch axis dynamic)")
    return EXIT_OK


def cmd_compile(args) -> int:
    from ..stages.compile import compile_network

    try:
        target = description.load(args.target)
    except TargetError as exc:
        raise DeployError(str(exc)) from None
    out = _output_path(args.output)
    net = _load_graph(args.graph, args)
    if args.max_chips < 1:
        raise DeployError(f"--max-chips must be at least 1, got {args.max_chips}")
    compiled = compile_network(net, target, args.steps_per_tau, snap_decay=not args.no_snap,
                               max_chips=args.max_chips, dt=args.dt, split_weights=args.split_weights)
    bundle_io.save(compiled, out)
    sem = net.semantics
    _say(args,
         f"compiled {args.graph} for {target.name}: {len(net.layers)} layers, "
         f"{sum(p.size for p in compiled.network.populations)} neurons on {compiled.placement.cores_used} cores",
         f"semantics: time unit {sem.time_unit}, fire_once={sem.fire_once}, reset={sem.reset}, "
         f"spike={sem.spike}, integration={sem.integration}, decoding={sem.decoding}, horizon={sem.horizon:g} ({', '.join(f'{k} from {v}' for k, v in sem.origin.items())})",
         f"time step: dt = {compiled.timing.dt:.6g} {sem.time_unit} ({1 / compiled.timing.dt:.2f} steps per "
         f"{sem.time_unit}{', snapped so the 12-bit decay is exact' if compiled.report['snapped_dt'] else ''}), "
         f"{compiled.timing.num_steps} steps per sample",
         *format_quantization(compiled.report["quantization"]),
         *format_placement(compiled.placement, target),
         f"wrote {out}")
    return EXIT_OK


ENGINE_HELP = (f"bitsim's engine: compiled (numba, the extra 'compiled') or reference (numpy); the same records "
               f"bit for bit (default: {bitsim.default_engine()} here)")


def get_backend(name: str, bundle):
    try:
        return backends.get(name, bundle)
    except ValueError as exc:
        raise DeployError(str(exc)) from None


def cmd_run(args) -> int:
    from ..stages.run import run

    bundle = _load_bundle(args.bundle)
    stimulus = load_stimulus(args.data, args.samples, bundle)
    inputs = stimulus.inputs
    out = _output_path(args.output)
    get_backend(args.backend, bundle)  # reject an unknown or unlisted back end before any work
    with _progress(args, inputs.num_samples, f"run on {args.backend}") as progress:
        result = run(bundle, stimulus, backend=args.backend, record_state=args.record_state, progress=progress,
                     engine=args.engine)
    record_io.save(result, out)
    events = ", ".join(f"{name}: {c.get('current_wraps', 0)} current wraps, {c.get('voltage_saturations', 0)} "
                       f"voltage saturations" for name, c in result.counters.items())
    _say(args, f"ran {inputs.num_samples} samples x {result.num_steps} steps on {args.backend} ({events}); "
               f"wrote {out}")
    return EXIT_OK


def _load_replay(path: str, bundle, stimulus):
    """A stored spike record, checked to come from this bundle and this data selection."""
    from ..stages.run import check_replay

    try:
        stored = record_io.load(path)
    except RecordError as exc:
        raise DeployError(str(exc)) from None
    return check_replay(stored, bundle, stimulus, path)


def cmd_verify(args) -> int:
    from ..stages.tolerances import load_tolerances, tolerance_file
    from ..stages.verify import compare_spikes, judge, reference_network

    bundle = _load_bundle(args.bundle)
    net = reference_network(args.graph, bundle, _semantic_overrides(args), dt=args.dt)
    stimulus = load_stimulus(args.data, args.samples, bundle)
    replay = _load_replay(args.replay, bundle, stimulus) if args.replay else None
    json_out = _output_path(args.json) if args.json else None
    report_out = _output_path(args.report) if args.report else None
    tolerances = load_tolerances(args.graph, {
        "max_accuracy_drop": args.max_accuracy_drop, "min_agreement": args.min_agreement,
        "max_spike_time_error_p95": args.max_spike_time_error_p95, "max_hardware_events": args.max_hardware_events})
    get_backend(args.backend, bundle)  # reject an unknown name, or one the bundle's target lacks, before any work
    with _progress(args, stimulus.inputs.num_samples, f"verify on {args.backend}") as progress:
        comparison = compare_spikes(net, bundle, stimulus.inputs, labels=stimulus.labels, times_in=stimulus.times,
                                    backend=args.backend, progress=progress, record=replay, engine=args.engine,
                                    workers=args.workers)
    verdict = judge(comparison, net, bundle, dataset=stimulus.name, tolerances=tolerances)
    if json_out:
        write_atomic(json_out, verdict.to_json().encode())
    if report_out:
        from ..reporting.html import write_report
        write_report(report_out, comparison, verdict, net, bundle, energy=verdict.metrics["energy"])
    applied = tolerance_file(args.graph)
    _say(args, *format_summary(verdict), *([f"  tolerances from {applied}"] if applied else []),
         *[f"  wrote {path}" for path in (json_out, report_out) if path])
    return EXIT_OK if verdict.passed else EXIT_TOLERANCE


def cmd_demo(args) -> int:
    from .demo import demo_commands

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for argv in demo_commands(out, args.samples):
        _say(args, f"\n$ snn-deploy {' '.join(argv)}")
        code = main([*argv, *(["--quiet"] if args.quiet else [])])
        if code != EXIT_OK:
            return code
    _say(args, f"\ndemo finished in {time.perf_counter() - start:.1f} s; files in {out}/")
    return EXIT_OK


# --- parser -----------------------------------------------------------------------------------

def _add_semantic_options(p: argparse.ArgumentParser, title: str) -> None:
    from ..artifacts.semantics import DECODINGS, INTEGRATIONS, RESET_MODES, SPIKE_KINDS, TIME_UNITS

    g = p.add_argument_group(title)
    g.add_argument("--time-unit", choices=TIME_UNITS, help="unit of time constants and spike times")
    g.add_argument("--reset", choices=RESET_MODES, help="reset after a spike")
    g.add_argument("--decoding", choices=DECODINGS, help="how outputs give a decision")
    g.add_argument("--duration", type=float, help="run length of one sample, in time units")
    g.add_argument("--spike", choices=SPIKE_KINDS,
                   help="an input spike of weight w is an impulse of area w (dirac, NIR's equations) or a pulse "
                        "of height w lasting one step (pulse, as discrete-time simulators treat it)")
    g.add_argument("--integration", choices=INTEGRATIONS,
                   help="a time step integrates the equations exactly (exact), or as snnTorch, norse and sinabs "
                        "step them (euler: current first, then voltage from the new current)")
    once = g.add_mutually_exclusive_group()
    once.add_argument("--fire-once", dest="fire_once", action="store_const", const=True,
                      help="neurons spike at most once (time-to-first-spike)")
    once.add_argument("--multi-spike", dest="fire_once", action="store_const", const=False,
                      help="neurons may spike many times")


def _add_time_step_options(p: argparse.ArgumentParser) -> None:
    from ..stages.compile import DEFAULT_STEPS_PER_TAU

    p.add_argument("--steps-per-tau", type=float, default=DEFAULT_STEPS_PER_TAU,
                   help=f"chip steps per time unit, approximately (default {DEFAULT_STEPS_PER_TAU})")
    p.add_argument("--no-snap", action="store_true",
                   help="use exactly 1/steps-per-tau as dt instead of snapping it to an exact 12-bit decay")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snn-deploy", description="Deploy spiking neural networks to Loihi-style chips: export to NIR, compile "
        "to the chip's integers, run bit-accurately, verify against the float model.",
        epilog="exit codes: 0 success, 1 a verify tolerance exceeded, 2 bad input, 3 the back end failed")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
        p.set_defaults(func=func)
        return p

    command("zoo", cmd_zoo, "list the trained models shipped in the zoo")
    command("targets", cmd_targets, "list the target descriptions")

    p = command("train", cmd_train, "train a zoo model (seeded, deterministic)")
    p.add_argument("model", help="zoo model name, e.g. yinyang-ttfs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, help="number of epochs (default: the zoo model's)")
    p.add_argument("--refit", action=argparse.BooleanOptionalAction,
                   help="--refit: learn from the training and validation splits and keep the last epoch (how the "
                   "digits models are trained, their epoch counts chosen on validation); --no-refit: learn from the "
                   "training split and keep the best-validation epoch (how the Yin-Yang models are trained). "
                   "Default: the zoo model's")
    p.add_argument("-o", "--output", help="checkpoint to write (.npz; a .json sidecar is written beside it)")

    p = command("export", cmd_export, "write a model as a NIR graph with explicit semantics (or as ONNX)")
    p.add_argument("model", help="zoo model name or checkpoint .npz")
    p.add_argument("-o", "--output", required=True, help="file to write")
    p.add_argument("--format", choices=["nir", "onnx"], default="nir",
                   help="nir (default), or onnx: the discrete float reference unrolled over a fixed number of "
                        "steps with a dynamic batch axis")
    _add_time_step_options(p)

    p = command("compile", cmd_compile, "quantize and place a NIR graph for a target, writing a bundle")
    p.add_argument("graph", help="NIR file")
    p.add_argument("--target", default="loihi2", help="target name or .toml description (default loihi2)")
    _add_time_step_options(p)
    p.add_argument("--dt", type=float, help="the time step, in the graph's time unit (e.g. the step a "
                   "discrete-time model was trained at); overrides --steps-per-tau")
    p.add_argument("--max-chips", type=int, default=1, help="chips the placement may use (default 1)")
    p.add_argument("--split-weights", action="store_true",
                   help="store each weight as two 8-bit synapses, a high and a low part (about 14-bit weights, "
                        "twice the synapse memory): for networks trained without 8-bit weights in mind")
    p.add_argument("-o", "--output", required=True, help="bundle file to write")
    _add_semantic_options(p, "semantics NIR leaves open (override the graph's metadata)")

    p = command("run", cmd_run, "run a bundle on a back end, writing the spike record")
    p.add_argument("bundle")
    p.add_argument("--data", required=True,
                   help="data set and split, e.g. yinyang:test, or seeded random input spike trains, "
                        "random[:rate=0.05,seed=0] (spikes per channel and step)")
    p.add_argument("--samples", type=int, help=f"use the first N samples (random spike trains: N of them, default "
                   f"{DEFAULT_RANDOM_SAMPLES})")
    p.add_argument("--backend", default="bitsim", help=f"one of {', '.join(backends.BACKENDS)}")
    p.add_argument("--engine", choices=bitsim.ENGINES, help=ENGINE_HELP)
    p.add_argument("--record-state", action="store_true", help="also record u and v at every step")
    p.add_argument("-o", "--output", required=True, help="spike record to write (HDF5, e.g. run.h5)")

    p = command("verify", cmd_verify, "run a bundle and compare it with the float model")
    p.add_argument("graph", help="the NIR file the bundle was compiled from")
    p.add_argument("bundle")
    p.add_argument("--data", required=True,
                   help="data set and split, e.g. yinyang:test, or seeded random input spike trains, "
                        "random[:rate=0.05,seed=0] (spikes per channel and step)")
    p.add_argument("--samples", type=int, help=f"use the first N samples (random spike trains: N of them, default "
                   f"{DEFAULT_RANDOM_SAMPLES})")
    p.add_argument("--backend", default="bitsim", help=f"one of {', '.join(backends.BACKENDS)}")
    p.add_argument("--engine", choices=bitsim.ENGINES, help=ENGINE_HELP)
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="compare in N local processes, the samples split between them (the same verdict)")
    p.add_argument("--json", help="write the metrics as JSON here")
    p.add_argument("--replay", metavar="RECORD", help="verify a stored spike record (from `snn-deploy run -o`, "
                   "e.g. recorded on a chip) instead of running a back end; its bundle checksum must match")
    p.add_argument("--report", metavar="HTML", help="write a self-contained HTML report here")
    g = p.add_argument_group("tolerances (default: the model's tolerance file, <model>.tolerances.toml or "
                             "snn-deploy.toml beside the NIR file, else the values below)")
    defaults = Tolerances()
    g.add_argument("--max-accuracy-drop", type=float,
                   help=f"float - chip accuracy (default {defaults.max_accuracy_drop})")
    g.add_argument("--min-agreement", type=float,
                   help=f"chip/float decision agreement (default {defaults.min_agreement})")
    g.add_argument("--max-spike-time-error-p95", type=float,
                   help=f"per layer, in steps (default {defaults.max_spike_time_error_p95 or 'not checked'})")
    g.add_argument("--max-hardware-events", type=int,
                   help=f"24-bit current wraps allowed (default {defaults.max_hardware_events})")
    p.add_argument("--dt", type=float, help="the time step the bundle was compiled with (checked, not changed)")
    _add_semantic_options(p, "semantics (read from the bundle, as compiled; an option given must agree with it)")

    p = command("demo", cmd_demo, "the shipped Yin-Yang TTFS model through export, compile, bitsim and verify")
    p.add_argument("--out", default="demo-out", help="folder for the demo's files (default ./demo-out)")
    p.add_argument("--samples", type=int, help="verify on the first N test samples (default: all 1000)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DeployError, BackendUnavailable) as exc:
        print(f"snn-deploy {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except LavaRunError as exc:
        print(f"snn-deploy {args.command}: the back end failed:\n{exc}", file=sys.stderr)
        return EXIT_BACKEND_FAILED
    except KeyboardInterrupt:
        print(f"snn-deploy {args.command}: interrupted; no output was written", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
