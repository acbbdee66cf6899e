"""RESULTS.md beside this file is shared by every benchmark script: each writes only its own sections.

``replace_section(heading, text)`` is the one way a script writes there: the section that starts at the line
``heading`` (a level-2 heading, "## ...") and runs to the next level-2 heading is replaced by ``text``, or
``text`` is appended when the file has no such section. Everything else in the file stays as it was.
"""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
TITLE = "# Benchmark results\n"
SECTION_MARK = "## "


def replace_section(heading: str, text: str, path: Path = RESULTS) -> None:
    """Replace (or append) the section of ``path`` headed by the line ``heading`` with ``text``, which must begin
    with that heading and hold no other level-2 heading."""
    if not heading.startswith(SECTION_MARK) or "\n" in heading:
        raise ValueError(f"not a level-2 heading: {heading!r}")
    body = text.strip("\n")
    lines_of_text = body.splitlines()
    if lines_of_text[0] != heading or any(line.startswith(SECTION_MARK) for line in lines_of_text[1:]):
        raise ValueError(f"the text of section {heading!r} must start with its heading and hold no other")
    lines = (path.read_text() if path.exists() else TITLE).splitlines()
    if heading in lines:
        start = lines.index(heading)
        stop = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(SECTION_MARK)), len(lines))
        after = lines[stop:]
        lines = lines[:start] + lines_of_text + ([""] + after if after else [])
    else:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += [""] + lines_of_text
    path.write_text("\n".join(lines).rstrip("\n") + "\n")


def replace_sections(sections: dict[str, str], path: Path = RESULTS) -> None:
    """``replace_section`` for each (heading, text)."""
    for heading, text in sections.items():
        replace_section(heading, text, path)
