"""verify split by samples, timed by hand: `.venv/bin/python tools/bench/split_verify.py [--rounds N]`.

- ``verify --workers 2`` vs one process: the full Yin-Yang test set (1000 samples), zoo model, bitsim's default
  engine, through ``snn_deploy.deploy.verify`` (what the CLI runs), alternating round by round;
- the overhead of a Dask LocalCluster (loopback, worker processes, one thread each) per 1000 samples: a
  one-worker cluster against one process (the same work, so the difference is the scheduler's and the worker's
  cost), and a two-worker cluster (what splitting gains on this machine), alternating; the cluster's start-up
  apart. Dask's nanny starts its workers with MALLOC_TRIM_THRESHOLD_=65536, which turns off glibc's adaptive
  mmap threshold: numpy's large temporaries are then mapped and unmapped afresh each time, and numpy code (the
  reference engine, the float references) runs several times slower. The clusters here leave it unset
  (``TRIM_UNSET``), one cluster keeps Dask's setting, to show the difference.

Prints a markdown section for tools/bench/RESULTS.md. Every figure carries the load average of this 2-core
machine, shared with other work, when it was taken.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dask
import distributed

from snn_deploy.deploy import compile_network, export, load_graph, verify
from snn_deploy.models import zoo
from snn_deploy.targets import bundle as bundle_io
from snn_deploy.targets import description

DATA = "yinyang:test"  # 1000 samples
# The config key that, None, has Dask's nanny leave MALLOC_TRIM_THRESHOLD_ unset in the workers (distributed's
# nanny._get_env_variables skips keys set to None).
TRIM_UNSET = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}

# What a fresh worker process does before its first sample: import the stages, load the bundle, run one sample
# (numba's kernels loaded from its on-disk cache).
WORKER_START = """
import sys
from snn_deploy.deploy.stages.stimulus import data_spec, load_stimulus_part
from snn_deploy.targets import bitsim, bundle
loaded = bundle.load(sys.argv[1])
bitsim.run(loaded, load_stimulus_part(data_spec("yinyang:test", 1, loaded), loaded, 0, 1).inputs)
"""


# (row, workers, Dask config while the cluster starts)
CLUSTERS = [("LocalCluster, 1 worker x 1 thread", 1, TRIM_UNSET),
            ("LocalCluster, 2 workers x 1 thread", 2, TRIM_UNSET),
            ("LocalCluster, 1 worker x 1 thread, Dask's MALLOC_TRIM_THRESHOLD_=65536", 1, {})]


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def timed(function) -> tuple[float, dict]:
    start = time.perf_counter()
    verdict = function()
    return time.perf_counter() - start, verdict.to_dict()


def spread(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    values = [v * scale for v in values]
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}..{max(values):.{digits}f})"


def alternate(rounds: int, runs: dict) -> dict:
    """Each run once per round, in turn; per run its times, and the loads seen. Every verdict must be the first."""
    times = {name: [] for name in runs}
    loads, reference = [], None
    for _ in range(rounds):
        loads.append(load_average())
        for name, run in runs.items():
            seconds, verdict = timed(run)
            reference = verdict if reference is None else reference
            assert verdict == reference, f"{name}: a different verdict"
            times[name].append(seconds)
    return {"times": times, "loads": loads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as folder:
        graph, bundle_path = Path(folder) / "yy.nir", Path(folder) / "yy.bundle"
        export(zoo.load("yinyang-ttfs"), graph)
        bundle_io.save(compile_network(load_graph(graph), description.load("loihi2")), bundle_path)

        def run(**split):
            return lambda: verify(graph, bundle_path, DATA, **split)

        run()()  # numba's kernels loaded (or compiled) in this process before any timing
        starts = []
        for _ in range(3):
            load, start = load_average(), time.perf_counter()
            subprocess.run([sys.executable, "-c", WORKER_START, str(bundle_path)], check=True)
            starts.append((time.perf_counter() - start, load))
        local = alternate(rounds, {"one process": run(), "--workers 2": run(workers=2)})

        clusters, startups = {}, {}
        for name, workers, config in CLUSTERS:
            start, load = time.perf_counter(), load_average()
            with dask.config.set(config):
                clusters[name] = distributed.LocalCluster(host="127.0.0.1", n_workers=workers, threads_per_worker=1,
                                                          processes=True, dashboard_address=None)
            startups[name] = (time.perf_counter() - start, load)
        try:
            for cluster in clusters.values():
                run(scheduler=cluster.scheduler_address)()  # each worker loads the kernels once, untimed
            dask_runs = alternate(rounds, {"one process": run(),
                                           **{name: run(scheduler=c.scheduler_address) for name, c in clusters.items()}})
        finally:
            for cluster in clusters.values():
                cluster.close()

    one, two = local["times"]["one process"], local["times"]["--workers 2"]
    print("## verify split by samples: --workers and --scheduler (Dask)\n")
    print(f"`tools/bench/split_verify.py --rounds {rounds}`: the full Yin-Yang verify (zoo model, {DATA}, 1000 samples, "
          "both float references, bitsim's default engine) through `snn_deploy.deploy.verify`, as the CLI runs it; "
          "the runs of each table alternating round by round, median (min..max) over the rounds. Every verdict "
          "equal, key for key, to the one-process verdict (checked on every round).\n")
    print("| run | seconds | vs one process | load |")
    print("|---|---|---|---|")
    print(f"| one process | {spread(one)} | 1 | {min(local['loads'])}..{max(local['loads'])} |")
    print(f"| `--workers 2` | {spread(two)} | {spread([a / b for a, b in zip(one, two)])}x faster | "
          f"{min(local['loads'])}..{max(local['loads'])} |")
    print()
    print("A fresh worker process's start-up (import, bundle, one sample with the kernels from numba's cache), paid "
          "by every `--workers` process on every verify: " + ", ".join(f"{seconds:.2f} s (load {load})"
                                                                         for seconds, load in starts) + ".\n")
    single = dask_runs["times"]["one process"]
    loads = f"{min(dask_runs['loads'])}..{max(dask_runs['loads'])}"
    print("| run (per 1000 samples) | seconds | minus one process | load |")
    print("|---|---|---|---|")
    print(f"| one process | {spread(single)} | 0 | {loads} |")
    for name, _, _ in CLUSTERS:
        times = dask_runs["times"][name]
        print(f"| {name} | {spread(times)} | {spread([a - b for a, b in zip(times, single)], 1000, 0)} ms | {loads} |")
    print()
    print("Cluster start-up (not in the figures above): " + "; ".join(
        f"{name.removeprefix('LocalCluster, ')} {seconds:.2f} s (load {load})"
        for name, (seconds, load) in startups.items()) + ".")


if __name__ == "__main__":
    main()
