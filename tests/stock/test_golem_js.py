"""golem-js 3.6 (from npm, unchanged) against localnet: an image by tag, files by GFTP, paid.

``js/transform.cjs`` is written for the real network: golem-js reads ``YAGNA_API_URL``,
``YAGNA_APPKEY`` and ``GOLEM_REGISTRY_URL`` itself, and uses its own defaults for everything else
(subnet ``public``, payment ``erc20-holesky-tglm``, its ``ws`` data transfer: GFTP served on the
requestor's node through yagna's GSB API). It uploads a file, upper-cases it in the container,
downloads it to disk and into memory (where golem-js checks the SHA3-256), and finalizes the
rental. Here: its output, then what yagna says about the agreement, activity, debit notes and
invoice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from golem_actors.localnet.network import LocalNet
from golem_actors.yagna import YagnaClient
from tests.stock.conftest import JS, text_file
from tests.stock.harness import client_env, printed_env, run_stock, settled

pytestmark = [pytest.mark.yagna, pytest.mark.usefixtures("healthy_providers")]


def test_golem_js_moves_files_by_gftp_runs_a_tagged_image_and_pays(
    golem_js_node: str, localnet: LocalNet, stock_image: str, yagna: YagnaClient, tmp_path: Path
):
    source = text_file(tmp_path / "in.txt", 300_000)  # 5 GetChunks of 64,000 bytes
    result = tmp_path / "out.txt"
    env = client_env(printed_env(localnet))
    run = run_stock(
        [golem_js_node, "transform.cjs", stock_image, str(source), str(result)],
        env=env,
        cwd=JS,
        timeout=150,
    )
    report = run.report
    assert result.read_bytes() == source.read_bytes().upper(), run.describe()
    assert report["stdout"] == "300000\n"
    assert report["bytes"] == 300_000
    names = {p.node_id: name for name, p in localnet.providers.items()}
    assert names.get(report["providerId"]) == report["providerName"], report
    invoice = settled(yagna, report["agreementId"])
    assert invoice.agreement_id == report["agreementId"]
    assert yagna.activity.get_state(report["activityId"]).current == "Terminated"
    # It asked for a debit note a second and ran for 2 s: golem-js accepted what localnet sent.
    notes = [d for d in yagna.payment.debit_notes() if d.agreement_id == report["agreementId"]]
    assert any(d.status == "ACCEPTED" for d in notes), notes
