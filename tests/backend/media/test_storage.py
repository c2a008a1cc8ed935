"""One contract for every storage backend: the filesystem and S3 (moto's server speaking the
S3 API over HTTP, driven by the same aiobotocore client production uses)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from backend.embedded import free_port
from backend.media.storage import FilesystemStorage, S3Storage, Storage, StorageError, read_bytes

KEY = "video/2026/11/0123456789abcdef0123456789abcdef.mp4"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["filesystem", "s3"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    if request.param == "filesystem":
        store: Storage = FilesystemStorage(tmp_path / "media")
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        s3 = S3Storage(
            bucket="riffle-test",
            region="us-east-1",
            endpoint_url=endpoint,
            access_key_id="test",
            secret_access_key="test",
        )
        client = await s3._s3()
        await client.create_bucket(Bucket="riffle-test")
        store = s3
    try:
        yield store
    finally:
        await store.aclose()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.bin"
    path.write_bytes(bytes(range(256)) * 4096)  # 1 MiB, several read chunks
    return path


async def test_put_then_read_whole_and_ranges(storage: Storage, source: Path):
    await storage.put_file(KEY, source, "video/mp4")
    data = bytes(range(256)) * 4096
    assert await read_bytes(storage, KEY) == data
    assert b"".join([c async for c in storage.read(KEY, 10, 19)]) == data[10:20]
    assert b"".join([c async for c in storage.read(KEY, len(data) - 5)]) == data[-5:]
    assert b"".join([c async for c in storage.read(KEY, 300_000, 700_000)]) == data[300_000:700_001]


async def test_delete_is_final_and_repeatable(storage: Storage, source: Path):
    await storage.put_file(KEY, source, "video/mp4")
    await storage.delete(KEY)
    await storage.delete(KEY)
    with pytest.raises(StorageError):
        await read_bytes(storage, KEY)


async def test_missing_object_is_a_storage_error(storage: Storage):
    with pytest.raises(StorageError):
        await read_bytes(storage, KEY)


@pytest.mark.parametrize("key", ["../etc/passwd", "video/2026/11/x.mp4", "/abs/path", ""])
async def test_keys_that_are_not_ours_are_refused(storage: Storage, source: Path, key: str):
    with pytest.raises(ValueError, match="not a media storage key"):
        await storage.put_file(key, source, "video/mp4")
