"""Artifacts in an S3-compatible object store (AWS S3, MinIO, Ceph, ...).

    MLGATE_ARTIFACT_URL=s3://bucket/some/prefix
    MLGATE_S3_ENDPOINT_URL=http://minio.internal:9000   (leave unset for AWS)

Credentials come from the usual AWS places (environment, config files, instance roles). A put is
one PutObject, which S3 makes visible all at once or not at all.
"""

from __future__ import annotations

from typing import Any

from mlgate.errors import ArtifactError, ConfigError, InvalidInput


class S3ArtifactStore:
    def __init__(self, url: str, *, endpoint_url: str | None = None, client: Any = None) -> None:
        if not url.startswith("s3://") or len(url) <= len("s3://"):
            raise ConfigError(f"an S3 artifact URL looks like s3://bucket/prefix, not {url!r}")
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if client is None:
            try:
                import boto3
            except ImportError:
                raise ConfigError("S3 artifacts need boto3: pip install 'mlgate[s3]'") from None
            client = boto3.client("s3", endpoint_url=endpoint_url)
        self._client = client

    def put(self, key: str, data: bytes) -> None:
        self._call(
            "write",
            key,
            lambda: self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data),
        )

    def get(self, key: str) -> bytes:
        def read() -> bytes:
            body = self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

        return self._call("read", key, read)  # type: ignore[no-any-return]

    def delete(self, key: str) -> None:
        self._call(
            "delete",
            key,
            lambda: self._client.delete_object(Bucket=self.bucket, Key=self._key(key)),
        )

    def list_keys(self) -> list[str]:
        start = f"{self.prefix}/" if self.prefix else ""
        keys: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=start):
            keys.extend(item["Key"][len(start) :] for item in page.get("Contents", []))
        return sorted(keys)

    def _key(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise InvalidInput(f"artifact key {key!r} points outside the artifact prefix")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, key: str, action: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return action()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                raise ArtifactError(
                    f"artifact {key!r} is missing from s3://{self.bucket}/{self.prefix}; restore "
                    "it from a backup or train a new version"
                ) from None
            raise ArtifactError(f"could not {what} artifact {key!r} in S3: {code}") from None
        except BotoCoreError as exc:
            raise ArtifactError(f"could not {what} artifact {key!r} in S3: {exc}") from None
