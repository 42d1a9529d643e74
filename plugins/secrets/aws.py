"""``aws-sm://REGION/PREFIX?endpoint=URL``: AWS Secrets Manager via boto3.

Secret ``NAME`` is the secret id ``PREFIX/NAME`` (a household's ``PREFIX/tenant/<id>/NAME``, so an
IAM policy can grant one household's subtree); its ``SecretString`` at stage ``AWSCURRENT`` is the
value (a rotation's ``AWSPENDING`` version is never served). With ``enable_set`` a missing secret
is created; ``remove`` deletes without a recovery window unless ``recovery_days=N`` is given.
Credentials come from the usual AWS chain. Query options: ``endpoint``, ``timeout`` (seconds, 5).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import SplitResult

from app.hookspecs import hookimpl
from app.secrets import (
    BackendUnavailable,
    SecretAccessDenied,
    SecretStore,
    StoreOptions,
    backend_path,
)

CURRENT_STAGE = "AWSCURRENT"
# Answers the store handles itself (absent; lost a create race); every other error is typed.
_PASS_THROUGH = {"ResourceNotFoundException", "ResourceExistsException"}
_DENIED = {"AccessDeniedException", "AccessDenied", "UnrecognizedClientException"}


class AwsSecretsStore(SecretStore):
    name = "aws-sm"

    def __init__(
        self,
        client: Any,
        prefix: str = "",
        *,
        recovery_days: int | None = None,
        options: StoreOptions | None = None,
    ) -> None:
        super().__init__(options)
        self._client = client
        self.prefix = prefix.strip("/")
        self.recovery_days = recovery_days
        # botocore logs whole response bodies (SecretString included) at DEBUG, before the store
        # can register the value with the redaction filter: never let it log below INFO.
        botocore_log = logging.getLogger("botocore")
        if botocore_log.getEffectiveLevel() < logging.INFO:
            botocore_log.setLevel(logging.INFO)

    def describe(self) -> str:
        return f"aws-sm {self._client.meta.region_name} {self.prefix}"

    def secret_id(self, name: str) -> str:
        path = backend_path(name)
        return f"{self.prefix}/{path}" if self.prefix else path

    def _call(self, names: list[str], method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._client, method)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _PASS_THROUGH:
                raise
            if code in _DENIED:
                raise SecretAccessDenied(names, self.name) from None
            raise BackendUnavailable(self.name, code or "ClientError") from None
        except BotoCoreError as exc:
            raise BackendUnavailable(self.name, type(exc).__name__) from None

    def check(self) -> None:
        filters = [{"Key": "name", "Values": [self.prefix]}] if self.prefix else []
        self._call([], "list_secrets", MaxResults=1, Filters=filters)

    def backend_fetch(self, names: list[str]) -> dict[str, str]:
        from botocore.exceptions import ClientError

        found: dict[str, str] = {}
        for name in names:
            try:
                response = self._call(
                    [name], "get_secret_value",
                    SecretId=self.secret_id(name), VersionStage=CURRENT_STAGE,
                )
            except ClientError:
                continue
            value = response.get("SecretString")
            if isinstance(value, str):
                found[name] = value
        return found

    def backend_store(self, name: str, value: str) -> None:
        from botocore.exceptions import ClientError

        secret_id = self.secret_id(name)
        try:
            self._call([name], "put_secret_value", SecretId=secret_id, SecretString=value)
        except ClientError:
            try:
                self._call([name], "create_secret", Name=secret_id, SecretString=value)
            except ClientError:  # a concurrent create won the race: write a new version
                self._call([name], "put_secret_value", SecretId=secret_id, SecretString=value)

    def backend_delete(self, name: str) -> None:
        from botocore.exceptions import ClientError

        window: dict[str, Any] = (
            {"RecoveryWindowInDays": self.recovery_days}
            if self.recovery_days else {"ForceDeleteWithoutRecovery": True}
        )
        try:
            self._call([name], "delete_secret", SecretId=self.secret_id(name), **window)
        except ClientError:
            pass


@hookimpl
def secret_store(
    scheme: str, url: SplitResult, query: dict[str, list[str]], config: dict[str, Any]
) -> SecretStore | None:
    if scheme != "aws-sm":
        return None
    import boto3
    from botocore.config import Config

    region = url.hostname
    if not region:
        raise ValueError("aws-sm:// secret store URL needs a region: aws-sm://REGION/PREFIX")
    timeout = float(query.get("timeout", ["5"])[-1])
    client = boto3.session.Session().client(
        "secretsmanager",
        region_name=region,
        endpoint_url=query.get("endpoint", [None])[-1],
        config=Config(connect_timeout=timeout, read_timeout=timeout,
                      retries={"max_attempts": 2, "mode": "standard"}),
    )
    recovery = query.get("recovery_days", [None])[-1]
    return AwsSecretsStore(
        client, url.path, recovery_days=int(recovery) if recovery else None,
        options=StoreOptions.from_query(query),
    )
