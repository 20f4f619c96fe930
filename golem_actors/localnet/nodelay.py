"""TCP_NODELAY for yagna's bus sockets: a tiny LD_PRELOAD library, built once per data dir.

yagna's service bus never sets ``TCP_NODELAY``. Between daemons that talk over TCP (localnet's
central net), a small message sent while the previous one is unacknowledged waits for the
peer's delayed ACK: about 40 ms per daemon on every hop (``shared/notes/vpn-proof.md`` §4-6;
VPN round trips went from 88 ms to 2 ms with this fix). yagna is static except for libc, so its
``connect``/``accept`` calls go through libc and a preloaded library can set the option on each
TCP socket they return.

The other known fix, a network namespace whose loopback routes carry ``quickack``, needs root
and would hide the daemons' REST ports from requestors on the host's loopback; this one needs
only a C compiler, and without one localnet runs as before (slower across daemons) after saying
so once in the log.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["SOURCE", "build_shim", "preload_env"]

log = logging.getLogger(__name__)

#: ``GOLEM_LOCALNET_NODELAY=0`` runs the daemons without the shim (to measure the difference).
ENV_SWITCH = "GOLEM_LOCALNET_NODELAY"

SOURCE = r"""
/* golem-actors localnet: TCP_NODELAY on the TCP sockets a process connects or accepts. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*accept_fn)(int, struct sockaddr *, socklen_t *);
typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);

static void no_delay(int fd) {
    int kind = 0, on = 1;
    socklen_t kind_len = sizeof kind;
    struct sockaddr_storage local;
    socklen_t local_len = sizeof local;
    if (fd < 0) return;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &kind, &kind_len) != 0) return;
    if (kind != SOCK_STREAM) return;
    if (getsockname(fd, (struct sockaddr *)&local, &local_len) != 0) return;
    if (local.ss_family != AF_INET && local.ss_family != AF_INET6) return;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    static connect_fn real;
    if (!real) real = (connect_fn)dlsym(RTLD_NEXT, "connect");
    int rc = real(fd, addr, len);
    int saved = errno;
    if (rc == 0 || saved == EINPROGRESS) no_delay(fd);
    errno = saved;
    return rc;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
    static accept_fn real;
    if (!real) real = (accept_fn)dlsym(RTLD_NEXT, "accept");
    int rc = real(fd, addr, len);
    int saved = errno;
    no_delay(rc);
    errno = saved;
    return rc;
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    static accept4_fn real;
    if (!real) real = (accept4_fn)dlsym(RTLD_NEXT, "accept4");
    int rc = real(fd, addr, len, flags);
    int saved = errno;
    no_delay(rc);
    errno = saved;
    return rc;
}
"""

_warned = False


def build_shim(cache_dir: Path, *, compiler: str = "gcc") -> Path | None:
    """The shim's path, compiled into ``cache_dir`` on first use; None if it cannot be built.

    The file name carries a hash of the source, so a changed source is rebuilt and a stale
    library is never loaded. Concurrent builders each compile to a temporary file and rename.
    """
    if os.environ.get(ENV_SWITCH, "1") == "0":
        log.info("TCP_NODELAY shim disabled by %s=0", ENV_SWITCH)
        return None
    digest = hashlib.sha256(SOURCE.encode()).hexdigest()[:16]
    target = cache_dir / f"nodelay-{digest}.so"
    if target.is_file():
        return target
    gcc = shutil.which(compiler)
    if gcc is None:
        _unavailable(f"no C compiler ({compiler}) on PATH")
        return None
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".nodelay-") as tmp:
        source = Path(tmp) / "nodelay.c"
        source.write_text(SOURCE)
        built = Path(tmp) / "nodelay.so"
        try:
            done = subprocess.run(
                [gcc, "-O2", "-shared", "-fPIC", "-o", str(built), str(source), "-ldl"],
                capture_output=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            _unavailable(f"{compiler} failed to run: {exc}")
            return None
        if done.returncode != 0:
            _unavailable(f"{compiler} failed: {done.stderr.decode(errors='replace')[-300:]}")
            return None
        built.replace(target)
    return target


def preload_env(shim: Path | None) -> dict[str, str]:
    """The environment entries that load ``shim`` into a daemon (none without a shim)."""
    if shim is None:
        return {}
    others = os.environ.get("LD_PRELOAD", "").strip()
    return {"LD_PRELOAD": f"{shim} {others}".strip()}


def _unavailable(reason: str) -> None:
    global _warned  # noqa: PLW0603 - one warning per process is enough
    if not _warned:
        log.warning(
            "localnet: the TCP_NODELAY shim is unavailable (%s); messages between the daemons "
            "may stall ~40 ms per hop. Install gcc (Debian: apt-get install gcc libc6-dev).",
            reason,
        )
        _warned = True
