"""Read one pipeline out of a synthesized stack and resolve its intrinsics for emulation."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

ACCOUNT = "123456789012"
REGION = "us-east-1"
PSEUDO_PARAMETERS = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "local",
    "AWS::NoValue": None,
}
_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


class PipelineNotFoundError(LookupError):
    """The stack holds no EventDrivenEtlPipeline at the path given."""


@dataclass
class StackTemplate:
    """A synthesized stack: its template, construct-path -> logical-id map and asset folder."""

    template: dict[str, Any]
    logical_ids: dict[str, str]
    assembly_dir: Path
    account: Optional[str] = None
    """The stack's account when the app names one (its ARNs then spell it)."""
    region: Optional[str] = None
    """The stack's region when the app names one."""

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.template.get("Resources", {}))

    def logical_id(self, path: str) -> Optional[str]:
        return self.logical_ids.get(path)

    def asset_path(self, s3_key_or_location: str) -> Path:
        """Staged asset (``asset.<hash>`` or ``asset.<hash>.py``) for an S3 key ``<hash>.ext``."""
        name = s3_key_or_location.rsplit("/", 1)[-1]
        digest, _, extension = name.partition(".")
        for candidate in (f"asset.{digest}", f"asset.{digest}.{extension}"):
            path = self.assembly_dir / candidate
            if path.exists():
                return path
        raise FileNotFoundError(f"asset {name} not found in {self.assembly_dir}")


def load_from_assembly(directory: str | Path, stack_name: str) -> StackTemplate:
    """Read ``<stack>.template.json`` and its construct paths from a ``cdk.out`` directory."""
    root = Path(directory)
    manifest = json.loads((root / "manifest.json").read_text())
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        properties = artifact.get("properties", {})
        names = {artifact_id, properties.get("stackName"), artifact.get("displayName")}
        if stack_name not in names:
            continue
        template = json.loads((root / properties["templateFile"]).read_text())
        metadata = dict(artifact.get("metadata", {}))
        extra = artifact.get("additionalMetadataFile")
        if extra:
            metadata.update(json.loads((root / extra).read_text()))
        environment = str(artifact.get("environment", ""))  # aws://<account>/<region>
        account, _, region = environment.removeprefix("aws://").partition("/")
        return StackTemplate(
            template,
            _logical_ids(metadata),
            root,
            account=account if account.isdigit() else None,
            region=region if region and not region.startswith("unknown") else None,
        )
    raise PipelineNotFoundError(f"no stack named {stack_name!r} in {root}")


def _logical_ids(metadata: Mapping[str, list[dict[str, Any]]]) -> dict[str, str]:
    ids: dict[str, str] = {}
    for path, entries in metadata.items():
        for entry in entries:
            if entry.get("type") == "aws:cdk:logicalId":
                ids[path] = str(entry["data"])
    return ids


@dataclass
class Resolver:
    """Resolves Ref / Fn::GetAtt / Fn::Join / Fn::Sub / Fn::Select against emulated names."""

    resources: dict[str, Any]
    physical: dict[str, str] = field(default_factory=dict)
    arns: dict[str, str] = field(default_factory=dict)
    fallback: Optional[Callable[[str], str]] = None

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, arg),) = value.items()
            handler = _INTRINSICS.get(name)
            if handler is not None:
                return handler(self, arg)
        return {k: self.resolve(v) for k, v in value.items()}

    def ref(self, logical_id: str) -> Any:
        if logical_id in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[logical_id]
        if logical_id in self.physical:
            return self.physical[logical_id]
        return self.fallback(logical_id) if self.fallback else logical_id.lower()

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if attribute == "Arn" and logical_id in self.arns:
            return self.arns[logical_id]
        kind = self.resources.get(logical_id, {}).get("Type", "")
        name = self.ref(logical_id)
        if attribute == "Arn":
            return _arn_for(kind, name)
        if attribute == "QueueName":
            return str(name).rsplit("/", 1)[-1]
        return f"{name}.{attribute}"


def _arn_for(kind: str, name: Any) -> str:
    service = {
        "AWS::S3::Bucket": "s3",
        "AWS::SQS::Queue": "sqs",
        "AWS::SNS::Topic": "sns",
        "AWS::Lambda::Function": "lambda",
        "AWS::IAM::Role": "iam",
        "AWS::KMS::Key": "kms",
        "AWS::DynamoDB::Table": "dynamodb",
        "AWS::Logs::LogGroup": "logs",
        "AWS::Events::Rule": "events",
        "AWS::CloudWatch::Alarm": "cloudwatch",
    }.get(kind, "unknown")
    if service == "s3":
        return f"arn:aws:s3:::{name}"
    if service == "iam":
        return f"arn:aws:iam::{ACCOUNT}:role/{name}"
    if service == "lambda":
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    if service == "dynamodb":
        return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
    if service == "logs":
        return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"
    if service == "events":
        return f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}"
    if service == "cloudwatch":
        return f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"
    if service == "sqs":
        name = str(name).rsplit("/", 1)[-1]
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{name}"


def _join(resolver: Resolver, arg: Any) -> str:
    separator, parts = arg
    return str(separator).join(str(resolver.resolve(p)) for p in parts)


def _sub(resolver: Resolver, arg: Any) -> str:
    text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            return str(resolver.resolve(variables[name]))
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return str(resolver.get_att(logical_id, attribute))
        return str(resolver.ref(name))

    return _SUB_VARIABLE.sub(replace, text)


def _select(resolver: Resolver, arg: Any) -> Any:
    index, values = arg
    return resolver.resolve(values)[int(resolver.resolve(index))]


def _split(resolver: Resolver, arg: Any) -> list[str]:
    separator, value = arg
    return str(resolver.resolve(value)).split(separator)


_INTRINSICS: dict[str, Callable[[Resolver, Any], Any]] = {
    "Ref": lambda r, a: r.ref(a),
    "Fn::GetAtt": lambda r, a: r.get_att(*(a if isinstance(a, list) else a.split(".", 1))),
    "Fn::Join": _join,
    "Fn::Sub": _sub,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::ImportValue": lambda r, a: _unresolvable("Fn::ImportValue", a),
    "Fn::GetAZs": lambda r, a: _unresolvable("Fn::GetAZs", a),
}


def _unresolvable(function: str, argument: Any) -> Any:
    raise ValueError(
        f"{function} {argument!r}: the emulation runs one stack and cannot resolve it; "
        "run the stack that owns the value, or pass the resource by name"
    )
