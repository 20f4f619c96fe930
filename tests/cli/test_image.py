"""``golem-actors image build|inspect``: arguments, output and errors of the console script."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from golem_actors.cli import main
from golem_actors.images.build import sha3_file
from golem_actors.images.gvmi import ContainerConfig, read_gvmi
from tests.images.test_build import rootfs


def test_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    source = rootfs(tmp_path / "src")
    out = tmp_path / "cli.gvmi"
    argv = ["image", "build", str(source), "-o", str(out), "--env", "K=v=w", "--workdir", "/w"]
    assert main([*argv, "--volume", "/golem/x", "--entrypoint", "/bin/tool", "--cmd", "a"]) == 0
    said = capsys.readouterr().out
    assert f"sha3 {sha3_file(out)}" in said
    assert "localnet images add" in said
    with out.open("rb") as f:
        config = read_gvmi(f).config
    expected = ContainerConfig(env=("K=v=w",), entrypoint=("/bin/tool",), cmd=("a",))
    assert config == replace(expected, working_dir="/w", volumes=("/golem/x",))
    assert main(["image", "inspect", str(out)]) == 0
    assert '"WorkingDir": "/w"' in capsys.readouterr().out
    (tmp_path / "junk.gvmi").write_bytes(b"hsqs" + bytes(200))
    assert main(["image", "inspect", str(tmp_path / "junk.gvmi")]) == 2
    assert "golem-actors: error: no GVMI metadata" in capsys.readouterr().err
    for bad in (["--env", "NOVALUE"], ["--workdir", "rel"], ["--volume", "/"]):
        with pytest.raises(SystemExit) as exit_:
            main([*argv[:5], *bad])
        assert exit_.value.code == 2
        assert bad[0] in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["image", "build", str(source)])  # -o is required
    assert "-o/--output" in capsys.readouterr().err
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert main([*argv[:5]]) == 2
    assert "sudo apt-get install squashfs-tools" in capsys.readouterr().err
