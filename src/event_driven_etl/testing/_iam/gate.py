"""Where the emulation asks IAM: each component's calls, checked with its own principal.

``AccessGate`` knows the pipeline's principals (the Glue job's, the workflows' and the
trigger's roles; EventBridge and CloudWatch as services) and the resources' keys, all read
from the template, and checks every call the emulation makes on their behalf against
:class:`~.policies.Policies`. A denial surfaces where AWS surfaces it: the Glue run
fails naming the object, the workflow task fails (``AccessDeniedException``), the trigger's
client raises, an event goes to the rule target's dead-letter queue, an alarm's message is
not delivered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Optional

from .._template import ACCOUNT, REGION, Resolver
from .policies import AccessDeniedError, Policies, Principal, UnsupportedPolicyError

EVENTS = Principal.for_service("events.amazonaws.com")
CLOUDWATCH = Principal.for_service("cloudwatch.amazonaws.com")

CallCheck = Callable[[str, Mapping[str, Any]], None]
"""Checks one call: its API name (``GetTable``) and its parameters."""
_GLUE_JOB_RUN_APIS = frozenset({"GetJobRun", "GetJobRuns", "StartJobRun", "BatchStopJobRun"})
"""Glue APIs whose resource is the job (``arn:aws:glue:<region>:<account>:job/<name>``:
https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsglue.html)."""


def glue_job_arn(job_name: str) -> str:
    """The ARN IAM checks a job run's calls on (``StartJobRun``, ``GetJobRun``...)."""
    return f"arn:aws:glue:{REGION}:{ACCOUNT}:job/{job_name}"


_S3_OBJECT_ACTIONS = {
    "HeadObject": "s3:GetObject",
    "CopyObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "DeleteObjects": "s3:DeleteObject",
}
TaskGate = Callable[[str, Mapping[str, Any]], None]


class AccessGate:
    """The pipeline's principals and keys, and one check per kind of call."""

    def __init__(self, resources: Mapping[str, Any], resolver: Resolver, policies: Policies):
        self.policies = policies
        self._resources = resources
        self._resolver = resolver
        self.bucket_keys: dict[str, str] = {}
        self.topic_keys: dict[str, str] = {}
        self.queue_keys: dict[str, str] = {}
        self.table_keys: dict[str, str] = {}
        for logical_id, resource in resources.items():
            props = resource.get("Properties", {})
            kind = resource.get("Type")
            if kind == "AWS::S3::Bucket":
                key = _bucket_key(props)
                if key is not None:
                    self.bucket_keys[str(resolver.ref(logical_id))] = str(resolver.resolve(key))
            elif kind == "AWS::SNS::Topic" and "KmsMasterKeyId" in props:
                arn = resolver.get_att(logical_id, "Arn")
                self.topic_keys[arn] = str(resolver.resolve(props["KmsMasterKeyId"]))
            elif kind == "AWS::SQS::Queue" and "KmsMasterKeyId" in props:
                arn = resolver.get_att(logical_id, "Arn")
                self.queue_keys[arn] = str(resolver.resolve(props["KmsMasterKeyId"]))
            elif kind == "AWS::DynamoDB::Table":
                key = props.get("SSESpecification", {}).get("KMSMasterKeyId")
                if key is not None:
                    name = str(resolver.ref(logical_id))
                    self.table_keys[name] = str(resolver.resolve(key))

    # ---------------------------------------------------------------- principals

    def role_of(self, logical_id: str, role_property: str = "Role") -> Principal:
        """The role a resource runs as (``Role`` of a function or job, ``RoleArn`` of a
        state machine), as an IAM principal."""
        props = self._resources[logical_id]["Properties"]
        role = props.get(role_property) or props.get("RoleArn")
        arn = str(self._resolver.resolve(role))
        if not arn.startswith("arn:"):
            arn = f"arn:aws:iam::{ACCOUNT}:role/{arn}"
        return Principal(arn=arn)

    def rule_target_role(self, target_logical_id: str) -> Optional[Principal]:
        """The role EventBridge assumes to deliver to ``target_logical_id`` (a state
        machine target needs one), from the rule's target ``RoleArn``."""
        for resource in self._resources.values():
            if resource["Type"] != "AWS::Events::Rule":
                continue
            for target in resource.get("Properties", {}).get("Targets", []):
                if target_logical_id in str(target.get("Arn")) and target.get("RoleArn"):
                    return Principal(arn=str(self._resolver.resolve(target["RoleArn"])))
        return None

    # ---------------------------------------------------------------- S3

    def check_s3(self, principal: Principal, action: str, bucket: str, key: str) -> None:
        """An object call (``s3:GetObject``, ``s3:PutObject``, ...) and its key use.

        A read of a key that does not exist is answered by the caller's ``s3:ListBucket``
        right: ``NoSuchKey`` (404) with it, ``AccessDenied`` (403) without, as S3 answers
        ("Permissions" of GetObject and HeadObject, Amazon S3 API Reference:
        https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html)."""
        kms_key = self.bucket_keys.get(bucket)
        key_actions = ("kms:Decrypt",) if action == "s3:GetObject" else ("kms:GenerateDataKey",)
        self.policies.check(
            principal,
            action,
            f"arn:aws:s3:::{bucket}/{key}",
            resource_policy_of=f"arn:aws:s3:::{bucket}",
            key=kms_key,
            key_actions=key_actions if kms_key else (),
            key_context={"kms:ViaService": f"s3.{REGION}.amazonaws.com"},
        )
        if action == "s3:GetObject":
            self._check_missing_key(principal, bucket, key)

    def check_s3_head(self, principal: Principal, bucket: str, key: str) -> None:
        """A HEAD of an object: ``s3:GetObject``, without the key (nothing is decrypted)."""
        bucket_arn = f"arn:aws:s3:::{bucket}"
        self.policies.check(
            principal, "s3:GetObject", f"{bucket_arn}/{key}", resource_policy_of=bucket_arn
        )

    def check_s3_list(self, principal: Principal, bucket: str, prefix: str) -> None:
        """A listing of ``prefix``: ``s3:ListBucket`` on the bucket, with ``s3:prefix``."""
        bucket_arn = f"arn:aws:s3:::{bucket}"
        self.policies.check(
            principal,
            "s3:ListBucket",
            bucket_arn,
            {"s3:prefix": prefix},
            resource_policy_of=bucket_arn,
        )

    def _check_missing_key(self, principal: Principal, bucket: str, key: str) -> None:
        from botocore.exceptions import ClientError

        from .._clients import emulated_client

        try:
            emulated_client("s3").head_object(Bucket=bucket, Key=key)
            return
        except ClientError:
            pass  # missing (or no such bucket): S3 decides what to say by ListBucket
        bucket_arn = f"arn:aws:s3:::{bucket}"
        allowed, why = self.policies.allows(
            principal, "s3:ListBucket", bucket_arn, resource_policy_of=bucket_arn
        )
        if not allowed:
            raise AccessDeniedError(
                principal,
                "s3:ListBucket",
                bucket_arn,
                f"{why}, and without it S3 answers a missing key ({key}) with AccessDenied",
            )

    # ---------------------------------------------------------------- own clients

    def client_call_check(self, principal: Principal, service: str) -> Optional[CallCheck]:
        """The check for a call a component makes with its own boto3 client (the trigger's,
        the Glue script's): S3 objects and buckets and the Data Catalog (its catalog,
        database and table, as IAM checks Glue's catalog calls), DynamoDB tables and Step
        Functions, with the keys the services use. Other services are not checked (None)."""
        checks = {
            "glue": self._check_glue_call,
            "s3": self._check_s3_call,
            "dynamodb": self._check_table_call,
            "stepfunctions": self._check_states_call,
        }
        check = checks.get(service)
        if check is None:
            return None
        return lambda api, params: check(principal, api, params)

    def _check_glue_call(self, principal: Principal, api: str, params: Mapping[str, Any]) -> None:
        """A job run's calls act on the job (``job/<name>``); the others on the catalog."""
        if api in _GLUE_JOB_RUN_APIS:
            self.policies.check(principal, f"glue:{api}", glue_job_arn(params.get("JobName", "")))
            return
        self._check_catalog(principal, api, params)

    def _check_catalog(self, principal: Principal, api: str, params: Mapping[str, Any]) -> None:
        prefix = f"arn:aws:glue:{REGION}:{ACCOUNT}"
        if "Database" in api and "Table" not in api and "Partition" not in api:
            database = params.get("Name") or params.get("DatabaseInput", {}).get("Name")
            table = None
        else:
            database = params.get("DatabaseName")
            table = (
                params.get("TableName")
                or params.get("TableInput", {}).get("Name")
                or params.get("Name")
            )
        resources = [f"{prefix}:catalog"]
        if database:
            resources.append(f"{prefix}:database/{database}")
            if table:
                resources.append(f"{prefix}:table/{database}/{table}")
        for resource in resources:
            self.policies.check(principal, f"glue:{api}", resource)

    def _check_s3_call(self, principal: Principal, api: str, params: Mapping[str, Any]) -> None:
        bucket = str(params.get("Bucket", ""))
        if "Key" in params:
            action = _S3_OBJECT_ACTIONS.get(api, f"s3:{api}")
            self.check_s3(principal, action, bucket, str(params["Key"]))
            return
        action = "s3:ListBucket" if api.startswith("ListObject") else f"s3:{api}"
        self.policies.check(principal, action, f"arn:aws:s3:::{bucket}")

    def _check_table_call(self, principal: Principal, api: str, params: Mapping[str, Any]) -> None:
        name = str(params["TableName"])
        key = self.table_keys.get(name)
        self.policies.check(
            principal,
            f"dynamodb:{api}",
            f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            key=key,
            key_actions=("kms:Decrypt",) if key else (),
            key_context={"kms:ViaService": f"dynamodb.{REGION}.amazonaws.com"},
        )

    def _check_states_call(self, principal: Principal, api: str, params: Mapping[str, Any]) -> None:
        resource = params.get("stateMachineArn") or params.get("executionArn")
        if resource is None:
            raise UnsupportedPolicyError(
                f"the emulation does not know which resource states:{api} acts on"
            )
        self.policies.check(principal, f"states:{api}", str(resource))

    # ---------------------------------------------------------------- workflows

    def task_gate(self, principal: Principal, glue_job_arn: Callable[[str], str]) -> TaskGate:
        """The check a state machine's task states pass: its role, per integration."""

        def gate(sfn_resource: str, parameters: Mapping[str, Any]) -> None:
            resource = sfn_resource.split(":::", 1)[-1]
            if resource.startswith("glue:startJobRun"):
                job = glue_job_arn(str(parameters.get("JobName")))
                self.policies.check(principal, "glue:StartJobRun", job)
                if resource.endswith(".sync"):
                    self.policies.check(principal, "glue:GetJobRun", job)
            elif resource == "aws-sdk:glue:getJobRun":
                job = glue_job_arn(str(parameters.get("JobName")))
                self.policies.check(principal, "glue:GetJobRun", job)
            elif resource == "sns:publish":
                topic = str(parameters.get("TopicArn"))
                self._check_with_key(principal, "sns:Publish", topic, self.topic_keys, "sns")
            elif resource == "aws-sdk:s3:getObject":
                self.check_s3(
                    principal, "s3:GetObject", str(parameters["Bucket"]), str(parameters["Key"])
                )
            else:
                raise UnsupportedPolicyError(
                    f"the emulation does not know which permissions {sfn_resource} needs"
                )

        return gate

    # ---------------------------------------------------------------- EventBridge

    def check_event_delivery(self, rule_arn: str, target_arn: str) -> None:
        """EventBridge delivering to a rule's target (a function or a queue)."""
        context = {"aws:SourceArn": rule_arn, "aws:SourceAccount": ACCOUNT}
        if ":lambda:" in target_arn:
            self.policies.check(EVENTS, "lambda:InvokeFunction", target_arn, context)
            return
        self._check_with_key(
            EVENTS, "sqs:SendMessage", target_arn, self.queue_keys, "sqs", context=context
        )

    def check_queue_send(self, principal: Principal, queue_arn: str) -> None:
        self._check_with_key(principal, "sqs:SendMessage", queue_arn, self.queue_keys, "sqs")

    def _check_with_key(
        self,
        principal: Principal,
        action: str,
        resource: str,
        keys: Mapping[str, str],
        service: str,
        *,
        context: Optional[Mapping[str, Any]] = None,
    ) -> None:
        """A call to an encrypted topic or queue: the call, then the key use the service
        makes on the caller's behalf (``kms:ViaService``)."""
        key = keys.get(resource)
        key_context = {**(context or {}), "kms:ViaService": f"{service}.{REGION}.amazonaws.com"}
        if service == "sqs":  # SQS encrypts with the queue's ARN as encryption context
            key_context["kms:EncryptionContext:aws:sqs:arn"] = resource
        if principal == EVENTS:
            # EventBridge's key use carries no aws:SourceArn/aws:SourceAccount (AWS: those
            # keys are not supported in key policies for EventBridge targets).
            key_context.pop("aws:SourceArn", None)
            key_context.pop("aws:SourceAccount", None)
        self.policies.check(
            principal,
            action,
            resource,
            context,
            key=key,
            key_actions=("kms:GenerateDataKey", "kms:Decrypt") if key else (),
            key_context=key_context,
        )

    # ---------------------------------------------------------------- alarms

    def check_alarm_publish(self, alarm_arn: str, topic_arn: str) -> None:
        """CloudWatch publishing an alarm's state change to a topic."""
        context = {"aws:SourceArn": alarm_arn, "aws:SourceAccount": ACCOUNT}
        self._check_with_key(
            CLOUDWATCH, "sns:Publish", topic_arn, self.topic_keys, "sns", context=context
        )


class RoleClient:
    """A boto3 client of a component's own code (the trigger, the Glue script): each call
    is checked first as the component's role; a denial raises what the service raises."""

    def __init__(self, client: Any, check: CallCheck) -> None:
        self._client = client
        self._check = check

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        api = self._client.meta.method_to_api_mapping.get(name)
        if api is None or not callable(attribute):
            return attribute
        service = str(self._client.meta.service_model.endpoint_prefix)

        def call(**kwargs: Any) -> Any:
            try:
                self._check(api, kwargs)
            except AccessDeniedError as denied:
                raise access_denied_error(denied, f"{service}:{api}") from None
            return attribute(**kwargs)

        return call


def access_denied_error(denied: AccessDeniedError, operation: str) -> Exception:
    """The botocore error a denied call raises, with the service's own error code (SNS says
    ``AuthorizationError``, or ``KMSAccessDenied`` for the topic's key; S3 ``AccessDenied``)."""
    from botocore.exceptions import ClientError

    service = operation.split(":::", 1)[-1].removeprefix("aws-sdk:").split(":", 1)[0]
    code = "AccessDeniedException"
    if service == "sns":
        code = "KMSAccessDenied" if denied.action.startswith("kms:") else "AuthorizationError"
    elif service == "s3":
        code = "AccessDenied"
    error: Exception = ClientError(
        {
            "Error": {"Code": code, "Message": str(denied)},
            "ResponseMetadata": {
                "HTTPStatusCode": 400 if service != "s3" else 403,
                "RequestId": "local",
            },
        },
        operation,
    )
    return error


def _bucket_key(props: Mapping[str, Any]) -> Optional[Any]:
    rules = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
    for rule in rules:
        default = rule.get("ServerSideEncryptionByDefault", {})
        if default.get("SSEAlgorithm") in ("aws:kms", "aws:kms:dsse"):
            return default.get("KMSMasterKeyID")
    return None
