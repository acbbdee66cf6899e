"""snn-deploy: the command line, a thin layer over the pipeline functions.

Exit codes (``ExitCode``, listed by ``--help``): each means one thing, so that CI can tell a failed
deployment (1) from bad input (2), a failing back end (3) and a bug in snn-deploy (4).
Every command writes its outputs through one ``OutputSet``: all of them appear, or none.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
import shlex
import signal
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ...targets import backends, bitsim
from ...targets import bundle as bundle_io
from ...targets import description
from ...targets import record as record_io
from ...targets.decision import MEMBRANE_DECODINGS, SPIKE_DECODINGS
from ...targets.files import OutputSet
from ...targets.lava import LavaRunError
from ..artifacts.robustness import PERTURBATIONS
from ..artifacts.semantics import FIELDS, semantic_overrides
from ..artifacts.stimulus import DataOptions
from ..artifacts.tolerances import Tolerances
from ..artifacts.tuning import TuningSettings
from ..errors import BAD_INPUT_ERRORS, DeployError, missing_extra, require_extra
from ..reporting.text import (format_delays, format_placement, format_quantization, format_recommendation,
                              format_stock, format_summary, format_tuning)
from ..stages.calibrate import DEFAULT_CALIBRATION_SAMPLES
from ..stages.compile import AUTO_CALIBRATION
from ..stages.finetune import DEFAULT_TUNING_SAMPLES
from ..stages.stimulus import (DEFAULT_RANDOM_SAMPLES, load_stimulus, reading_arguments, require_labels,
                                select_data, time_mapping_note)


class ExitCode(enum.IntEnum):
    """What an exit status means, one thing each; the ``--help`` epilog is written from here."""

    def __new__(cls, code: int, meaning: str):
        member = int.__new__(cls, code)
        member._value_ = code
        member.meaning = meaning
        return member

    PASSED = 0, "success (verify: every tolerance met)"
    TOLERANCE_EXCEEDED = 1, "verify: a tolerance was exceeded"
    BAD_INPUT = 2, "bad input (one line on stderr names it)"
    BACKEND_FAILED = 3, "the back end failed (its traceback on stderr)"
    INTERNAL_ERROR = 4, "an internal error, a bug in snn-deploy (its traceback on stderr: please report it)"
    INTERRUPTED = 130, "interrupted (Ctrl-C)"
    TERMINATED = 143, "terminated (SIGTERM)"


# What an HTML report may be called: another suffix (r.pdf) would hold a page its name says it is not.
REPORT_SUFFIXES = (".html", ".htm")


class Terminated(KeyboardInterrupt):
    """A SIGTERM, raised where the command is, so that it stops as Ctrl-C stops it: its outputs whole or not at
    all, a Lava worker stopped."""


def _raise_terminated(signum, frame):
    raise Terminated


@contextmanager
def _sigterm_stops_the_command() -> Iterator[None]:
    """SIGTERM raises Terminated while the command runs (Python's default would end the process where it stands,
    temp files and all); only the main thread can set a handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_codes_epilog() -> str:
    return ("exit codes: " + "; ".join(f"{code.value} {code.meaning}" for code in ExitCode)
            + ". Outputs are written whole or not at all.")


# --- helpers ----------------------------------------------------------------------------------

def _print(line: str) -> None:
    """One line on stdout. A reader that leaves early (``snn-deploy zoo | head -3``, ``verify ... | grep -m1 PASS``)
    ends the lines, not the command: the rest go to /dev/null, and the files and the exit code are the command's."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # also for what print left in the buffer, flushed at exit
        os.close(devnull)


def _say(args, *lines: str) -> None:
    if not getattr(args, "quiet", False):
        for line in lines:
            _print(line)


@contextmanager
def _progress(args, total: int, what: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on a terminal; nothing when piped or with --quiet."""
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        yield None
        return
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm comes with the torch extra: without it, no bar
        yield None
        return

    with tqdm(total=total, desc=what, unit="sample", leave=False) as bar:
        yield bar.update


def _load_model(name_or_path: str, outputs: OutputSet):
    """A zoo model or checkpoint; its files are inputs no output may overwrite."""
    from ...models import zoo

    try:
        model = zoo.load(name_or_path)
    except ValueError as exc:
        raise DeployError(str(exc).splitlines()[0]) from None
    checkpoint = zoo.checkpoint_path(name_or_path)
    outputs.protect(checkpoint, zoo.sidecar_path(checkpoint))
    return model


def _semantic_overrides(args) -> dict:
    return semantic_overrides(**{name: getattr(args, name, None) for name in (
        "time_unit", "fire_once", "reset", "decoding", "duration", "spike", "integration")})


def _data_options(args) -> DataOptions:
    # Each option's dest is its DataOptions field; compile has no --labels (calibration compares with the float
    # model's decisions, never with labels).
    return DataOptions(**{field.name: getattr(args, field.name, None) for field in dataclasses.fields(DataOptions)})


def _note(args, note: str | None) -> None:
    """A likely mistake the command went on with (a stage's note, None: none), said on stderr even with --quiet."""
    if note:
        print(f"snn-deploy {args.command}: {note}", file=sys.stderr)


def _data_lines(report, num_samples: int) -> list[str]:
    """How the user's data were read: said, never left to be guessed (nothing for the shipped data sets)."""
    if report is None:
        return []
    steps = ([] if report.data_steps in (None, report.input_steps) else
             [f"  steps: the data have {report.data_steps}, the run {report.input_steps} input steps ("
              + ("the rest silent)" if report.data_steps < report.input_steps else
                 f"the data's last {report.data_steps - report.input_steps} cropped)")])
    return [f"data: {report.source}", f"  time: {report.time_mapping}", *steps,
            f"  {report.events} input events: {report.cropped_events} after the run's {report.input_steps} input steps "
            f"(cropped), {report.merged_events} merged into a spike already on their channel and step; "
            f"{report.empty_samples} of {num_samples} samples without any input spike"]


def _load_graph(path: str, args):
    from ..stages.load import load

    return load(path, _semantic_overrides(args))


# --- commands: each takes the parsed options and the OutputSet its outputs go through ------------

def cmd_zoo(args, outputs: OutputSet) -> int:
    from ...models import zoo

    for name in zoo.names():
        model = zoo.load(name)
        acc = model.meta.get("accuracy", {}).get("test")
        _print(f"{name:24s} {model.dataset:10s} test accuracy {acc:.4f}" if acc is not None else name)
    for name in zoo.graph_names():  # trained elsewhere, kept as the NIR graph its library exported
        graph = zoo.graph_description(name)
        _print(f"{name:24s} {graph['dataset']:10s} test accuracy {graph['meta']['accuracy']['test']:.4f} "
              f"(NIR graph {zoo.graph_path(name)})")
    return ExitCode.PASSED


def cmd_targets(args, outputs: OutputSet) -> int:
    for name in description.names():
        try:
            target = description.load(name)
        except description.TargetError as exc:
            _print(f"{name:12s} (unusable: {exc})")
            continue
        boards = ", ".join(f"{board} ({chips} chip{'s' if chips != 1 else ''})" for board, chips in target.boards)
        _print(f"{name:12s} {target.description}" + (f"; boards: {boards}" if boards else ""))
    return ExitCode.PASSED


def cmd_train(args, outputs: OutputSet) -> int:
    from ...models import zoo
    from ...models.train import train_digits_ttfs, train_yinyang_ttfs
    from ...models.train_multispike import train_digits_multispike, train_yinyang_multispike

    trainers = {"yinyang-ttfs": train_yinyang_ttfs, "digits-ttfs": train_digits_ttfs,
                "yinyang-multispike": train_yinyang_multispike, "digits-multispike": train_digits_multispike}
    if args.model not in trainers:
        raise DeployError(f"no trainer for {args.model!r}; trainable models: {', '.join(trainers)}")
    kwargs = {"seed": args.seed, "progress": not args.quiet and sys.stderr.isatty()}
    if args.epochs is not None:
        if args.epochs < 1:
            raise DeployError(f"--epochs must be at least 1, got {args.epochs}")
        kwargs["epochs"] = args.epochs
    if args.refit is not None:
        kwargs["refit"] = args.refit
    out = Path(args.output or f"{args.model}.npz")
    checkpoint, sidecar = outputs.reserve(out), outputs.reserve(zoo.sidecar_path(out))
    model = trainers[args.model](**kwargs)
    zoo.save(model, checkpoint, sidecar=sidecar)
    outputs.commit()
    _say(args, f"test accuracy {model.meta['accuracy']['test']:.4f}; wrote {out}")
    return ExitCode.PASSED


def cmd_export(args, outputs: OutputSet) -> int:
    from ..stages.export import export, to_nir

    model = _load_model(args.model, outputs)
    out = Path(args.output)
    outputs.reserve(out)
    shape = " -> ".join(f"{w.shape[1]}" for w in model.weights) + f" -> {model.weights[-1].shape[0]}"
    if args.format == "nir":
        outputs.stage(out, lambda tmp: export(model, tmp))
        outputs.commit()
        _say(args, f"wrote {out} (NIR graph of {model.name}: {shape})")
        return ExitCode.PASSED
    from ..references.onnx import export_onnx
    from ..stages.compile import check_steps, choose_timing
    from ..stages.discretize import discretize
    from ..stages.load import from_graph

    net = from_graph(to_nir(model))
    # Snapped for the compile command's default target, so that the reference matches its bundles.
    timing = choose_timing(net, args.steps_per_tau, snap_decay=not args.no_snap,
                           decay_bits=description.load("loihi2").widths.decay_bits)
    check_steps(net, timing)
    outputs.stage(out, lambda tmp: export_onnx(net, discretize(net, timing.dt), timing.num_steps, tmp))
    outputs.commit()
    _say(args, f"wrote {out} (ONNX, the discrete float reference of {model.name}: {shape}, unrolled over "
               f"T = {timing.num_steps} steps of dt = {timing.dt:.6g} {timing.time_unit}; batch axis dynamic)")
    return ExitCode.PASSED


def cmd_compile(args, outputs: OutputSet) -> int:
    from ..stages.compile import compile_network, implied_dt_note

    target = description.load(args.target)
    if args.max_chips < 1:
        raise DeployError(f"--max-chips must be at least 1, got {args.max_chips}")
    outputs.protect(args.graph, target.path)
    out = Path(args.output)
    outputs.reserve(out)
    net = _load_graph(args.graph, args)
    compiled = compile_network(net, target, args.steps_per_tau, snap_decay=not args.no_snap,
                               max_chips=args.max_chips, dt=args.dt, split_weights=args.split_weights,
                               stock=args.stock, threshold_spread=args.threshold_spread,
                               calibrate=None if args.calibrate == NO_CALIBRATION else args.calibrate,
                               calibrate_samples=args.calibrate_samples, calibrate_options=_data_options(args),
                               round_delays=args.round_delays)
    outputs.stage(out, lambda tmp: bundle_io.save(compiled, tmp))
    outputs.commit()
    _note(args, implied_dt_note(net, compiled.timing.dt))
    sem = net.semantics
    _say(args,
         f"compiled {args.graph} for {target.name}: {len(net.layers)} layers, "
         f"{sum(p.size for p in compiled.network.populations)} neurons on {compiled.placement.cores_used} cores",
         f"semantics: time unit {sem.time_unit}, fire_once={sem.fire_once}, reset={sem.reset}, "
         f"spike={sem.spike}, integration={sem.integration}, decoding={sem.decoding}, horizon={sem.horizon:g} ({', '.join(f'{k} from {v}' for k, v in sem.origin.items())})",
         f"time step: dt = {compiled.timing.dt:.6g} {sem.time_unit} ({1 / compiled.timing.dt:.2f} steps per "
         f"{sem.time_unit}{', snapped so the 12-bit decay is exact' if compiled.report.snapped_dt else ''}), "
         f"{compiled.timing.num_steps} steps per sample" + (f", the last {compiled.timing.latency_steps} of them the "
                                                             f"pipeline latency of {sem.integration} integration "
                                                             "(one step per layer)" if compiled.timing.latency_steps
                                                             else ""),
         *format_quantization(compiled.report.quantization),
         *format_placement(compiled.placement, target),
         *format_stock(compiled.report.stock),
         *format_calibration(compiled.report.calibration),
         *format_recommendation(compiled.report.recommendation),
         *format_delays(compiled.report.delays, sem.time_unit),
         f"wrote {out}")
    return ExitCode.PASSED


def format_calibration(report) -> list[str]:
    """What ``compile --calibrate`` measured on its data, a row per layer (no calibration: no lines)."""
    if report is None:
        return []
    if not report.layers:
        return [f"calibration on {report.data}: no layer to calibrate (readouts and layers with delayed inputs keep "
                f"their rounded integers); decisions equal to the float model's {report.decision_agreement_before:.1%}"]
    lines = [f"calibrated on {report.data} ({report.samples} samples): decisions equal to the float model's "
             f"{report.decision_agreement_before:.1%} -> {report.decision_agreement_after:.1%}, "
             + ("calibrated integers kept" if report.applied else "default integers kept (calibration decided worse)"),
             "layer   membrane err (thresholds)  spike-count agreement  rounded other way  blocks added"]
    for name, r in report.layers.items():
        lines.append(f"{name:7s} {r.membrane_error_before:9.3g} -> {r.membrane_error_after:<9.3g}  "
                     f"{r.spike_agreement_before:9.1%} -> {r.spike_agreement_after:<9.1%} {r.rounded_other_way:17d}  "
                     f"{r.blocks_added:12d}")
    return lines


NO_CALIBRATION = "none"


ENGINE_HELP = (f"bitsim's engine: compiled (numba, the extra 'compiled') or reference (numpy); the same records "
               f"bit for bit (default: {bitsim.default_engine()} here)")


def get_backend(name: str, bundle):
    try:
        return backends.get(name, bundle)
    except ValueError as exc:
        raise DeployError(str(exc)) from None


def cmd_run(args, outputs: OutputSet) -> int:
    from ..stages.run import run

    bundle = bundle_io.load(args.bundle)
    get_backend(args.backend, bundle)  # reject an unknown or unlisted back end before any work
    outputs.protect(args.bundle, *_data_inputs(args))
    out = Path(args.output)
    outputs.reserve(out)
    if args.record_state and args.format == "nir-data":
        raise DeployError("--record-state: state traces are kept in the HDF5 record (--format hdf5); NIR data "
                          "holds the spikes")
    stimulus = load_stimulus(args.data, args.samples, bundle, options=_data_options(args),
                             record_state=args.record_state)
    inputs = stimulus.inputs
    with _progress(args, inputs.num_samples, f"run on {args.backend}") as progress:
        result = run(bundle, stimulus, backend=args.backend, record_state=args.record_state, progress=progress,
                     engine=args.engine)
    if args.format == "nir-data":
        outputs.stage(out, lambda tmp: record_io.save_nir_data(result, stimulus.inputs, bundle, tmp))
    else:
        outputs.stage(out, lambda tmp: record_io.save(result, tmp))
    outputs.commit()
    _note(args, time_mapping_note(stimulus.report))
    events = ", ".join(f"{name}: {c.get('current_wraps', 0)} current wraps, {c.get('voltage_saturations', 0)} "
                       f"voltage saturations" for name, c in result.counters.items())
    _say(args, *_data_lines(stimulus.report, inputs.num_samples), f"ran {inputs.num_samples} samples x {result.num_steps} steps on {args.backend} ({events}); "
               f"wrote {out}")
    return ExitCode.PASSED


def _data_inputs(args) -> list[str]:
    """The user's data files, which no output may overwrite."""
    return [path for path in (args.data, args.labels) if path and Path(path).is_file()]


def _load_replay(path: str, bundle, stimulus):
    """A stored spike record, checked to come from this bundle and this data selection."""
    from ..stages.run import check_replay

    return check_replay(record_io.load(path), bundle, stimulus, path)


def cmd_verify(args, outputs: OutputSet) -> int:
    from ..stages.tolerances import load_tolerances, tolerance_file
    from ..stages.robustness import parse_robustness
    from ..stages.verify import compare_stimulus, judge, reference_network, robustness_levels

    robustness = parse_robustness(args.robustness) if args.robustness else None
    if robustness is not None and args.replay:
        raise DeployError("--robustness runs the back end on perturbed inputs; it cannot take a --replay record")
    bundle = bundle_io.load(args.bundle)
    net = reference_network(args.graph, bundle, _semantic_overrides(args), dt=args.dt)
    applied = tolerance_file(args.graph)
    outputs.protect(args.graph, args.bundle, *(path for path in (args.replay, applied) if path), *_data_inputs(args))
    json_out = Path(args.json) if args.json else None
    report_out = Path(args.report) if args.report else None
    if report_out:
        if report_out.suffix.lower() not in REPORT_SUFFIXES:
            raise DeployError(f"--report writes an HTML page: name it .html, not {report_out.name}")
        require_extra("report", "--report")  # before the run, not after it
    for path in (json_out, report_out):
        if path:
            outputs.reserve(path)
    # Split, data named by a spec are loaded by the workers, each its own samples: here only named and counted.
    # Robustness perturbs the samples here, so it loads them here (the perturbed parts travel to the workers).
    split = args.replay is None and robustness is None and (args.workers != 1 or args.scheduler is not None)
    stimulus = select_data(args.data, args.samples, bundle, options=_data_options(args), references=True, split=split)
    if args.max_accuracy_drop is not None:
        require_labels(stimulus, "--max-accuracy-drop")
    replay = _load_replay(args.replay, bundle, stimulus) if args.replay else None
    tolerances = load_tolerances(args.graph, {
        "max_accuracy_drop": args.max_accuracy_drop, "min_agreement": args.min_agreement,
        "max_spike_time_error_p95": args.max_spike_time_error_p95, "max_hardware_events": args.max_hardware_events},
        spelled=lambda field: "--" + field.replace("_", "-"))
    get_backend(args.backend, bundle)  # reject an unknown name, or one the bundle's target lacks, before any work
    with _progress(args, stimulus.num_samples, f"verify on {args.backend}") as progress:
        comparison, report = compare_stimulus(net, bundle, stimulus, backend=args.backend, progress=progress,
                                              record=replay, engine=args.engine, workers=args.workers,
                                              scheduler=args.scheduler)
    levels = ()
    if robustness is not None:
        with _progress(args, stimulus.num_samples * len(robustness.perturbations), "robustness levels") as progress:
            levels = robustness_levels(net, bundle, stimulus, robustness, backend=args.backend, engine=args.engine,
                                       workers=args.workers, scheduler=args.scheduler, progress=progress)
    verdict = judge(comparison, net, bundle, dataset=stimulus.name, tolerances=tolerances, data=report,
                    robustness=levels)
    if json_out:
        outputs.stage(json_out, verdict.to_json().encode())
    if report_out:
        from ..reporting.html import write_report
        outputs.stage(report_out, lambda tmp: write_report(tmp, comparison, verdict, net, bundle))
    outputs.commit()
    _note(args, time_mapping_note(report))
    _say(args, *_data_lines(report, stimulus.num_samples), *format_summary(verdict), *([f"  tolerances from {applied}"] if applied else []),
         *[f"  wrote {path}" for path in (json_out, report_out) if path])
    return ExitCode.PASSED if verdict.passed else ExitCode.TOLERANCE_EXCEEDED


def cmd_finetune(args, outputs: OutputSet) -> int:
    import nir

    from ..stages.finetune import finetune
    from ..stages.load import read_nir

    target = description.load(args.target)
    outputs.protect(args.graph, target.path)
    out = Path(args.output)
    outputs.reserve(out)
    net = _load_graph(args.graph, args)
    settings = TuningSettings(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                              decision_weight=args.decision_weight, label_weight=args.label_weight, seed=args.seed,
                              split_weights=args.split_weights, calibrate=args.calibrate)

    def said(record) -> None:
        _say(args, f"epoch {record.epoch}: loss {record.loss:.4g}, chip decisions like the original's "
                   f"{record.chip_agreement:.1%}" + (" (the original weights)" if record.epoch == 0 else ""))

    _say(args, f"tuning {args.graph} for {target.name} on {args.data}: {settings.epochs} epochs, each measured on "
               "bitsim (epoch 0, the original weights, first)")
    tuned = finetune(read_nir(args.graph), net, target, args.data, settings, samples=args.samples, dt=args.dt,
                     options=_data_options(args), progress=said)
    outputs.stage(out, lambda tmp: nir.write(tmp, tuned.graph))
    outputs.commit()
    report = tuned.report
    _say(args, *format_tuning(report),
         f"wrote {out}; compile it as it was measured (" + " ".join(
             ([f"--calibrate {shlex.quote(str(args.data))} --calibrate-samples {report.samples}",
               *reading_arguments(_data_options(args))] if args.calibrate else ["--calibrate none"])
             + (["--split-weights"] if args.split_weights else [])
             + ([f"--dt {args.dt:g}"] if args.dt is not None else []))
         + f"), then verify the bundle against the original: snn-deploy verify {args.graph} BUNDLE --data ...")
    return ExitCode.PASSED


def cmd_demo(args, outputs: OutputSet) -> int:
    from .demo import demo_commands

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeployError(f"cannot make the demo folder {out}: {exc.strerror or exc.__class__.__name__}") from None
    start = time.perf_counter()
    for argv in demo_commands(out, args.samples):
        _say(args, f"\n$ snn-deploy {' '.join(argv)}")
        code = main([*argv, *(["--quiet"] if args.quiet else [])])
        if code != ExitCode.PASSED:
            return code
    _say(args, f"\ndemo finished in {time.perf_counter() - start:.1f} s; files in {out}/")
    return ExitCode.PASSED


# --- parser -----------------------------------------------------------------------------------

def _add_semantic_options(p: argparse.ArgumentParser, title: str) -> None:
    g = p.add_argument_group(title)
    g.add_argument("--time-unit", choices=FIELDS["time_unit"].choices, help="unit of time constants and spike times")
    g.add_argument("--reset", choices=FIELDS["reset"].choices, help="reset after a spike")
    g.add_argument("--decoding", choices=FIELDS["decoding"].choices,
                   help=f"how outputs give a decision: {', '.join(SPIKE_DECODINGS)} for a spiking output, "
                        f"{', '.join(MEMBRANE_DECODINGS)} for a readout's membrane (LI, CubaLI, I). Ties: "
                        "spike_count's go to the earliest first spike, every other decoding's to the lowest index "
                        "(spike_count_argmax is torch.argmax of the counts: a silent output decides class 0)")
    g.add_argument("--duration", type=float, help="run length of one sample, in time units")
    g.add_argument("--spike", choices=FIELDS["spike"].choices,
                   help="an input spike of weight w is an impulse of area w (dirac, NIR's equations) or a pulse "
                        "of height w lasting one step (pulse, as discrete-time simulators treat it)")
    g.add_argument("--integration", choices=FIELDS["integration"].choices,
                   help="a time step integrates the equations exactly (exact), or as snnTorch and norse step "
                        "them (euler: current first, then voltage from the new current), or as sinabs steps its LIF "
                        "layers (exponential: v <- a v + (1 - a) x, a = exp(-dt/tau)); both simulator steps "
                        "advance a layer chain within one step")
    once = g.add_mutually_exclusive_group()
    once.add_argument("--fire-once", dest="fire_once", action="store_const", const=True,
                      help="neurons spike at most once (time-to-first-spike)")
    once.add_argument("--multi-spike", dest="fire_once", action="store_const", const=False,
                      help="neurons may spike many times")


def _add_time_step_options(p: argparse.ArgumentParser) -> None:
    from ..stages.compile import DEFAULT_STEPS_PER_TAU

    p.add_argument("--steps-per-tau", type=float, default=DEFAULT_STEPS_PER_TAU,
                   help="chip steps per time constant (the graph's most common membrane tau; per time unit without "
                        f"one), approximately (default {DEFAULT_STEPS_PER_TAU}; ignored with --dt)")
    p.add_argument("--no-snap", action="store_true",
                   help="use exactly tau/steps-per-tau as dt instead of snapping it to an exact 12-bit decay")


def _sensor_size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    try:
        size = int(width), int(height)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 32x32") from None
    return size


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """What a run is fed, and on which back end: run and verify alike."""
    p.add_argument("--backend", default="bitsim", help=f"one of {', '.join(backends.BACKENDS)}")
    p.add_argument("--engine", choices=bitsim.ENGINES, help=ENGINE_HELP)
    _add_input_options(p)


def _add_input_options(p: argparse.ArgumentParser, samples_default: str = f"random spike trains: N of them, default "
                       f"{DEFAULT_RANDOM_SAMPLES}") -> None:
    """The data a command reads: run, verify and finetune alike."""
    p.add_argument("--data", required=True,
                   help="the input: a data set split (yinyang:test, digits:test); a .npz of spikes (a raster 'spikes' "
                        "(samples, steps, channels), or events 'sample', 'channel' and 'step' or 'time' with "
                        "'time_unit'; optional 'labels'); NIR data (nir.write_data, .h5); a tonic data set "
                        "(nmnist:test, shd:test, ssc:test, dvsgesture:test) with --data-root; or seeded random input "
                        "spike trains, random[:rate=0.05,seed=0] (spikes per channel and step)")
    p.add_argument("--samples", type=int, help=f"use the first N samples ({samples_default})")
    g = p.add_argument_group("the user's data")
    g.add_argument("--labels", metavar="FILE", help="one integer class per sample, for data without labels: a .npy, "
                   "or a .npz holding one array or an array 'labels'")
    _add_reading_options(g)


def _add_reading_options(g) -> None:
    """How the user's data are read onto the input (all of DataOptions but --labels): every command that reads
    data, compile's --calibrate DATA included."""
    g.add_argument("--data-root", metavar="DIR", help="the folder of a tonic data set: what tonic was given as "
                   "save_to (holding e.g. NMNIST/), or the data set's own folder, downloaded or unpacked by hand")
    g.add_argument("--time-scale", type=float, metavar="S",
                   help="time-stamped events: the recording's seconds per network time unit (required for a graph "
                        "in tau or step; default 1 for a graph in seconds), e.g. 1e-3 for 1 ms per step")
    g.add_argument("--downsample", type=_sensor_size, metavar="WxH",
                   help="reduce a larger event sensor to WIDTHxHEIGHT (tonic's Downsample), e.g. 32x32")


class _Parser(argparse.ArgumentParser):
    """A bad option is bad input like any other: one line on stderr (argparse adds the usage), exit 2."""

    def error(self, message: str):
        self.exit(ExitCode.BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="snn-deploy", description="Deploy spiking neural networks to Loihi-style chips: export to NIR, compile "
        "to the chip's integers, run bit-accurately, verify against the float model.",
        epilog=exit_codes_epilog())
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
    p.add_argument("--round-delays", action="store_true",
                   help="round each Delay node's delay to the nearest whole step of dt (the largest error is in "
                        "the compile report); without it a delay that is not whole steps is an error")
    p.add_argument("--stock", action="store_true",
                   help="build the bundle from Loihi 2's stock processes only (LIF/LIFReset with one du, dv, vth "
                        "each, Dense): fire-once by helper neurons, per-sample reset by LIFReset with a clock and "
                        "one padding step; refuses subtractive reset")
    p.add_argument("--threshold-spread", type=float,
                   help="--stock: neurons whose own thresholds lie within this ratio share one process's vth "
                        "(1: one process per distinct threshold, exact; default 2)")
    p.add_argument("--calibrate", metavar="DATA", default=AUTO_CALIBRATION,
                   help="choose each layer's block exponents, weight rounding and bias correction on these data "
                        "(any --data source of run/verify, read as --data-root, --time-scale and --downsample say, "
                        "e.g. yinyang:train or random:rate=0.05,seed=1), against the float model; kept only if it "
                        "decides them at least as often like the float model. Below verify's default agreement "
                        "tolerance there, compile also measures --split-weights on the same samples and prints what it "
                        "would give (the bundle stays as asked). Default "
                        f"{AUTO_CALIBRATION}: the training split of the data set the graph names (a zoo model's "
                        f"export), else none; '{NO_CALIBRATION}': no calibration")
    p.add_argument("--calibrate-samples", type=int, metavar="N",
                   help=f"calibrate on the first N samples (default {DEFAULT_CALIBRATION_SAMPLES})")
    # No --labels: calibration measures decisions against the float model's, not against labels.
    _add_reading_options(p.add_argument_group("the user's data, for --calibrate DATA"))
    p.add_argument("-o", "--output", required=True, help="bundle file to write")
    _add_semantic_options(p, "semantics NIR leaves open (override the graph's metadata)")

    p = command("run", cmd_run, "run a bundle on a back end, writing the spike record")
    p.add_argument("bundle")
    _add_data_options(p)
    p.add_argument("--record-state", action="store_true", help="also record u and v at every step")
    p.add_argument("-o", "--output", required=True, help="spike record to write (HDF5, e.g. run.h5)")
    p.add_argument("--format", choices=["hdf5", "nir-data"], default="hdf5",
                   help="hdf5 (default; holds --record-state traces), or nir-data: NIR's data format "
                        "(nir.read_data reads it), the input's and every node's spikes as EventData by NIR node name")

    p = command("verify", cmd_verify, "run a bundle and compare it with the float model")
    p.add_argument("graph", help="the NIR file the bundle was compiled from")
    p.add_argument("bundle")
    _add_data_options(p)
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="compare in N local processes, the samples split between them (the same verdict); with "
                        "--scheduler, the number of parts (default: one per worker thread)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="split the samples between the workers of a Dask distributed scheduler instead, e.g. "
                        "tcp://HOST:8786 (the extra 'distributed'); each worker loads its own samples of a data "
                        "set split or random spike trains (the same verdict)")
    p.add_argument("--json", help="write the metrics as JSON here")
    p.add_argument("--replay", metavar="RECORD", help="verify a stored spike record (from `snn-deploy run -o`, "
                   "e.g. recorded on a chip) instead of running a back end; its bundle checksum must match")
    p.add_argument("--report", metavar="HTML", help="write a self-contained HTML report here")
    p.add_argument("--robustness", metavar="SPEC",
                   help="also run chip and float model on the same samples under seeded input noise, one run a "
                        "level: " + "; ".join(f"{kind}=L1,L2,... ({meaning})" for kind, meaning in PERTURBATIONS.items())
                        + "; seed=N (default 0); e.g. 'jitter=0.5,1,2;drop=0.05,0.1'")
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

    p = command("finetune", cmd_finetune, "adjust a NIR graph's float weights so that their 8-bit deployment decides "
                "like the original graph (chip-aware fine-tuning through the chip's discrete-time model), writing the "
                "tuned graph; compile it, then verify the bundle against the ORIGINAL graph")
    p.add_argument("graph", help="the NIR file to tune")
    p.add_argument("--target", default="loihi2", help="target name or .toml description (default loihi2)")
    p.add_argument("--dt", type=float, help="the time step to tune at, in the graph's time unit (as compile's --dt; "
                   "default: the one compile chooses); compile the tuned graph with the same")
    _add_input_options(p, f"default {DEFAULT_TUNING_SAMPLES}")
    tuning = TuningSettings()
    p.add_argument("--epochs", type=int, default=tuning.epochs, help=f"passes over the data (default {tuning.epochs})")
    p.add_argument("--batch-size", type=int, default=tuning.batch_size,
                   help=f"samples per update (default {tuning.batch_size})")
    p.add_argument("--learning-rate", type=float, default=tuning.learning_rate,
                   help="Adam's step, as a fraction of each parameter array's largest |value| (default "
                        f"{tuning.learning_rate:g})")
    p.add_argument("--decision-weight", type=float, default=tuning.decision_weight,
                   help="weight of the cross-entropy on the original model's decisions, against the relative squared "
                        f"error of its outputs (0: the outputs alone; default {tuning.decision_weight:g})")
    p.add_argument("--label-weight", type=float, default=tuning.label_weight,
                   help="weight of the cross-entropy on the labels, where the data have them (0: none; default "
                        f"{tuning.label_weight:g})")
    p.add_argument("--seed", type=int, default=tuning.seed, help=f"the order of the samples (default {tuning.seed})")
    p.add_argument("--split-weights", action="store_true", help="tune for a bundle compiled with --split-weights")
    p.add_argument("--calibrate", action=argparse.BooleanOptionalAction, default=tuning.calibrate,
                   help="measure each epoch as compile --calibrate on the tuning data deploys it (--no-calibrate: as "
                        "compile --calibrate none does); compile the tuned graph the same way (default: --calibrate)")
    p.add_argument("-o", "--output", required=True, help="the tuned NIR file to write")
    _add_semantic_options(p, "semantics NIR leaves open (override the graph's metadata; the tuned graph records them)")

    p = command("demo", cmd_demo, "the shipped Yin-Yang TTFS model through export, compile, bitsim and verify")
    p.add_argument("--out", default="demo-out", help="folder for the demo's files (default ./demo-out)")
    p.add_argument("--samples", type=int, help="verify on the first N test samples (default: all 1000)")
    return parser


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split("\n"))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_request:  # --help (0), or a bad option (2, already reported in one line)
        return int(exit_request.code or 0)
    command = f"snn-deploy {args.command}"
    outputs = OutputSet()
    try:
        with _sigterm_stops_the_command(), outputs:
            return args.func(args, outputs)
    except BAD_INPUT_ERRORS as exc:
        print(f"{command}: error: {_one_line(exc)}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except LavaRunError as exc:
        print(f"{command}: the back end failed:\n{exc}", file=sys.stderr)
        return ExitCode.BACKEND_FAILED
    except KeyboardInterrupt as stop:
        written = ", ".join(str(path) for path in outputs.committed)
        terminated = isinstance(stop, Terminated)
        print(f"{command}: {'terminated' if terminated else 'interrupted'}; "
              + (f"it had written {written}" if written else "no output was written"), file=sys.stderr)
        return ExitCode.TERMINATED if terminated else ExitCode.INTERRUPTED
    except Exception as exc:  # anything else is a bug in snn-deploy, never a verdict on the chip
        missing = missing_extra(exc) if isinstance(exc, ImportError) else None
        if missing is not None:  # an optional dependency the command needs: the installation's, not a bug
            print(f"{command}: error: {missing}", file=sys.stderr)
            return ExitCode.BAD_INPUT
        traceback.print_exc()
        print(f"{command}: internal error (exit {int(ExitCode.INTERNAL_ERROR)}): this is a bug in snn-deploy, not in "
              "your input; please report it with the command line and the traceback above", file=sys.stderr)
        return ExitCode.INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
