"""A GVMI built by ``golem-actors image build``, found by tag through localnet's registry the way
a stock requestor finds one (raw HTTP), deployed and run on a provider of the real network."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
import requests

from golem_actors.cli import main
from golem_actors.exescript import Script
from golem_actors.localnet.network import LocalNet
from golem_actors.localnet.runtime import TASK_PACKAGE
from golem_actors.yagna import YagnaClient
from golem_actors.yagna.models import Allocation
from tests.localnet.test_exeunit import Activity, Files
from tests.localnet.test_gvmi_store import app_tree

pytestmark = [pytest.mark.yagna, pytest.mark.usefixtures("healthy_providers")]
PROVIDER = "provider-4"


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """Built with the console script, as a user would."""
    root = app_tree(tmp_path / "root")
    out = tmp_path / "app.gvmi"
    argv = ["image", "build", str(root), "-o", str(out), "--workdir", "/golem/work"]
    argv += ["--env", "GREETING=hello from the image", "--volume", "/golem/output"]
    assert main([*argv, "--volume", "/data"]) == 0
    return out


def test_built_tagged_resolved_deployed_and_run(
    client: YagnaClient,
    allocation: Allocation,
    *,
    localnet: LocalNet,
    app: Path,
    blob_server: Files,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
):
    data_dir = ["--data-dir", str(localnet.data_dir)]
    assert main(["localnet", "images", "add", str(app), "--tag", "test/app:1.0", *data_dir]) == 0
    assert "registry: " in capsys.readouterr().out
    assert main(["localnet", "env", *data_dir]) == 0
    registry = localnet.env()["GOLEM_REGISTRY_URL"]
    assert registry == localnet.images_url
    assert f"export GOLEM_REGISTRY_URL={registry}\n" in capsys.readouterr().out
    seen = tmp_path / "env.txt"  # `localnet run` hands it to the command too
    script = "import os, sys; open(sys.argv[1], 'w').write(os.environ['GOLEM_REGISTRY_URL'])"
    assert main(["localnet", "run", *data_dir, "--", sys.executable, "-c", script, str(seen)]) == 0
    assert seen.read_text() == registry
    # What yapapi's resolve_package_url and golem-js's WorkloadDemandDirector do:
    answer = requests.get(
        f"{registry}/v1/image/info", params={"tag": "test/app:1.0", "count": "true"}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["sha3"] == hashlib.sha3_224(app.read_bytes()).hexdigest()
    assert found["size"] == app.stat().st_size
    package = f"hash:sha3:{found['sha3']}:{found['http']}"
    blob_server.files["/in/data"] = b"sent by the requestor\n"
    with Activity.open(client, allocation, PROVIDER, {TASK_PACKAGE: package}) as act:
        (ran,) = act.run_script(
            Script().run("/bin/sh", "-c", 'pwd; echo "$GREETING"; cat baked.txt')
        )
        assert ran.ok, ran
        assert ran.stdout == "/golem/work\nhello from the image\nbaked into the image\n"
        moved = act.run_script(
            Script()
            .transfer(blob_server.url("/in/data"), "container:/data/in")
            .run("/bin/sh", "-c", "cat /data/in > /golem/output/out")
            .transfer("container:/golem/output/out", blob_server.url("/up/out"))
        )
        assert all(r.ok for r in moved), moved
        assert blob_server.uploads["/up/out"] == b"sent by the requestor\n"
        (refused,) = act.run_script(
            Script().transfer(blob_server.url("/in/data"), "container:/golem/input/x")
        )
        assert refused.result == "Error"  # the image declares no /golem/input: as on a VM
        assert "outside the volumes" in (refused.message or "")
    missing = requests.get(f"{registry}/v1/image/info", params={"tag": "test/app:9"}, timeout=10)
    assert missing.status_code == 404
    assert missing.json() == {"error": "image not found: tag 'test/app:9'"}


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d[:-12] + bytes([d[-12] ^ 0x20]) + d[-11:], "metadata CRC mismatch"),
        (lambda d: d[:100] + d[8292:], "truncated squashfs: its superblock says"),
    ],
    ids=["bad-crc", "truncated-squashfs"],
)
def test_a_corrupt_gvmi_fails_deploy_clearly(
    client: YagnaClient, allocation: Allocation, *, app: Path, blob_server: Files, damage, message
):
    data = damage(app.read_bytes())
    digest = hashlib.sha3_224(data).hexdigest()
    blob_server.files["/bad.gvmi"] = data
    package = {TASK_PACKAGE: f"hash:sha3:{digest}:{blob_server.url('/bad.gvmi')}"}
    with Activity.open(client, allocation, PROVIDER, package, deploy=False) as act:
        (failed,) = act.run_script(Script().deploy())
        assert failed.result == "Error"
        text = failed.message or ""
        assert text.startswith("deploy failed: "), text
        assert f"{blob_server.url('/bad.gvmi')} is a corrupt GVMI: " in text, text
        assert message in text, text
        assert act.state() == "Initialized"
