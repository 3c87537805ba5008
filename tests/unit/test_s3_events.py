"""Object identity and execution names: properties that must hold for every input."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from event_driven_etl.runtime.trigger.s3_events import (
    MalformedEventError,
    ObjectRef,
    decode_key,
    encode_key,
    execution_name,
    parse_object_created,
)

VALID_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
keys = st.text(min_size=1, max_size=300).filter(lambda k: "\x00" not in k)
objects = st.builds(
    ObjectRef,
    bucket=st.sampled_from(["raw", "raw-2"]),
    key=keys,
    size=st.integers(min_value=0, max_value=10**9),
    etag=st.text(alphabet="0123456789abcdef", max_size=32),
    version_id=st.text(max_size=20),
    sequencer=st.text(alphabet="0123456789ABCDEF", max_size=18),
)


@given(st.lists(objects, min_size=1, max_size=20))
@settings(max_examples=200, deadline=None)
def test_execution_names_are_always_valid(batch: list[ObjectRef]) -> None:
    assert VALID_NAME.match(execution_name(batch))


@given(st.lists(objects, min_size=1, max_size=20), st.randoms())
@settings(max_examples=200, deadline=None)
def test_equal_object_sets_get_equal_names(batch: list[ObjectRef], rng: random.Random) -> None:
    shuffled = list(batch) + batch[:1]
    rng.shuffle(shuffled)
    assert execution_name(shuffled) == execution_name(batch)


@given(st.lists(objects, min_size=1, max_size=10, unique_by=lambda o: o.identity), objects)
@settings(max_examples=200, deadline=None)
def test_distinct_object_sets_get_distinct_names(batch: list[ObjectRef], extra: ObjectRef) -> None:
    if extra.identity in {o.identity for o in batch}:
        return
    assert execution_name(batch) != execution_name([*batch, extra])


@given(keys)
@settings(max_examples=300, deadline=None)
def test_encoded_keys_decode_to_themselves(key: str) -> None:
    assert decode_key(encode_key(key)) == key


def test_identity_ignores_the_eventbridge_event_id() -> None:
    detail = {"bucket": {"name": "b"}, "object": {"key": "a.csv", "etag": "e", "sequencer": "1"}}
    first = parse_object_created(
        {"id": "1", "source": "aws.s3", "detail-type": "Object Created", "detail": detail}
    )
    again = parse_object_created(
        {"id": "2", "source": "aws.s3", "detail-type": "Object Created", "detail": detail}
    )
    assert first.identity == again.identity


def test_space_encoded_as_plus_is_decoded() -> None:
    event = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": "b"}, "object": {"key": "my+file%2B1.csv", "size": 3}},
    }
    assert parse_object_created(event).key == "my file+1.csv"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "event must be a JSON object"),
        ({"source": "aws.s3", "detail-type": "Object Deleted"}, "not an S3 'Object Created' event"),
        ({"source": "aws.s3", "detail-type": "Object Created"}, "detail must be a JSON object"),
        (
            {
                "source": "aws.s3",
                "detail-type": "Object Created",
                "detail": {"bucket": {}, "object": {"key": "k"}},
            },
            "detail.bucket.name must be a non-empty string",
        ),
        (
            {
                "source": "aws.s3",
                "detail-type": "Object Created",
                "detail": {"bucket": {"name": "b"}, "object": {"key": ""}},
            },
            "detail.object.key must be a non-empty string",
        ),
        (
            {
                "source": "aws.s3",
                "detail-type": "Object Created",
                "detail": {"bucket": {"name": "b"}, "object": {"key": "k", "size": -1}},
            },
            "detail.object.size must be a non-negative integer",
        ),
    ],
)
def test_fails_malformed_events_name_the_field(event: object, message: str) -> None:
    with pytest.raises(MalformedEventError, match=re.escape(message)):
        parse_object_created(event)
