"""Read a YAML file into plain data plus a map from each value's path to its line.

PyYAML gives marks only on nodes, so we compose the node tree ourselves; every later error (pydantic,
cross-references) can then say `file:line field`. Duplicate keys are errors here, not silent overwrites.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from continuity.errors import InputError, Location

Path_ = tuple[str | int, ...]

# libyaml's parser when PyYAML was built with it (about ten times faster); nodes carry marks either way.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Document:
    """A parsed YAML file: its data, and the line of every value and key, by path."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int | None:
        """The line of the deepest known prefix of path (a missing field points at its parent)."""
        p = tuple(path)
        while True:
            if p in self.lines:
                return self.lines[p]
            if not p:
                return None
            p = p[:-1]

    def loc(self, path: Path_) -> Location:
        return Location(self.file, self.line_of(path), dotted(path) or None)

    def error(self, path: Path_, message: str) -> InputError:
        return InputError(message, self.loc(path))


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def pretty_path(path: Path) -> str:
    """A path as the operator would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def load_yaml_file(path: Path, *, display: str | None = None) -> Document:
    name = display or pretty_path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", Location(name)) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a YAML file", Location(name)) from None
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror}", Location(name)) from None
    return load_yaml_bytes(raw, name)


def load_yaml_bytes(raw: bytes, name: str) -> Document:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8", Location(name, line)
        ) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError("file is empty; expected a YAML mapping", Location(name, 1))
        doc = Document(name, None)
        doc.data = _build(loader, node, (), doc)
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and "quoted scalar" in exc.context and exc.context_mark is not None:
            # An unclosed quote: the parser gives up at the end of the file, but the mistake is where the
            # quote opened.
            mark = exc.context_mark
            problem = f"a quoted string opened here (column {mark.column + 1}) is never closed ({exc.problem})"
        err_line: int | None = mark.line + 1 if mark is not None else None
        lines = text.splitlines()
        if err_line is not None and 0 < err_line <= len(lines) and "\t" in lines[err_line - 1]:
            problem += " (this line has a tab: YAML indentation must use spaces)"
        raise InputError(f"YAML syntax error: {problem}", Location(name, err_line)) from None
    except yaml.YAMLError as exc:
        raise InputError(f"YAML error: {exc}", Location(name)) from None
    finally:
        loader.dispose()


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: Path_, doc: Document) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise InputError("mapping keys must be plain values", Location(doc.file, key_node.start_mark.line + 1))
            key = loader.construct_object(key_node)
            if not isinstance(key, str | int) or isinstance(key, bool):
                key = str(key)
            if key in out:
                raise InputError(
                    f"duplicate key {key!r}", Location(doc.file, key_node.start_mark.line + 1, dotted(path) or None)
                )
            child = (*path, key)
            doc.lines[child] = key_node.start_mark.line + 1
            out[key] = _build(loader, value_node, child, doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, i), doc) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
