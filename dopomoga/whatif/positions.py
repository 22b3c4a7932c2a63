"""Where a value sits in a YAML file: ``file:line:column`` for errors, from pyyaml's node marks.

``Located`` parses a file once into plain data (``yaml.safe_load``) and keeps the node tree
(``yaml.compose``) beside it, so a check that fails on ``("parameters", 2, "name")`` can say
``scenario.yaml:14:11``. Lines and columns are 1-based, as editors show them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class PositionedError(ValueError):
    """An error in a data file, its message starting with ``file:line:column``."""


@dataclass(frozen=True)
class Located:
    path: Path
    data: Any
    root: yaml.Node | None

    @classmethod
    def load(cls, path: Path, error: type[PositionedError] = PositionedError) -> Located:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            raise error(f"{where}: not valid YAML: {exc.problem}") from None
        return cls(path, data, root)

    def node(self, loc: Sequence[Any]) -> yaml.Node | None:
        """The deepest node along ``loc`` (mapping keys and sequence indexes)."""
        node = self.root
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                found = None
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                        found = value
                        break
                if found is None:
                    return node
                node = found
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
            else:
                return node
        return node

    def where(self, loc: Sequence[Any] = ()) -> str:
        """``file:line:column`` of the value at ``loc`` (the file alone if it is empty)."""
        node = self.node(loc)
        if node is None:
            return str(self.path)
        mark = node.start_mark
        return f"{self.path}:{mark.line + 1}:{mark.column + 1}"

    def error(self, loc: Sequence[Any], message: str, kind: type[PositionedError] = PositionedError) -> PositionedError:
        label = ".".join(str(p) for p in loc)
        return kind(f"{self.where(loc)}: {label + ': ' if label else ''}{message}")
