"""griffe extension for API.md: show what a construct's attributes are, not how __init__
computes them (griffe would print the assignment's code as the attribute's value)."""

from __future__ import annotations

from typing import Any

import griffe


class HideInstanceAttributeValues(griffe.Extension):
    """Drop the value of attributes assigned in ``__init__`` (``self.x = ...``)."""

    def on_attribute_instance(self, *, attr: griffe.Attribute, **kwargs: Any) -> None:
        if "instance-attribute" in attr.labels and "class-attribute" not in attr.labels:
            attr.value = None


class DocumentPublicNamesOnce(griffe.Extension):
    """The classes are documented where users import them from (``event_driven_etl``), so
    the modules that define them are not documented a second time."""

    MODULES = ("errors", "glue_job", "pipeline", "retry", "state_machine", "trigger", "runtime")

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != "event_driven_etl":
            return
        for name in self.MODULES:
            member = pkg.members.get(name)
            if member is not None:
                member.public = False
