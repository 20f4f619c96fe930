"""yapapi 0.13 (from PyPI, unchanged, in .venv-yapapi) on localnet: a tagged image, files, paid.

``py/transform.py`` is written for the real network: yapapi reads ``YAGNA_APPKEY`` and
``YAGNA_API_URL`` itself, the image is resolved by tag through ``repository_url`` (set from
``GOLEM_REGISTRY_URL``), and it moves files with the ``gftp`` program it finds on PATH: here
ours (``golem_actors.storage.gftp_rpc``: GFTP through yagna's GSB API), since the golem-node
wheel ships yagna without it. One task sends a file, upper-cases it, reads a command's stdout
and fetches the result; leaving ``Golem`` terminates the agreement and accepts the invoice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from golem_actors.localnet.network import LocalNet
from golem_actors.yagna import YagnaClient
from tests.stock.conftest import text_file
from tests.stock.harness import STOCK, client_env, printed_env, run_stock, settled

pytestmark = [pytest.mark.yagna, pytest.mark.usefixtures("healthy_providers")]


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
