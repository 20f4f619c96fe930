"""The [localnet] extra: without it the runtime works, and asking for localnet names the extra.

A plain ``pip install golem-actors`` is simulated in a child Python whose ``sys.modules`` maps the
extra's modules to None (so importing them fails as if they were not installed), which leaves this
test process's own imports untouched.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from golem_actors.extras import MissingExtraError, require_extra
from golem_actors.localnet.node import NodeError, find_yagna

HINT = "pip install 'golem-actors[localnet]'"
EXAMPLES = Path(__file__).parent.parent / "examples"
EXTRA_MODULES = ("google.protobuf", "psutil", "golem_node")


def _plain_install(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child Python that cannot import the extra's modules."""
    prelude = f"import sys\nfor _name in {EXTRA_MODULES!r}:\n    sys.modules[_name] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_require_extra_names_the_extra_and_the_missing_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "flatbuffers", None)
    with pytest.raises(MissingExtraError) as raised:
        require_extra("localnet", ("json", "flatbuffers"), part="localnet")
    message = str(raised.value)
    assert HINT in message
    assert "missing: flatbuffers" in message
    assert isinstance(raised.value, ImportError)  # `except ImportError` still catches it
    require_extra("localnet", ("json",), part="localnet")  # present: no error


def test_the_runtime_and_the_cli_import_nothing_of_localnet() -> None:
    child = _plain_install(
        """
        import importlib, pkgutil
        import golem_actors

        def walk(package):
            for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
                if info.name in ("golem_actors.localnet", "golem_actors.cli.__main__"):
                    continue
                module = importlib.import_module(info.name)
                if info.ispkg:
                    walk(module)

        walk(golem_actors)
        golem_actors.Golem, golem_actors.Metrics, golem_actors.ServiceActor
        loaded = sorted(m for m in sys.modules if m.startswith("golem_actors.localnet"))
        print("loaded:", loaded)
        """
    )
    assert child.returncode == 0, child.stderr
    assert "loaded: []" in child.stdout


def test_importing_localnet_without_the_extra_names_it() -> None:
    child = _plain_install("from golem_actors.localnet import LocalNet\n")
    assert child.returncode == 1
    assert "MissingExtraError" in child.stderr
    assert HINT in child.stderr
    assert "missing: google.protobuf, psutil" in child.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["localnet", "up"],
        ["localnet", "status"],
        ["localnet", "fault", "provider-1", "--crash", "exec"],
        ["run", f"{EXAMPLES / 'heartbeat.py'}:Heartbeat", "-n", "1", "--no-table"],
    ],
    ids=["localnet-up", "localnet-status", "localnet-fault", "run-on-localnet"],
)
def test_the_cli_asked_for_localnet_without_the_extra_names_it(
    argv: list[str], tmp_path: Path
) -> None:
    child = _plain_install(
        f"""
        from golem_actors.cli import main
        sys.exit(main({[*argv, "--data-dir", str(tmp_path)]!r}))
        """
    )
    assert child.returncode == 2, child.stderr
    assert child.stderr.startswith("golem-actors: error: localnet needs the [localnet] extra")
    assert HINT in child.stderr
    assert "Traceback" not in child.stderr
    assert not list(tmp_path.iterdir())  # nothing started, nothing written


def test_the_cli_without_the_extra_still_parses_and_helps() -> None:
    child = _plain_install(
        """
        from golem_actors.cli import main
        try:
            main(["localnet", "fault", "--help"])
        except SystemExit as exit_:
            print("exit", exit_.code)
        """
    )
    assert "exit 0" in child.stdout, child.stderr
    assert "--crash" in child.stdout


def test_a_missing_yagna_binary_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NodeError) as raised:
        find_yagna()
    assert HINT in str(raised.value)
