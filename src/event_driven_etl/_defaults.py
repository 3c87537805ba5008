"""Secure defaults in one place, kept apart from the wiring.

Everything a construct creates on the user's behalf comes from here, so the security
posture can be read (and reviewed) in one file. What the constructs do to the template
beyond that (acknowledgements, DependsOn tidying) is ``_hygiene``'s.
"""

from __future__ import annotations

import weakref
from typing import Optional

from aws_cdk import Aws, CfnResource, Duration, Fn, Names, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ._hygiene import skip_checkov

DEFAULT_LOG_RETENTION = logs.RetentionDays.ONE_YEAR
"""Retention of the log groups the constructs create."""

DEFAULT_QUEUE_RETENTION = Duration.days(14)
"""Longest SQS retention: a dead-lettered event waits two weeks for an operator."""


_KEY_SERVICES: weakref.WeakKeyDictionary[kms.Key, set[str]] = weakref.WeakKeyDictionary()
"""The services each key's policy already lets use it (weak: a key's entry goes with it)."""


def _first_time(key: kms.Key, service: str) -> bool:
    """True once per key and service: key policy statements are added only once. (A key
    CDK created in JavaScript may come back as another Python object; the key policy then
    drops the repeated statement itself, as CDK does with identical statements.)"""
    done = _KEY_SERVICES.setdefault(key, set())
    if service in done:
        return False
    done.add(service)
    return True


def new_encryption_key(scope: Construct, construct_id: str, description: str) -> kms.Key:
    """A customer-managed key with rotation, kept when the stack is deleted."""
    return kms.Key(
        scope,
        construct_id,
        description=description,
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.RETAIN,
    )


def allow_service_to_use_key(
    key: kms.IKey, service: str, actions: Optional[list[str]] = None
) -> None:
    """Let an AWS service (CloudWatch, EventBridge ...) encrypt with a key defined in this app.

    A key imported by ARN cannot be changed from here: its policy must already allow the
    service (the README's security section lists which). Idempotent per key and service.
    """
    if not isinstance(key, kms.Key) or not _first_time(key, service):
        return
    stack = Stack.of(key)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid=f"Allow{service.split('.', maxsplit=1)[0].capitalize()}ToUseTheKey",
            principals=[iam.ServicePrincipal(service)],
            actions=actions or ["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],  # in a key policy, "*" means this key
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
        )
    )


def allow_eventbridge_to_use_key_for_queues(key: kms.IKey) -> None:
    """Let EventBridge encrypt messages for this account's queues in this region.

    AWS documents EventBridge's statement for an encrypted SQS target without conditions
    ("Amazon SQS permissions", Using resource-based policies for Amazon EventBridge:
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions)
    and says ``aws:SourceArn``/``aws:SourceAccount`` are not supported in key policies for
    EventBridge publishing to encrypted topics (#eb-sns-permissions): a statement conditioned
    on them would deny every delivery. What the key use does carry is SQS's encryption
    context, the queue's ARN (``aws:sqs:arn``, "Encryption context", Amazon SQS Developer
    Guide: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html).
    The queues' own ARNs would make a cycle (each queue names the key), so the statement
    names this account's queues in this region; which rule may send to which queue is the
    queue policies' business (``aws:SourceArn`` there). Idempotent per key.
    """
    if not isinstance(key, kms.Key) or not _first_time(key, "events-sqs"):
        return
    stack = Stack.of(key)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowEventBridgeToUseTheKeyForQueues",
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],  # in a key policy, "*" means this key
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:sqs:arn": (
                        f"arn:{stack.partition}:sqs:{stack.region}:{stack.account}:*"
                    )
                }
            },
        )
    )


def allow_logs_to_use_key(key: kms.IKey) -> None:
    """CloudWatch Logs encrypts a log group only if the key policy lets its regional principal."""
    if not isinstance(key, kms.Key) or not _first_time(key, "logs"):
        return
    stack = Stack.of(key)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchLogsToUseTheKey",
            # Regional, and in the partition's own domain (amazonaws.com.cn in China).
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.{stack.url_suffix}")],
            actions=[
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            resources=["*"],  # in a key policy, "*" means this key
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": (
                        f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"
                    )
                }
            },
        )
    )


def new_secure_bucket(
    scope: Construct,
    construct_id: str,
    *,
    versioned: bool,
    removal_policy: RemovalPolicy,
    event_bridge_enabled: bool = False,
    encryption_key: Optional[kms.IKey] = None,
    access_logs_bucket: Optional[s3.IBucket] = None,
    access_logs_prefix: Optional[str] = None,
    lifecycle_rules: Optional[list[s3.LifecycleRule]] = None,
    logs_bucket_is_ours: bool = True,
) -> s3.Bucket:
    """Private, TLS-only, encrypted, access-logged bucket.

    Access logs are always delivered by bucket policy, never by ACL. For a logs bucket of
    the pipeline's own, CDK writes that policy (the pipeline sets its flag); a logs bucket
    you bring lives outside the pipeline, where CDK reads *your* app's flags and would
    switch the bucket to ACL ``LogDeliveryWrite`` (or fail on S3's default object
    ownership), so the logging configuration and the policy statement are written here.
    """
    bucket = s3.Bucket(
        scope,
        construct_id,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.KMS if encryption_key else s3.BucketEncryption.S3_MANAGED,
        encryption_key=encryption_key,
        bucket_key_enabled=bool(encryption_key),
        enforce_ssl=True,
        minimum_tls_version=1.2,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=versioned,
        event_bridge_enabled=event_bridge_enabled,
        removal_policy=removal_policy,
        auto_delete_objects=False,
        server_access_logs_bucket=access_logs_bucket if logs_bucket_is_ours else None,
        server_access_logs_prefix=access_logs_prefix if logs_bucket_is_ours else None,
        lifecycle_rules=lifecycle_rules,
    )
    if access_logs_bucket is not None and not logs_bucket_is_ours:
        _log_by_bucket_policy(bucket, access_logs_bucket, access_logs_prefix or "")
    return bucket


def _log_by_bucket_policy(bucket: s3.Bucket, logs_bucket: s3.IBucket, prefix: str) -> None:
    """S3 server access logs of ``bucket`` into ``logs_bucket``, granted to the logging
    service by bucket policy (as AWS recommends over the log-delivery ACL)."""
    resource = bucket.node.default_child
    if isinstance(resource, s3.CfnBucket):
        resource.logging_configuration = s3.CfnBucket.LoggingConfigurationProperty(
            destination_bucket_name=logs_bucket.bucket_name, log_file_prefix=prefix or None
        )
    logs_bucket.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
            actions=["s3:PutObject"],
            resources=[logs_bucket.arn_for_objects(f"{prefix}*")],
            conditions={
                "ArnLike": {"aws:SourceArn": bucket.bucket_arn},
                "StringEquals": {"aws:SourceAccount": Stack.of(bucket).account},
            },
        )
    )


def new_access_logs_bucket(
    scope: Construct, construct_id: str, removal_policy: RemovalPolicy
) -> s3.Bucket:
    """Target of S3 server access logs: S3 supports only SSE-S3 there, not SSE-KMS.

    Log delivery is granted by bucket policy (the pipeline sets CDK's
    ``@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy`` flag on itself), so ACLs stay off.
    """
    bucket = s3.Bucket(
        scope,
        construct_id,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=True,
        removal_policy=removal_policy,
        lifecycle_rules=[
            s3.LifecycleRule(
                id="ExpireAccessLogs",
                expiration=Duration.days(365),
                noncurrent_version_expiration=Duration.days(30),
            )
        ],
    )
    resource = bucket.node.default_child
    if isinstance(resource, CfnResource):
        skip_checkov(resource, "CKV_AWS_18")
    return bucket


def new_topic(scope: Construct, construct_id: str, encryption_key: kms.IKey) -> sns.Topic:
    """KMS-encrypted, TLS-only topic; CloudWatch alarms may use its key (the topic policy
    that lets them publish is added with the alarms). Nothing else publishes as a service:
    the workflows publish with their roles."""
    allow_service_to_use_key(encryption_key, "cloudwatch.amazonaws.com")
    return sns.Topic(scope, construct_id, master_key=encryption_key, enforce_ssl=True)


def new_queue(
    scope: Construct,
    construct_id: str,
    *,
    encryption_key: Optional[kms.IKey] = None,
    visibility_timeout: Optional[Duration] = None,
    dead_letter_queue: Optional[sqs.DeadLetterQueue] = None,
) -> sqs.Queue:
    """TLS-only, encrypted queue (SQS-managed keys unless the user brings a KMS key)."""
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.KMS if encryption_key else sqs.QueueEncryption.SQS_MANAGED,
        encryption_master_key=encryption_key,
        data_key_reuse=Duration.hours(1) if encryption_key else None,
        enforce_ssl=True,
        retention_period=DEFAULT_QUEUE_RETENTION,
        visibility_timeout=visibility_timeout,
        dead_letter_queue=dead_letter_queue,
    )


def new_log_group(
    scope: Construct,
    construct_id: str,
    *,
    log_group_name: Optional[str],
    retention: Optional[logs.RetentionDays],
    encryption_key: Optional[kms.IKey],
) -> logs.LogGroup:
    """A retained log group, encrypted with ``encryption_key`` when given, kept for
    ``retention`` (default :data:`DEFAULT_LOG_RETENTION`)."""
    if encryption_key is not None:
        allow_logs_to_use_key(encryption_key)
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=log_group_name,
        retention=retention or DEFAULT_LOG_RETENTION,
        encryption_key=encryption_key,
        removal_policy=RemovalPolicy.RETAIN,
    )


def vended_log_group_name(scope: Construct) -> str:
    """``/aws/vendedlogs/states/<unique path>-<stack uuid>`` for a state machine's log group.

    The vended-logs prefix keeps the account's log resource policy small; the stack's own
    id makes the retained group's name new after a destroy and a new deploy of the app.
    """
    unique_name = Names.unique_resource_name(scope, max_length=200)
    stack_id = Fn.select(2, Fn.split("/", Aws.STACK_ID))
    return f"/aws/vendedlogs/states/{unique_name}-{stack_id}"


def new_state_machine_log_group(
    scope: Construct, *, retention: Optional[logs.RetentionDays], encryption_key: Optional[kms.IKey]
) -> logs.LogGroup:
    """A state machine's execution log group, retained, under a vended-logs name."""
    return new_log_group(
        scope,
        "LogGroup",
        log_group_name=vended_log_group_name(scope),
        retention=retention,
        encryption_key=encryption_key,
    )
