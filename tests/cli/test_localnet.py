"""`golem-actors localnet ...`: images, status and run against a network."""

from __future__ import annotations

import sys

import pytest

from golem_actors.cli import main


def test_localnet_images_list_and_add(tmp_path, capsys: pytest.CaptureFixture[str]):
    data_dir = tmp_path / "net"
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "motd").write_text("hello\n")
    assert main(["localnet", "images", "--data-dir", str(data_dir)]) == 0
    assert "no images" in capsys.readouterr().out
    assert (
        main(
            ["localnet", "images", "add", str(rootfs), "--tag", "t:1", "--data-dir", str(data_dir)]
        )
        == 0
    )
    added = capsys.readouterr().out
    assert added.startswith("added ")
    digest = added.split()[1]
    assert len(digest) == 56  # sha3-224
    assert main(["localnet", "images", "--data-dir", str(data_dir)]) == 0
    listing = capsys.readouterr().out
    assert digest in listing
    assert "t:1" in listing
    assert (
        main(["localnet", "images", "add", str(tmp_path / "nope"), "--data-dir", str(data_dir)])
        == 2
    )
    assert "no image at" in capsys.readouterr().err


def test_localnet_status_without_a_network_says_how_to_start_one(tmp_path, capsys):
    assert main(["localnet", "status", "--data-dir", str(tmp_path)]) == 2
    assert "golem-actors localnet up" in capsys.readouterr().err


@pytest.mark.yagna
def test_localnet_run_hands_a_running_localnet_to_the_command(localnet, tmp_path, capsys):
    seen = tmp_path / "env.txt"
    script = (
        "import os, sys; "
        "env = os.environ; "
        "open(sys.argv[1], 'w').write(env['YAGNA_API_URL'] + ' ' + env['YAGNA_APPKEY']); "
        "sys.exit(7)"
    )
    data_dir = str(localnet.data_dir)
    code = main(
        ["localnet", "run", "--data-dir", data_dir, "--", sys.executable, "-c", script, str(seen)]
    )
    assert code == 7  # the command's own exit code
    assert seen.read_text() == f"{localnet.api_url} {localnet.app_key}"
    assert "already running" in capsys.readouterr().out
    assert localnet.providers  # joined, not stopped: the network is still the fixture's


def test_localnet_run_without_a_command_names_the_problem(tmp_path, capsys):
    assert main(["localnet", "run", "--data-dir", str(tmp_path), "--"]) == 2
    assert "nothing to run" in capsys.readouterr().err
