"""What EventBridge hands a rule's target, as the emulation shapes it."""

from __future__ import annotations

from typing import Any

import pytest

from event_driven_etl.testing._events import UnsupportedTargetInputError, target_input

EVENT: dict[str, Any] = {
    "id": "1",
    "source": "aws.s3",
    "detail": {"bucket": {"name": "raw"}, "object": {"key": "a.csv"}},
}


def test_a_target_without_input_gets_the_whole_event() -> None:
    assert target_input({"Arn": "a"}, EVENT) == EVENT


def test_a_constant_input_replaces_the_event() -> None:
    assert target_input({"Input": '{"run": true}'}, EVENT) == {"run": True}


def test_an_input_path_selects_part_of_the_event() -> None:
    assert target_input({"InputPath": "$.detail.bucket"}, EVENT) == {"name": "raw"}
    assert target_input({"InputPath": "$"}, EVENT) == EVENT


def test_an_input_transformer_fills_its_template() -> None:
    transformer = {
        "InputPathsMap": {"key": "$.detail.object.key"},
        "InputTemplate": '{"object": "<key>", "event": <aws.events.event.json>}',
    }
    assert target_input({"InputTransformer": transformer}, EVENT) == {
        "object": "a.csv",
        "event": EVENT,
    }


def test_fails_an_input_path_the_emulation_cannot_follow() -> None:
    with pytest.raises(UnsupportedTargetInputError, match=r"\$\.detail\[0\]"):
        target_input({"InputPath": "$.detail[0]"}, EVENT)
