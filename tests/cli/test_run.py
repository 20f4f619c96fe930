"""`golem-actors run` end to end on localnet (through --yagna), and its argument errors."""

from __future__ import annotations

import logging
import re
import textwrap
from pathlib import Path

import pytest

from golem_actors.cli import main
from golem_actors.cli.run import load_service
from golem_actors.golem import GolemError
from golem_actors.localnet.network import LocalNet
from tests.images.test_images_localnet import tiny_image, unique_tag

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_load_service_names_what_is_wrong(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("from golem_actors import ServiceActor\nclass Good(ServiceActor):\n    pass\n")
    assert load_service(f"{app}:Good").__name__ == "Good"
    with pytest.raises(GolemError, match=r"has no 'Bad' \(services there: Good\)"):
        load_service(f"{app}:Bad")
    with pytest.raises(GolemError, match=r"expected path/to/app\.py:ServiceClass"):
        load_service(str(app))
    with pytest.raises(GolemError, match="is not a file"):
        load_service(f"{tmp_path}/missing.py:Good")
    broken = tmp_path / "broken.py"
    broken.write_text("raise ImportError('no such module')\n")
    with pytest.raises(GolemError, match=r"importing .* failed: ImportError"):
        load_service(f"{broken}:Good")


def test_a_class_that_breaks_the_api_is_refused_before_money_is_committed(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(
        textwrap.dedent(
            """
            from golem_actors import ServiceActor
            class Async(ServiceActor):
                async def run(self, ctx):
                    pass
            class NotAService:
                pass
            """
        )
    )
    with pytest.raises(GolemError, match=r"not a subclass of golem_actors\.ServiceActor"):
        load_service(f"{app}:NotAService")
    with pytest.raises(TypeError, match="is async"):
        load_service(f"{app}:Async")


def test_bad_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "x.py:S", "-n", "0"])
    assert exit_.value.code == 2
    assert "count must be a whole number >= 1" in capsys.readouterr().err


@pytest.mark.yagna
@pytest.mark.usefixtures("healthy_providers")
def test_run_heartbeat_for_a_few_seconds(
    localnet: LocalNet,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("YAGNA_APPKEY", localnet.app_key)
    api_log = logging.getLogger("golem_actors.yagna.api")
    try:
        code = main(
            [
                "run",
                f"{EXAMPLES / 'heartbeat.py'}:Heartbeat",
                "-n",
                "2",
                "--yagna",
                localnet.api_url,
                "--duration",
                "8",
                "--budget",
                "1",
                "--metrics-port",
                "0",
                "--debug-api",
            ]
        )
    finally:
        api_log.setLevel(logging.NOTSET)  # --debug-api set it; later tests expect the default
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.count("running") >= 2  # the live table showed both instances running
    assert "# /metrics and /status on http://127.0.0.1:" in out
    # The end-of-run summary: a row per provider used, then the totals.
    summary = out[out.index("provider   ") :]
    rows = summary.splitlines()[1:]
    assert sum(1 for row in rows if row.startswith("provider-")) == 2, summary
    assert "total cost" in summary
    assert "budget left" in summary
    assert "invoices accepted 2, outstanding 0" in summary
    assert "# paid" in out
    assert localnet.app_key not in out
    # --debug-api after `run`: every yagna call logged with method, path, status and duration.
    calls = [r.getMessage() for r in caplog.records if r.name == "golem_actors.yagna.api"]
    assert any(re.match(r"market POST /demands -> 201 in [0-9.]+ ms", c) for c in calls), calls[:5]
    assert localnet.app_key not in caplog.text


@pytest.mark.yagna
@pytest.mark.usefixtures("healthy_providers")
def test_escalation_ends_the_run_with_a_non_zero_exit(
    localnet: LocalNet,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    app = tmp_path / "broken.py"
    app.write_text(
        textwrap.dedent(
            """
            from golem_actors import ServiceActor
            class Broken(ServiceActor):
                def run(self, ctx):
                    raise RuntimeError("always broken")
            """
        )
    )
    monkeypatch.setenv("YAGNA_APPKEY", localnet.app_key)
    code = main(
        ["run", f"{app}:Broken", "--yagna", localnet.api_url, "--no-table", "--max-restarts", "2"]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "escalated" in captured.err
    assert "3 restarts within 60 s exceed the limit of 2" in captured.err


@pytest.mark.yagna
@pytest.mark.usefixtures("healthy_providers")
def test_run_on_localnet_finds_an_image_by_tag_in_its_registry(
    localnet: LocalNet,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """Plain ``golem-actors run app.py:Svc`` (no --yagna, no GOLEM_REGISTRY_URL) joins the
    localnet running in --data-dir and looks the service's tag up in localnet's registry."""
    tag = unique_tag()
    _, marker = tiny_image(localnet, tmp_path, tag)
    app = tmp_path / "tagged.py"
    app.write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path
            from golem_actors import ServiceActor, VmPayload
            from golem_actors.policy.supervision import RestartType
            class Tagged(ServiceActor):
                payload = VmPayload(image_tag={tag!r})
                restart_type = RestartType.TEMPORARY  # the run ends when run() returns
                def run(self, ctx):
                    seen = ctx.run("/bin/sh", "-c", "cat /etc/issue /etc/id").stdout
                    Path(self.params["out"]).write_text(seen)
            """
        )
    )
    out = tmp_path / "seen.txt"
    monkeypatch.delenv("GOLEM_REGISTRY_URL", raising=False)
    argv = ["run", f"{app}:Tagged", "--data-dir", str(localnet.data_dir), "--no-table"]
    code = main([*argv, "--param", f"out={out}", "--budget", "1", "--duration", "90"])
    printed = capsys.readouterr()
    assert code == 0, printed
    assert f"# using the local network already running in {localnet.data_dir}" in printed.out
    assert out.read_text() == f"tiny image\n{marker}"
