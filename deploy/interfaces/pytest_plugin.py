"""A pytest plugin for your own repository's CI: does my model still deploy?

    def test_model_deploys(snn_verify):
        snn_verify("model.nir", "loihi2", data="test_spikes.npz", min_agreement=0.99)

``snn_verify(graph, target, data=..., labels=...)`` compiles the NIR file for the target (a target name
or .toml; or takes an already compiled bundle, a bundle file, .bundle or .npz, or a Bundle), runs it on a back end
(bitsim by default) over the data and compares it with the float model, through the same stages as
``snn-deploy compile`` and ``snn-deploy verify``. ``data`` is anything ``verify`` takes: a data set
split, a .npz or NIR data file, a tonic data set ("nmnist:test" with ``data_root``), seeded random
spike trains "random:rate=0.05,seed=0", or from Python a raster, a SpikeEvents, NIR data or a tonic
data set object; ``labels`` (an array, a sequence or a file), ``time_scale`` and ``downsample`` as the
command line's ``--labels``, ``--time-scale`` and ``--downsample``; ``workers`` and ``scheduler`` as verify's
``--workers`` and ``--scheduler`` (the samples split between local processes or a Dask scheduler's
workers; the same verdict). A relative path (the graph, a bundle, a
data or labels file, ``data_root``) is taken from the folder of the calling test file.
A graph from another tool states its semantics as keyword arguments named as the command line's
options: ``time_unit``, ``fire_once`` (False for ``--multi-spike``), ``reset``, ``decoding``,
``duration``, ``spike``, ``integration``; the time step as ``steps_per_tau`` or ``dt``, and
``split_weights``. Tolerances are the other keyword arguments (the fields of
``tolerances.Tolerances``) over the model's tolerance file (see ``tolerances``) over the defaults.
On success it returns the Verdict; otherwise the test fails with one line naming the bad input, or
a table of each tolerance, measured against allowed, and no library traceback.

Installed with snn-deploy as a ``pytest11`` entry point; ``-p snn_deploy.deploy.testing`` loads it
explicitly. It imports nothing beyond pytest until a test uses the fixture.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def verdict_of(nir_file: Path, *, target, data, samples: int | None, backend: str, steps_per_tau: float | None,
               dt: float | None, split_weights: bool, semantics: dict, tolerances: dict, **data_options):
    """compile (unless ``target`` is a bundle) + verify through the stages, as the CLI's compile and verify
    run them."""
    from ...targets import backends, description
    from ...targets.bundle import Bundle
    from ...targets import bundle as bundle_io
    from ..artifacts.semantics import semantic_overrides
    from ..errors import DeployError
    from ..stages.compile import DEFAULT_STEPS_PER_TAU, compile_network
    from ..stages.load import load
    from ..stages.tolerances import load_tolerances
    from ..stages.verify import reference_network, verify

    load_tolerances(nir_file, tolerances)  # a bad tolerance is refused before any compile
    try:
        backends.get(backend)
    except ValueError as exc:
        raise DeployError(str(exc)) from None
    # A file is a bundle, whatever its suffix (compile writes what -o names: .bundle, .npz), unless a target's .toml.
    if isinstance(target, Bundle) or (Path(target).is_file() and Path(target).suffix != ".toml"):
        if steps_per_tau is not None or split_weights:
            raise DeployError("steps_per_tau and split_weights are compile options; the bundle is compiled already")
        bundle = target if isinstance(target, Bundle) else bundle_io.load(target)
        reference_network(nir_file, bundle, semantic_overrides(**semantics), dt=dt)  # may restate, not contradict
    else:
        net = load(nir_file, semantic_overrides(**semantics))
        bundle = compile_network(net, description.load(str(target)), steps_per_tau or DEFAULT_STEPS_PER_TAU, dt=dt,
                                 split_weights=split_weights)
    return verify(nir_file, bundle, data, samples=samples, backend=backend, tolerances=tolerances, **data_options)


def run_verification(nir_file: Path, **options):
    """``verdict_of``; a bad input or an exceeded tolerance fails the test (once: outside any except block,
    so pytest shows no chained exception)."""
    from ..errors import BAD_INPUT_ERRORS
    from ..reporting.text import format_failure

    try:
        verdict = verdict_of(nir_file, **options)
    except BAD_INPUT_ERRORS as exc:
        failure = f"snn_verify: {exc}"
    else:
        failure = None if verdict.passed else format_failure(verdict, nir_file)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    return verdict


@pytest.fixture
def snn_verify(request):
    """``snn_verify(nir_file, target="loihi2", *, data, labels=None, samples=None, backend="bitsim",
    steps_per_tau=None, dt=None, split_weights=False, time_scale=None, data_root=None, downsample=None,
    workers=1, scheduler=None, **semantics_and_tolerances) -> Verdict``: see the module's docstring."""
    folder = request.path.parent

    def here(path):
        """A relative path from the calling test's folder; anything else (a data set name, an array) as it is."""
        if isinstance(path, (str, Path)) and not Path(path).is_absolute() and (folder / path).exists():
            return folder / path
        return path

    def snn_verify(nir_file, target="loihi2", *, data, labels=None, samples: int | None = None,
                   backend: str = "bitsim", steps_per_tau: float | None = None, dt: float | None = None,
                   split_weights: bool = False, time_scale: float | None = None, data_root=None,
                   downsample: tuple[int, int] | None = None, workers: int = 1, scheduler: str | None = None,
                   **options):
        import inspect

        from ..artifacts.semantics import semantic_overrides

        semantic_names = inspect.signature(semantic_overrides).parameters
        semantics = {name: options.pop(name) for name in list(options) if name in semantic_names}
        return run_verification(folder / nir_file, target=here(target), data=here(data), samples=samples,
                                backend=backend, steps_per_tau=steps_per_tau, dt=dt, split_weights=split_weights,
                                semantics=semantics, tolerances=options, labels=here(labels), time_scale=time_scale,
                                data_root=None if data_root is None else folder / data_root, downsample=downsample,
                                workers=workers, scheduler=scheduler)

    return snn_verify
