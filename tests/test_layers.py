"""The layer rules of DEVELOPERS.md, enforced: import-linter's contracts in pyproject.toml
([tool.importlinter]) must all be kept."""

import shutil
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_every_import_linter_contract_is_kept():
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is missing: it comes with the project's dev extra"
    result = subprocess.run([lint_imports, "--no-cache"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert result.stdout.count(" KEPT") >= 4, result.stdout  # every contract ran
