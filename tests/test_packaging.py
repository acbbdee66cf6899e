"""One import root, targets/ importable with numpy and nir alone (the Lava worker's needs), and pyproject.toml's
package list whole."""

import subprocess
import sys
from pathlib import Path

from snn_deploy.deploy.errors import EXTRAS
from snn_deploy.targets.description import tomllib  # tomli before Python 3.11

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())


def _python(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)


def test_no_bare_top_level_packages(tmp_path):
    # From a neutral folder: a user's repo has its own `models`, which must not collide with ours.
    result = _python("import importlib.util as u; print([n for n in ('models', 'targets', 'deploy') "
                     "if u.find_spec(n)])", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_targets_import_without_torch(tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises ImportError
            "import snn_deploy.targets.bitsim, snn_deploy.targets.bundle, snn_deploy.targets.record\n"
            "import snn_deploy.targets.schedule, snn_deploy.targets.fixed_point, snn_deploy.targets.backends\n"
            "import snn_deploy.targets.description\n"
            "print(sorted(m for m, mod in sys.modules.items() if mod is not None\n"
            "             and m.split('.')[0] in ('torch', 'tqdm', 'sklearn')))")
    result = _python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_every_folder_that_ships_files_is_a_listed_package():
    """setuptools treats every folder below a package as a package, and warns at each install about one that ships
    files (the zoo, the report's templates) but is missing from pyproject.toml's `packages`."""
    root = Path(__file__).resolve().parents[1]
    setuptools = PYPROJECT["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    shipped = set()
    for package, folder in setuptools["package-dir"].items():
        for path in (root / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                shipped.add(".".join([package, *path.parent.relative_to(root / folder).parts]))
    assert shipped <= listed, sorted(shipped - listed)
    assert "snn_deploy.models.zoo" in shipped and "snn_deploy.deploy.reporting.templates" in shipped


def test_the_extras_the_errors_name_are_pyproject_extras():
    assert set(EXTRAS) <= set(PYPROJECT["project"]["optional-dependencies"])
