"""The main job: the shipped Yin-Yang TTFS model through export, compile, bitsim and verify.

It lists the same commands a user would type; ``snn-deploy demo`` prints and runs each one, so the
demo doubles as a tour.
"""

from __future__ import annotations

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
