"""tools/bench/results_md.py: a benchmark script replaces only its own sections of RESULTS.md."""

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "results_md", Path(__file__).resolve().parents[1] / "tools" / "bench" / "results_md.py")
results_md = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(results_md)

BEFORE = """# Benchmark results

Preamble.

## A

old a
### a subsection, part of A

## B

b, someone else's

## C

c
"""


def test_replaces_one_section_and_keeps_the_others(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(BEFORE)
    results_md.replace_section("## A", "## A\n\nnew a\n", path)
    assert path.read_text() == BEFORE.replace("old a\n### a subsection, part of A\n", "new a\n")
    results_md.replace_section("## C", "## C\n\nnew c", path)
    assert path.read_text().endswith("## B\n\nb, someone else's\n\n## C\n\nnew c\n")


def test_appends_a_new_section_and_creates_the_file(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(BEFORE)
    results_md.replace_section("## D", "## D\n\nd", path)
    assert path.read_text() == BEFORE + "\n## D\n\nd\n"
    fresh = tmp_path / "new.md"
    results_md.replace_sections({"## A": "## A\n\na", "## B": "## B\n\nb"}, fresh)
    assert fresh.read_text() == "# Benchmark results\n\n## A\n\na\n\n## B\n\nb\n"


@pytest.mark.parametrize("heading, text", [("A", "A\n\na"), ("## A", "## B\n\na"), ("## A", "## A\n\n## B\n")])
def test_refuses_text_that_would_spill_into_other_sections(tmp_path, heading, text):
    path = tmp_path / "RESULTS.md"
    path.write_text(BEFORE)
    with pytest.raises(ValueError):
        results_md.replace_section(heading, text, path)
    assert path.read_text() == BEFORE
