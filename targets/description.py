"""Target descriptions: one TOML file per target, every number with its source.

A user adds a target by dropping a ``<name>.toml`` next to these (or passing a path): no code
changes. The compiler reads limits and bit widths from here.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # the Lava worker runs on Python 3.10
    import tomli as tomllib

TARGET_DIR = Path(__file__).resolve().parent


class TargetError(ValueError):
    """An unknown target or a malformed description file."""


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    spec: dict[str, Any]
    path: Path

    def value(self, section: str, key: str):
        try:
            return self.spec[section][key]
        except KeyError:
            raise TargetError(f"target {self.name} ({self.path}) has no [{section}] {key}") from None


def names() -> list[str]:
    return sorted(p.stem for p in TARGET_DIR.glob("*.toml"))


def load(name_or_path: str) -> Target:
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = TARGET_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            raise TargetError(f"unknown target {name_or_path!r}; known targets: {', '.join(names())}")
    if not path.is_file():
        raise TargetError(f"target file not found: {path}")
    try:
        spec = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TargetError(f"{path} is not valid TOML: {exc}") from None
    if "name" not in spec:
        raise TargetError(f"{path} has no 'name'")
    return Target(name=spec["name"], description=spec.get("description", ""), spec=spec, path=path)
