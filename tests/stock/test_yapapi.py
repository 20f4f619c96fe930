"""yapapi 0.13 (from PyPI, unchanged, in .venv-yapapi) on localnet: a tagged image, files, paid.

``py/transform.py`` is written for the real network: yapapi reads ``YAGNA_APPKEY`` and
``YAGNA_API_URL`` itself, the image is resolved by tag through ``repository_url`` (set from
``GOLEM_REGISTRY_URL``), and it moves files with the ``gftp`` program it finds on PATH: here
ours (``golem_actors.storage.gftp_rpc``: GFTP through yagna's GSB API), since the golem-node
wheel ships yagna without it. One task sends a file, upper-cases it, reads a command's stdout
and fetches the result; leaving ``Golem`` terminates the agreement and accepts the invoice.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from golem_actors.localnet.network import LocalNet
from golem_actors.yagna import YagnaClient
from tests.stock.conftest import text_file
from tests.stock.harness import REPO, STOCK, client_env, printed_env, run_stock, settled

pytestmark = [pytest.mark.yagna, pytest.mark.usefixtures("healthy_providers")]

YAPAPI_VERSION = "0.13.1"
PYTHON = REPO / ".venv-yapapi" / "bin" / "python"


@pytest.fixture(scope="module")
def yapapi_python() -> Path:
    assert PYTHON.is_file(), "yapapi's venv is missing: run `bash .ci/bootstrap test`"
    version = subprocess.run(
        [str(PYTHON), "-c", "import yapapi; print(yapapi.__version__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert version == YAPAPI_VERSION
    return PYTHON


@pytest.fixture
def gftp_on_path(tmp_path: Path) -> Path:
    """A directory holding only ``gftp`` (ours), to put first on the client's PATH."""
    ours = Path(sys.executable).parent / "gftp"
    assert ours.is_file(), "the gftp console script is missing: reinstall the package"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gftp").symlink_to(ours)
    return bin_dir


def test_yapapi_runs_a_tagged_image_moves_files_and_pays(
    yapapi_python: Path,
    gftp_on_path: Path,
    *,
    localnet: LocalNet,
    stock_image: str,
    yagna: YagnaClient,
    tmp_path: Path,
):
    source = text_file(tmp_path / "in.txt", 300_000)
    result = tmp_path / "out.txt"
    env = client_env(printed_env(localnet))
    env["PATH"] = f"{gftp_on_path}:{env.get('PATH', '/usr/bin:/bin')}"
    run = run_stock(
        [str(yapapi_python), "transform.py", stock_image, str(source), str(result)],
        env=env,
        cwd=STOCK / "py",
        timeout=150,
    )
    report = run.report
    assert report["stdout"] == "300000\n", run.describe()
    assert result.read_bytes() == source.read_bytes().upper()
    (agreement_id,) = report["agreements"]
    invoice = settled(yagna, agreement_id)
    assert report["invoices_accepted"] == [invoice.invoice_id]
