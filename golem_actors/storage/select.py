"""Which storage a session moves files with: ``"gftp"`` (the default: what every provider on the
real network speaks, through the requestor's own yagna), ``"http"`` (a server on 127.0.0.1, for
providers on this machine only), or a ``Storage`` object the caller made (and closes) itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from golem_actors.storage.http import HttpStorage, Storage
from golem_actors.yagna import ApiConfig

__all__ = ["STORAGE_KINDS", "SessionStorage", "check_storage", "open_storage"]

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


class SessionStorage:
    """A session's storage: the choice checked when the session is made, opened when it starts
    (before the budget is reserved: a storage that cannot start costs nothing), closed once."""

    def __init__(self, choice: str | Storage) -> None:
        check_storage(choice)
        self.choice = choice
        self.current: Storage | None = None
        self._close: Callable[[], None] = lambda: None

    def open(self, config: ApiConfig) -> Storage:
        """Start it (``StorageError`` when it cannot); once."""
        if self.current is None:
            self.current, self._close = open_storage(self.choice, config)
        return self.current

    def close(self) -> None:
        """Stop it if it was started (one passed in by the caller is the caller's to close)."""
        if self.current is not None:
            self.current = None
            self._close()
