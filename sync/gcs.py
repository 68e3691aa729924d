"""GCS staging for large pushes: upload Parquet, verify its checksum, load from gs://, clean up.

Single-object URIs only (the emulator pair cannot expand wildcards; one object per chunk
keeps verification exact anyway).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from cbi_local.config import Settings


class ChecksumMismatch(RuntimeError):
    pass


def make_storage_client(settings: Settings) -> Any:
    """A google-cloud-storage client: the emulator (STORAGE_EMULATOR_HOST) anonymously, else ADC."""
    import os

    from google.cloud import storage

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project=settings.bq_project, credentials=AnonymousCredentials())
    return storage.Client(project=settings.bq_project)


def _md5_b64(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


def upload_verified(client: Any, bucket_name: str, object_name: str, path: Path) -> str:
    """Upload `path` (idempotent: same name, same bytes) and check the stored MD5; the gs:// URI."""
    bucket = client.bucket(bucket_name)
    if not bucket.exists():
        client.create_bucket(bucket_name)
    blob = bucket.blob(object_name)
    want = _md5_b64(path)
    blob.upload_from_filename(str(path), content_type="application/octet-stream")
    blob.reload()
    if blob.md5_hash != want or blob.size != path.stat().st_size:
        raise ChecksumMismatch(f"gs://{bucket_name}/{object_name}: stored md5 {blob.md5_hash} size {blob.size}, local md5 {want} size {path.stat().st_size}")
    return f"gs://{bucket_name}/{object_name}"


def delete_uri(client: Any, uri: str) -> None:
    from google.api_core.exceptions import NotFound

    bucket_name, _, name = uri.removeprefix("gs://").partition("/")
    try:
        client.bucket(bucket_name).blob(name).delete()
    except NotFound:
        pass


def exists(client: Any, uri: str) -> bool:
    bucket_name, _, name = uri.removeprefix("gs://").partition("/")
    return client.bucket(bucket_name).blob(name).exists()
