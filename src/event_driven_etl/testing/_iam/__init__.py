"""IAM for the emulation: the template's policies evaluated (:mod:`.policies`) and the gate
that checks each component's calls with its own principal (:mod:`.gate`)."""

from .gate import (
    CLOUDWATCH,
    EVENTS,
    AccessGate,
    CallCheck,
    RoleClient,
    TaskGate,
    access_denied_error,
)
from .policies import ROOT, AccessDeniedError, Policies, Principal, UnsupportedPolicyError

__all__ = [
    "CLOUDWATCH",
    "EVENTS",
    "ROOT",
    "AccessDeniedError",
    "AccessGate",
    "CallCheck",
    "Policies",
    "Principal",
    "RoleClient",
    "TaskGate",
    "UnsupportedPolicyError",
    "access_denied_error",
]
