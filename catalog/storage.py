"""Where document bytes live: a small interface, and a local folder outside the web root by default.

Keys are generated here (random, never derived from a file's name), so nothing a provider types
reaches the file system.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
from pathlib import Path
from typing import Protocol

from market.settings import Settings

_KEY = re.compile(r"^[0-9a-f]{32}$")


class Storage(Protocol):
    async def put(self, data: bytes) -> str:
        """Store the bytes under a new generated key and return the key."""
        ...

    async def get(self, key: str) -> bytes:
        """The bytes stored under `key`; FileNotFoundError if there are none."""
        ...

    async def delete(self, key: str) -> None:
        """Forget the bytes under `key`; no error if they are already gone."""
        ...


def new_key() -> str:
    return secrets.token_hex(16)


class LocalStorage:
    """Files under `root/ab/abcdef...`: two-character folders keep any one folder small."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise FileNotFoundError(key)
        return self.root / key[:2] / key

    async def put(self, data: bytes) -> str:
        key = new_key()
        path = self._path(key)
        await asyncio.to_thread(_write, path, data)
        return key

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self._path(key).unlink)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    temporary = path.with_suffix(".part")
    temporary.write_bytes(data)
    os.chmod(temporary, 0o640)
    temporary.replace(path)


def storage_for(settings: Settings) -> Storage:
    return LocalStorage(settings.data_dir / "documents")
