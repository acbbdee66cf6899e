"""Back end ``lava``: runs a bundle in Lava 0.10.0's bit-accurate CPU simulator, many samples per run.

Lava installs only on Python 3.10 with numpy < 2, so it lives in its own environment
(``.venv-lava``, made by ``./tools/setup-lava``) and runs there as a worker process,
``python -m snn_deploy.targets.lava_worker``. This module drives that worker: it writes the
bundle and the input spikes to a temp folder, starts the worker, relays its progress and reads
back the spike record (the wire format both sides share is ``lava_wire``). Its result equals
``bitsim.run``'s for the same bundle and inputs. The worker refuses a bundle whose widths Lava's
models do not compute in (``lava_worker.check_lava_widths``).

When Lava is already imported in this interpreter, the worker code runs in-process instead.
Importing Lava switches multiprocessing to the 'fork' start method for the whole interpreter,
so this module never imports it itself.

Which Lava interpreter runs the worker, first match wins:
  1. ``$SNN_DEPLOY_LAVA_PYTHON`` (an interpreter with Lava and this project installed);
  2. this interpreter, when it can import Lava;
  3. ``.venv-lava/bin/python`` at the root of this source tree, once ``./tools/setup-lava`` finished.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from .backends import BackendUnavailable
from .bundle import Bundle
from .bundle import save as save_bundle
from .lava_wire import DEFAULT_BATCH_SIZE, PROGRESS_PREFIX, REPORTED_ERRORS, check_inputs, write_events
from .record import SpikeEvents, SpikeRecord
from .record import load as load_record

BACKEND = "lava"
SETUP_COMMAND = "./tools/setup-lava"
WORKER_MODULE = "snn_deploy.targets.lava_worker"
PYTHON_ENV_VAR = "SNN_DEPLOY_LAVA_PYTHON"
# Written by tools/setup-lava as its last step: an environment without it is half-built.
COMPLETE_STAMP = ".snn-deploy-complete"
WORKER_STOP_GRACE_SECONDS = 10

ProgressCallback = Callable[[int], None]


class LavaRunError(RuntimeError):
    """Lava failed while running a bundle; the message holds the real traceback from Lava."""


def run(bundle: Bundle, inputs: SpikeEvents, *, record_state: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE, progress: ProgressCallback | None = None) -> SpikeRecord:
    """Run every sample of ``inputs`` through the bundle in Lava's CPU simulator (``fixed_pt`` models).

    ``batch_size`` samples share one Lava run; ``progress(n)`` is told of finished samples.
    Raises ``BackendUnavailable`` when no Lava environment is set up.
    """
    return run_in_lava(bundle, inputs, hardware=False, record_state=record_state,
                       batch_size=batch_size, progress=progress)


def run_in_lava(bundle: Bundle, inputs: SpikeEvents, *, hardware: bool, record_state: bool,
                batch_size: int, progress: ProgressCallback | None) -> SpikeRecord:
    """Run in the worker (CPU simulator, or Loihi 2 when ``hardware``): in-process if Lava is loaded."""
    check_inputs(bundle, inputs)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    if "lava" in sys.modules:
        from . import lava_worker
        return lava_worker.run_bundle(bundle, inputs, hardware=hardware, record_state=record_state,
                                      batch_size=batch_size, progress=progress)
    python = worker_python()
    with tempfile.TemporaryDirectory(prefix="snn-deploy-lava-") as exchange:
        return _run_worker_process(python, Path(exchange), bundle, inputs, hardware=hardware,
                                   record_state=record_state, batch_size=batch_size, progress=progress)


# --- finding the Lava environment -----------------------------------------------------------------

def repo_root() -> Path:
    """The source tree this module lives in (the project is installed editable)."""
    return Path(__file__).resolve().parent.parent


def worker_python() -> str:
    """The interpreter that runs the worker, or ``BackendUnavailable`` saying how to set one up."""
    configured = os.environ.get(PYTHON_ENV_VAR)
    if configured:
        if not Path(configured).is_file():
            raise BackendUnavailable(f"{PYTHON_ENV_VAR}={configured} does not exist; unset it to use "
                                     f"the environment that {SETUP_COMMAND} makes")
        return configured
    if importlib.util.find_spec("lava") is not None:
        return sys.executable
    venv = repo_root() / ".venv-lava"
    python = venv / "bin" / "python"
    if python.is_file() and (venv / COMPLETE_STAMP).is_file():
        return str(python)
    by_hand = f"set {PYTHON_ENV_VAR} to a Python 3.10 with lava-nc 0.10.0, numpy < 2 and snn-deploy installed"
    if not (repo_root() / SETUP_COMMAND).is_file():  # installed from a wheel: no source tree to build one in
        raise BackendUnavailable(f"no Lava environment: {by_hand}")
    state = "is incomplete" if venv.exists() else "is missing"
    raise BackendUnavailable(f"the Lava environment {venv} {state}: run {SETUP_COMMAND} (it needs Python 3.10), "
                             f"or {by_hand}")


# --- the worker process -------------------------------------------------------------------------

def _run_worker_process(python: str, exchange: Path, bundle: Bundle, inputs: SpikeEvents, *,
                        hardware: bool, record_state: bool, batch_size: int,
                        progress: ProgressCallback | None) -> SpikeRecord:
    paths = {"bundle": exchange / "bundle.npz", "inputs": exchange / "inputs.npz", "record": exchange / "record.h5"}
    error_file = exchange / "error.json"
    save_bundle(bundle, paths["bundle"])
    write_events(paths["inputs"], inputs)
    command = [python, "-m", WORKER_MODULE, "--bundle", str(paths["bundle"]), "--inputs", str(paths["inputs"]),
               "--output", str(paths["record"]), "--error-file", str(error_file),
               "--batch-size", str(batch_size), "--progress"]
    command += ["--record-state"] * record_state + ["--hardware"] * hardware
    stderr_path = exchange / "stderr.log"
    with open(stderr_path, "wb") as stderr:
        returncode = _supervise(command, stderr, progress)
    if returncode != 0:
        raise _worker_error(error_file, stderr_path, returncode)
    return load_record(paths["record"])


def _supervise(command: list[str], stderr, progress: ProgressCallback | None) -> int:
    """Run the worker to its end, relaying progress; stop it (and only it) on any exception or Ctrl-C.

    The worker gets a session of its own, so a Ctrl-C in the terminal reaches only this process,
    which then asks the worker to stop its Lava run cleanly.
    """
    worker = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                              text=True, start_new_session=True)
    try:
        for line in worker.stdout:
            if line.startswith(PROGRESS_PREFIX) and progress is not None:
                progress(int(line[len(PROGRESS_PREFIX):]))
        return worker.wait()
    except BaseException:
        _stop_worker(worker)
        raise
    finally:
        worker.stdout.close()


def _stop_worker(worker: subprocess.Popen) -> None:
    """Interrupt the worker (it stops its Lava run); kill its process group if it does not end in time.

    The group is the worker's own session: the worker and the Lava processes it forked, nothing else.
    """
    if worker.poll() is not None:
        return
    worker.send_signal(signal.SIGINT)
    try:
        worker.wait(timeout=WORKER_STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def _worker_error(error_file: Path, stderr_path: Path, returncode: int) -> Exception:
    if error_file.is_file():
        report = json.loads(error_file.read_text())
        return REPORTED_ERRORS.get(report["kind"], LavaRunError)(report["message"])
    tail = "\n".join(stderr_path.read_text(errors="replace").splitlines()[-40:])
    return LavaRunError(f"the Lava worker exited with code {returncode} without a report; "
                        f"its last output:\n{tail}")

