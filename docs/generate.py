"""Generate API.md from the docstrings: Markdown that renders on GitHub.

    python docs/generate.py [-o API.md]      (scripts/docs runs it)

Every public name is documented under the path users import it from (`event_driven_etl`,
`event_driven_etl.cost`, `event_driven_etl.testing`), never under the private module that
defines it. Docstrings are written in Sphinx style (`:param x:`, ``` ``code`` ```, `Example::`);
they are converted to Markdown here. Defaults are the real values of the signatures,
written as code would write them (`Duration.minutes(1)`, `RetentionDays.ONE_YEAR`). Links
point only at headings of this file, with GitHub's anchors (tests/test_api_md.py checks them).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from event_driven_etl._docs import attribute_docs, class_node  # noqa: E402

MODULES = ("event_driven_etl", "event_driven_etl.cost", "event_driven_etl.testing")
UNDOCUMENTED: list[str] = []
"""Public names without a docstring: the generator refuses to write API.md while any exist."""


def github_anchor(heading: str, seen: dict[str, int]) -> str:
    """The id GitHub gives a heading (github-slugger): lowercase, punctuation other than
    `-` and `_` dropped, spaces to `-`, `-1`, `-2`... for repeats."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return slug if count == 0 else f"{slug}-{count}"


def public_names(module_name: str) -> list[tuple[str, Any]]:
    module = importlib.import_module(module_name)
    if hasattr(module, "__all__"):
        names = [n for n in module.__all__ if not n.startswith("__")]
    else:  # a module without __all__: what it defines itself, not what it imports
        names = [
            n
            for n, v in vars(module).items()
            if not n.startswith("_")
            and getattr(v, "__module__", None) == module_name
            and (inspect.isclass(v) or inspect.isfunction(v))
        ]
    return [(n, getattr(module, n)) for n in sorted(names)]


class Writer:
    """Collects the document; knows every documented name so references become links."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.anchors: dict[str, str] = {}  # "RetryPolicy" / "cost.GluePrices" -> anchor
        self._seen: dict[str, int] = {}

    def heading(self, level: int, text: str, *keys: str) -> None:
        anchor = github_anchor(text.replace("`", ""), self._seen)
        for key in keys:
            self.anchors.setdefault(key, anchor)
        self.lines += [f"{'#' * level} {text}", ""]

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)


# --- docstrings: Sphinx style to Markdown -------------------------------------------------

_ROLE = re.compile(r":(?:class|meth|func|attr|mod|exc|data|obj):`~?([^`]+)`")
_FIELD = re.compile(r"^:(param|returns?|raises|rtype|type)\s*([^:]*):\s?(.*)$")


def _inline(text: str, link: Callable[[str], str]) -> str:
    text = _ROLE.sub(lambda m: link(m.group(1).strip()), text)
    return re.sub(r"``(.+?)``", r"`\1`", text)


def _blocks(doc: str) -> Iterator[tuple[str, str]]:
    """("text", paragraph lines) and ("code", code) pieces of a docstring without fields."""
    lines = doc.splitlines()
    index = 0
    text: list[str] = []
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        opens = stripped.startswith(".. code-block::") or (
            stripped.endswith("::") and not stripped.startswith(":")
        )
        if opens:
            if not stripped.startswith(".."):
                text.append(line.rstrip()[:-1])  # "Example::" reads "Example:"
            yield "text", "\n".join(text)
            text = []
            index += 1
            code: list[str] = []
            while index < len(lines) and (not lines[index].strip() or lines[index][:1] == " "):
                code.append(lines[index])
                index += 1
            yield "code", inspect.cleandoc("\n".join(code))
            continue
        text.append(line)
        index += 1
    yield "text", "\n".join(text)


def split_fields(doc: str) -> tuple[str, dict[str, str], list[tuple[str, str]]]:
    """The description, `:param name:` texts and other fields (`:returns:`, `:raises X:`)."""
    body: list[str] = []
    params: dict[str, str] = {}
    others: list[tuple[str, str]] = []
    labels = {"return": "Returns", "returns": "Returns", "raises": "Raises"}
    target: tuple[str, str] | tuple[str, int] | None = None  # the field a line continues
    for line in inspect.cleandoc(doc or "").splitlines():
        match = None if line.startswith(" ") else _FIELD.match(line)
        if match:
            kind, name, rest = match.groups()
            if kind == "param":
                params[name.strip()] = rest.strip()
                target = ("param", name.strip())
            else:
                others.append(
                    (f"{labels.get(kind, kind.capitalize())} {name.strip()}".strip(), rest)
                )
                target = ("other", len(others) - 1)
        elif target is not None and (line.startswith(" ") or not line.strip()):
            if target[0] == "param":
                key = str(target[1])
                params[key] = f"{params[key]} {line.strip()}".strip()
            else:
                index = int(target[1])
                label, text = others[index]
                others[index] = (label, f"{text} {line.strip()}".strip())
        else:
            target = None
            body.append(line)
    return "\n".join(body).strip(), params, others


def markdown(doc: str, link: Callable[[str], str]) -> list[str]:
    out: list[str] = []
    for kind, piece in _blocks(doc):
        if kind == "code":
            out += ["```python", piece, "```", ""]
        elif piece.strip():
            out += [_inline(piece.strip(), link), ""]
    return out


def one_line(text: str, link: Callable[[str], str]) -> str:
    return _inline(" ".join(text.split()), link).replace("|", "\\|")


# --- values and signatures -----------------------------------------------------------------


def render_value(value: Any) -> str:
    """A default as code writes it; raises for a value it cannot write truthfully."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    type_name = type(value).__name__
    if type_name == "Duration":
        seconds = value.to_seconds()
        for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
            if seconds >= size and seconds % size == 0:
                return f"Duration.{unit}({int(seconds // size)})"
        return f"Duration.seconds({seconds:g})"
    is_instance = dataclasses.is_dataclass(value) and not isinstance(value, type)
    if is_instance and value == type(value)():
        return f"{type_name}()"
    if isinstance(value, (tuple, frozenset, list)):
        items = ", ".join(render_value(v) for v in value)
        return f"({items})" if isinstance(value, tuple) else f"[{items}]"
    raise ValueError(f"cannot write the default {value!r} as code: teach render_value")


def parameter_defaults(obj: Any) -> dict[str, str]:
    """Defaults of a function, a class's __init__, or a dataclass (fields' factories too)."""
    if dataclasses.is_dataclass(obj) and isinstance(obj, type):
        found = {}
        for field in dataclasses.fields(obj):
            if field.default is not dataclasses.MISSING:
                found[field.name] = render_value(field.default)
            elif field.default_factory is not dataclasses.MISSING:
                found[field.name] = render_value(field.default_factory())
        return found
    target = vars(obj).get("__init__", obj) if isinstance(obj, type) else obj
    return {
        p.name: render_value(p.default)
        for p in inspect.signature(target).parameters.values()
        if p.default is not inspect.Parameter.empty
    }


def signature_line(name: str, target: Any, skip_self: bool) -> str:
    parts = []
    star = False
    defaults = parameter_defaults(target)
    for param in inspect.signature(target).parameters.values():
        if skip_self and param.name in ("self", "cls"):
            continue
        if param.kind is param.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        if param.kind is param.VAR_POSITIONAL:
            star = True
            parts.append(f"*{param.name}")
            continue
        if param.kind is param.VAR_KEYWORD:
            parts.append(f"**{param.name}")
            continue
        default = defaults.get(param.name)
        parts.append(f"{param.name}={default}" if default is not None else param.name)
    return f"{name}({', '.join(parts)})"


def annotation_of(target: Any, name: str) -> str:
    try:
        parameter = inspect.signature(target).parameters[name]
    except (KeyError, ValueError, TypeError):
        return ""
    if parameter.annotation is inspect.Parameter.empty:
        return ""
    annotation = parameter.annotation
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")


# --- the document ---------------------------------------------------------------------------


def _members(cls: type) -> list[tuple[str, Any]]:
    """Public methods defined by the class itself (not inherited from CDK or object)."""
    found = []
    for name, value in vars(cls).items():
        if name.startswith("_") or isinstance(value, property):
            continue
        function = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
        if inspect.isfunction(function):
            found.append((name, function))
    return sorted(found)


def _defined_in(cls: type, fallback: str) -> str:
    """The module whose source defines the class (its __module__ names the public path)."""
    for module_name, module in sorted(sys.modules.items()):
        if (
            module_name.startswith("event_driven_etl")
            and module is not None
            and vars(module).get(cls.__name__) is cls
            and class_node(module_name, cls.__name__) is not None
        ):
            return module_name
    return fallback


def document_class(
    w: Writer, module: str, name: str, cls: type, link: Callable[[str], str]
) -> None:
    path = f"{module}.{name}"
    w.heading(3, f"`{name}`", name, path)
    bases = [b for b in cls.__bases__ if b is not object]
    base_text = ", ".join(f"`{b.__module__.split('.')[0]}.{b.__name__}`" for b in bases)
    w.add(f"`from {module} import {name}`" + (f" · Bases: {base_text}" if base_text else ""), "")
    doc = inspect.getdoc(cls) or ""
    doc = doc.split("\nAttributes\n----------", 1)[0]  # added for help(); listed below
    w.add(*markdown(doc, link))
    is_error = issubclass(cls, BaseException)
    init = cls.__dict__.get("__init__")
    if dataclasses.is_dataclass(cls):
        w.add("```python", signature_line(name, cls, skip_self=False), "```", "")
    elif init is not None and inspect.isfunction(init) and not is_error:
        _, params, _ = split_fields(inspect.getdoc(init) or "")
        defaults = parameter_defaults(cls)
        w.add("```python", signature_line(name, init, skip_self=True), "```", "")
        rows = [
            (p, annotation_of(init, p), params.get(p, ""), defaults.get(p))
            for p in inspect.signature(init).parameters
            if p not in ("self", "scope", "construct_id", "id")
        ]
        if rows:
            w.add("| Prop | Type | Default | Description |", "| --- | --- | --- | --- |")
            for prop, kind, text, default in rows:
                shown_kind = f"`{kind}`" if kind else ""
                shown_default = f"`{default}`" if default is not None else "required"
                w.add(f"| `{prop}` | {shown_kind} | {shown_default} | {one_line(text, link)} |")
            w.add("")
    attributes = attribute_docs(cls, _defined_in(cls, module))
    if attributes:
        w.add("**Attributes**", "", "| Name | Type | Description |", "| --- | --- | --- |")
        for attribute in attributes:
            if not attribute.doc:
                UNDOCUMENTED.append(f"{path}.{attribute.name}")
            w.add(
                f"| `{attribute.name}` | `{attribute.annotation}` | "
                f"{one_line(attribute.doc, link)} |"
            )
        w.add("")
    for method_name, method in _members(cls):
        document_function(w, f"{name}.{method_name}", method, link, level=4, skip_self=True)


def document_function(
    w: Writer,
    title: str,
    function: Any,
    link: Callable[[str], str],
    *,
    level: int,
    skip_self: bool,
    extra_keys: tuple[str, ...] = (),
) -> None:
    w.heading(level, f"`{title}`", title, *extra_keys)
    short = title.rsplit(".", 1)[-1]
    w.add("```python", signature_line(short, function, skip_self=skip_self), "```", "")
    body, params, others = split_fields(inspect.getdoc(function) or "")
    if not body and not params:
        UNDOCUMENTED.append(title)
    w.add(*markdown(body, link))
    for param, text in params.items():
        w.add(f"- `{param}`: {one_line(text, link)}")
    for label, text in others:
        w.add(f"- {label}: {one_line(text, link)}")
    if params or others:
        w.add("")


def generate() -> str:
    # First pass: the headings (and so the anchors) of every documented name.
    plan = {module: public_names(module) for module in MODULES}
    probe = Writer()
    _write(probe, plan, lambda ref: f"`{ref}`", {})
    anchors = probe.anchors

    def link(ref: str) -> str:
        short = ref.removeprefix("event_driven_etl.")
        for key in (ref, short, short.split(".")[-1]):
            if key in anchors:
                return f"[`{short}`](#{anchors[key]})"
        return f"`{short.split('.')[-1] if short.startswith('_') else short}`"

    writer = Writer()
    UNDOCUMENTED.clear()
    _write(writer, plan, link, anchors)
    if UNDOCUMENTED:
        raise SystemExit("no docstring: " + ", ".join(sorted(set(UNDOCUMENTED))))
    text = "\n".join(writer.lines).rstrip() + "\n"
    return re.sub(r"\n{3,}", "\n\n", text)


def _write(
    w: Writer,
    plan: dict[str, list[tuple[str, Any]]],
    link: Callable[[str], str],
    known: dict[str, str],
) -> None:
    w.add(
        "# API reference",
        "",
        "Generated from the docstrings by `scripts/docs` (`docs/generate.py`); do not edit by",
        "hand. Every name is documented under the path you import it from.",
        "",
    )
    for module in MODULES:
        w.add(f"- [`{module}`](#{github_anchor(module, {})})")
        for name, _ in plan[module]:
            target = known.get(f"{module}.{name}")
            w.add(f"  - [`{name}`](#{target})" if target else f"  - `{name}`")
    w.add("")
    for module in MODULES:
        w.heading(2, f"`{module}`", module)
        imported = importlib.import_module(module)
        w.add(*markdown(inspect.getdoc(imported) or "", link))
        for name, value in plan[module]:
            if isinstance(value, type):
                document_class(w, module, name, value, link)
            elif inspect.isfunction(value):
                document_function(
                    w, name, value, link, level=3, skip_self=False, extra_keys=(f"{module}.{name}",)
                )
        if module == "event_driven_etl":
            version = imported.__version__
            w.heading(3, "`__version__`", "__version__")
            w.add(f"`{version!r}`: the package's version (semantic versioning).", "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=str(ROOT / "API.md"))
    arguments = parser.parse_args()
    Path(arguments.output).write_text(generate())


if __name__ == "__main__":
    main()
