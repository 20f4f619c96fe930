"""Which storage a session moves files with: ``"http"`` (the default for now), ``"gftp"``, or a
``Storage`` object the caller made (and closes) itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from golem_actors.storage.http import HttpStorage, Storage
from golem_actors.yagna import ApiConfig

__all__ = ["STORAGE_KINDS", "check_storage", "open_storage"]

STORAGE_KINDS = ("http", "gftp")
_METHODS = ("publish_bytes", "publish_file", "upload_slot", "release")


def check_storage(choice: Any) -> None:
    """``ValueError`` naming the ``storage`` option when it is neither a kind nor a storage."""
    if isinstance(choice, str):
        if choice not in STORAGE_KINDS:
            raise ValueError(f"storage must be one of {STORAGE_KINDS} or a Storage, got {choice!r}")
        return
    missing = [m for m in _METHODS if not callable(getattr(choice, m, None))]
    if missing:
        raise ValueError(f"storage {choice!r} lacks {', '.join(missing)} (see Storage)")


def open_storage(choice: str | Storage, config: ApiConfig) -> tuple[Storage, Callable[[], None]]:
    """The storage and what closes it (nothing, for one the caller passed in)."""
    if choice == "http":
        http = HttpStorage()
        return http, http.close
    if choice == "gftp":
        from golem_actors.storage.gftp import GftpStorage  # noqa: PLC0415 - websockets on demand

        gftp = GftpStorage(config)
        return gftp, gftp.close
    assert not isinstance(choice, str)
    return choice, lambda: None
