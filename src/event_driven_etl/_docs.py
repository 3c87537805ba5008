"""The public attributes of a class, read from its source: each annotated class-level name
followed by a docstring (the convention documentation tools read), and each property.

``help()`` shows a class's docstring, which does not list what an instance holds; the
package appends this list to each public class's docstring when it is first imported, and
docs/generate.py writes the same list into API.md.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

PACKAGE = "event_driven_etl"
"""Where users import every public class from."""

_Class = TypeVar("_Class", bound=type)


@dataclass(frozen=True)
class AttributeDoc:
    """One public attribute: its name, its annotation as written, its docstring."""

    name: str
    annotation: str
    doc: str


@cache
def class_node(module_name: str, class_name: str) -> ast.ClassDef | None:
    """The class's definition in the module's source, or None if the module does not define it."""
    source = inspect.getsource(sys.modules[module_name])
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return node
    return None


def attribute_docs(cls: type, defined_in: str) -> list[AttributeDoc]:
    """The documented public attributes and properties of ``cls`` (defined in the module
    named ``defined_in``), in source order."""
    node = class_node(defined_in, cls.__name__)
    if node is None:
        return []
    found: list[AttributeDoc] = []
    body = node.body
    for index, statement in enumerate(body):
        following = body[index + 1] if index + 1 < len(body) else None
        doc = ""
        if (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            doc = inspect.cleandoc(following.value.value)
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            name = statement.target.id
            if not name.startswith("_"):
                found.append(AttributeDoc(name, ast.unparse(statement.annotation), doc))
        elif (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
            and not statement.targets[0].id.startswith("_")
            and doc
        ):  # a documented constant or enum member: its value stands in for a type
            value = f"= {ast.unparse(statement.value)}"
            found.append(AttributeDoc(statement.targets[0].id, value, doc))
        elif isinstance(statement, ast.FunctionDef) and not statement.name.startswith("_"):
            is_property = any(
                isinstance(d, ast.Name) and d.id in ("property", "cached_property")
                for d in statement.decorator_list
            )
            if is_property:
                returns = ast.unparse(statement.returns) if statement.returns else ""
                doc = inspect.cleandoc(ast.get_docstring(statement, clean=False) or "")
                found.append(AttributeDoc(statement.name, returns, doc))
    return found


def with_attribute_docs(cls: type, defined_in: str) -> None:
    """Append an "Attributes" section to the class's docstring, for ``help()``."""
    docs = attribute_docs(cls, defined_in)
    if not docs or "\nAttributes\n" in (cls.__doc__ or ""):
        return
    lines = ["", "Attributes", "----------"]
    for attribute in docs:
        lines.append(f"{attribute.name}: {attribute.annotation}".rstrip(": "))
        lines.append(textwrap.indent(attribute.doc or "(undocumented)", "    "))
    cls.__doc__ = inspect.cleandoc(cls.__doc__ or "") + "\n" + "\n".join(lines)


def public(cls: _Class) -> _Class:
    """Class decorator for each public class: documentation tools and ``help()`` show it
    where users import it from (``event_driven_etl.RetryPolicy``, as httpx does), not the
    private module that defines it, and ``help()`` lists the attributes an instance holds."""
    defined_in = cls.__module__
    cls.__module__ = PACKAGE
    with_attribute_docs(cls, defined_in)
    return cls
