"""The main job: the shipped Yin-Yang TTFS model through export, compile, bitsim and verify.

It runs the same commands a user would type, printing each one, so the demo doubles as a tour.
"""

from __future__ import annotations

import time
from pathlib import Path

DEMO_MODEL = "yinyang-ttfs"


def demo_commands(out: Path, samples: int | None) -> list[list[str]]:
    nir_file, bundle_file = out / f"{DEMO_MODEL}.nir", out / f"{DEMO_MODEL}.bundle"
    sample_option = ["--samples", str(samples)] if samples else []
    return [
        ["export", DEMO_MODEL, "-o", str(nir_file)],
        ["compile", str(nir_file), "--target", "loihi2", "-o", str(bundle_file)],
        ["run", str(bundle_file), "--backend", "bitsim", "--data", "yinyang:test", *sample_option,
         "-o", str(out / f"{DEMO_MODEL}.run.h5")],
        ["verify", str(nir_file), str(bundle_file), "--backend", "bitsim", "--data", "yinyang:test",
         *sample_option, "--json", str(out / "verify.json")],
    ]


def run_demo(out: Path, samples: int | None = None, quiet: bool = False) -> int:
    from .cli import main

    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    code = 0
    for argv in demo_commands(out, samples):
        if not quiet:
            print(f"\n$ snn-deploy {' '.join(argv)}")
        code = main([*argv, *(["--quiet"] if quiet else [])])
        if code != 0:
            break
    if not quiet:
        print(f"\ndemo finished in {time.perf_counter() - start:.1f} s; files in {out}/")
    return code
