"""CloudWatch as far as the harness emulates it: an alarm's state change published to its
actions as ``cloudwatch.amazonaws.com`` (no metrics: alarms fire only when a test says so)."""

from __future__ import annotations

import json

from ._clients import emulated_client
from ._iam import AccessDeniedError, AccessGate
from ._layout import PipelineLayout
from ._template import StackTemplate


def fire_alarm(stack: StackTemplate, layout: PipelineLayout, access: AccessGate, name: str) -> bool:
    """Put one of the pipeline's alarms into ALARM: CloudWatch publishes the state change to
    the alarm's actions as ``cloudwatch.amazonaws.com``, and the topic's policy and key
    decide. Returns whether the message was delivered."""
    logical_id = stack.logical_id(f"{layout.path}/Monitoring/{name}/Resource") or name
    alarm = layout.resources.get(logical_id)
    if alarm is None or alarm["Type"] != "AWS::CloudWatch::Alarm":
        raise KeyError(f"no alarm {name!r} in the pipeline")

    sns = emulated_client("sns")
    alarm_arn = str(layout.resolver.get_att(logical_id, "Arn"))
    delivered = False
    for topic_arn in layout.resolver.resolve(alarm["Properties"].get("AlarmActions", [])):
        try:
            access.check_alarm_publish(alarm_arn, str(topic_arn))
        except AccessDeniedError:
            continue
        message = {"AlarmName": logical_id, "AlarmArn": alarm_arn, "NewStateValue": "ALARM"}
        sns.publish(TopicArn=str(topic_arn), Message=json.dumps(message))
        delivered = True
    return delivered
