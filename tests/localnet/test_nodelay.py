"""The TCP_NODELAY library localnet preloads into its daemons: built once, effective, optional."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from golem_actors.localnet import nodelay
from golem_actors.localnet.nodelay import build_shim, preload_env

# Both ends of one loopback TCP connection, as a process sees them: (connected, accepted).
PROBE = """
import json, socket
listener = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(listener.getsockname())
accepted, _ = listener.accept()
ends = [s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in (client, accepted)]
print(json.dumps(ends))
"""


def nodelay_flags(env: dict[str, str]) -> list[int]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    flags: list[int] = json.loads(done.stdout)
    return flags


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = build_shim(tmp_path_factory.mktemp("cache"))
    assert built is not None, "gcc is needed (bash .ci/bootstrap installs it)"
    return built


def test_the_shim_sets_nodelay_on_connected_and_accepted_sockets(shim: Path):
    assert nodelay_flags({}) == [0, 0]  # Python leaves Nagle on, as yagna does
    assert all(nodelay_flags(preload_env(shim)))


def test_it_is_built_once_per_source(shim: Path):
    built = shim.stat().st_mtime_ns
    assert build_shim(shim.parent) == shim
    assert shim.stat().st_mtime_ns == built
    assert [p.name for p in shim.parent.iterdir()] == [shim.name]  # no temporary files left


@pytest.mark.parametrize(
    ("compiler", "reason"),
    [("no-such-cc", "no C compiler (no-such-cc)"), ("false", "false failed")],
)
def test_without_a_working_compiler_localnet_says_so_and_runs_without(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    compiler: str,
    reason: str,
):
    monkeypatch.setattr(nodelay, "_warned", False)
    with caplog.at_level(logging.WARNING, logger=nodelay.__name__):
        assert build_shim(tmp_path, compiler=compiler) is None
    assert "TCP_NODELAY shim is unavailable" in caplog.text
    assert reason in caplog.text
    assert not list(tmp_path.glob("*.so"))
    assert preload_env(None) == {}


def test_it_can_be_switched_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(nodelay.ENV_SWITCH, "0")
    assert build_shim(tmp_path) is None


def test_an_existing_preload_is_kept(shim: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LD_PRELOAD", "/opt/other.so")
    assert preload_env(shim) == {"LD_PRELOAD": f"{shim} /opt/other.so"}
