"""Bad input is refused with an error that names the problem, before any money is committed."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest

from golem_actors import ServiceActor, WorkContext
from golem_actors.cli import main
from golem_actors.cli.run import load_service, run_directory
from golem_actors.golem import Golem, GolemError
from golem_actors.journal import MAGIC, Journal, frame
from golem_actors.localnet.apifaults import FaultPlan
from golem_actors.localnet.network import LocalNet
from golem_actors.policy.demand import DemandError, DemandSpec
from golem_actors.policy.payload import PayloadError, VmPayload
from golem_actors.policy.scoring import LeastExpensiveLinearPayu
from golem_actors.service import ServiceDefinitionError
from golem_actors.yagna import ApiConfig

EXAMPLES = Path(__file__).parent.parent / "examples"
HEARTBEAT = f"{EXAMPLES / 'heartbeat.py'}:Heartbeat"

# No yagna listens here: every check below must fail before one is needed.
NOWHERE = ApiConfig(app_key="k", api_url="http://127.0.0.1:9")


@pytest.mark.parametrize("budget", ["abc", "-1", "0", "NaN", "Infinity", ""])
def test_bad_budgets(budget: str) -> None:
    with pytest.raises(GolemError, match="budget must be"):
        Golem(config=NOWHERE, budget=budget)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"not a journal at all", "not a golem-actors journal"),
        (MAGIC + b"\xff\xff\xff\xff" + b"\x00" * 64, "damaged: an impossible length"),
    ],
)
def test_an_unreadable_journal_stops_the_start(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    (tmp_path / "journal.gaj").write_bytes(content)
    golem = Golem(config=NOWHERE, journal=tmp_path)
    with pytest.raises(GolemError, match=problem) as err:
        golem.start()  # before yagna is even asked: no allocation was made
    assert str(tmp_path / "journal.gaj") in str(err.value)
    assert golem.allocation is None


def test_a_run_dir_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    args = argparse.Namespace(run_dir=blocker, resume=False, data_dir=None)
    with pytest.raises(GolemError, match="is not a directory"):
        run_directory(args)


def test_resume_with_nothing_to_resume(tmp_path: Path) -> None:
    args = argparse.Namespace(run_dir=None, resume=True, data_dir=tmp_path)
    with pytest.raises(GolemError, match="no run to resume"):
        run_directory(args)


def test_bad_fault_plans() -> None:
    with pytest.raises(ValueError, match="probability"):
        FaultPlan(rate=2)


# -- session settings: refused when the session is made, before a budget is reserved ---------


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"subnet": "pub lic"}, "subnet must be a plain word"),
        ({"subnet": "a)(b=c"}, "subnet must be a plain word"),
        ({"payment_platform": "erc20 holesky"}, "payment_platform must be a plain word"),
        ({"expiration": dt.timedelta(0)}, "expiration must be a positive timedelta"),
        ({"expiration": 3600}, "expiration must be a positive timedelta"),
        ({"debit_note_interval_s": 0}, "debit_note_interval_s must be a whole number"),
        (
            {"expiration": dt.timedelta(minutes=1)},  # shorter than the debit-note interval
            r"debit_note_interval_s \(120\) must not exceed the expiration",
        ),
        ({"scorer": "cheapest"}, "scorer must have a score"),
        ({"settle_timeout_s": -1}, "settle_timeout_s must be a finite number >= 0"),
        ({"settle_timeout_s": float("nan")}, "settle_timeout_s must be a finite number >= 0"),
    ],
)
def test_bad_session_settings(settings: dict[str, Any], problem: str) -> None:
    with pytest.raises(GolemError, match=problem):
        Golem(config=NOWHERE, **settings)


def test_price_caps_are_checked_where_the_scorer_is_made() -> None:
    # Each bad cap and setting, field by field: tests/policy/test_scoring.py.
    with pytest.raises(ValueError, match="max_start_price must be a price >= 0"):
        LeastExpensiveLinearPayu(max_start_price=Decimal(-1))
    with pytest.raises(ValueError, match="max_price_for"):
        LeastExpensiveLinearPayu(max_price_for={"golem.usage.cpu_sec": Decimal(-1)})


def test_bad_payloads_and_constraints_name_the_field() -> None:
    # Each field: tests/policy/test_payload.py and tests/policy/test_demand.py.
    with pytest.raises(PayloadError, match="min_mem_gib must be a positive number"):
        VmPayload(min_mem_gib=-1)
    with pytest.raises(PayloadError, match="capability"):
        VmPayload(capabilities=("vpn)(x=1",))
    with pytest.raises(DemandError, match=r"extra_constraints\[0\] must be one parenthesized"):
        DemandSpec(VmPayload(), extra_constraints=("golem.inf.mem.gib>=1",))


def test_a_journal_in_use_stops_the_start(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "journal.gaj"):  # another session of the same run
        golem = Golem(config=NOWHERE, journal=tmp_path)
        with pytest.raises(GolemError, match="in use by another process"):
            golem.start()
    assert golem.allocation is None


def test_a_journal_from_a_newer_version_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "journal.gaj").write_bytes(
        MAGIC + frame({"k": "run", "v": 99, "run": "r", "at": "x"})
    )
    golem = Golem(config=NOWHERE, journal=tmp_path)
    with pytest.raises(GolemError, match="journal format 99 is newer"):
        golem.start()
    assert golem.allocation is None


# -- the CLI: bad arguments end the run before yagna is asked ---------------------------------


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--duration", "-5"], "--duration: seconds must be a finite number > 0"),
        (["--duration", "nan"], "--duration: seconds must be a finite number > 0"),
        (["--duration", "soon"], "--duration: expected a number of seconds"),
        (["-n", "0"], "count must be a whole number >= 1"),
        (["--metrics-port", "70000"], "port must be a whole number within [0, 65535]"),
    ],
)
def test_bad_cli_arguments_are_usage_errors(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", HEARTBEAT, *argv])
    assert exit_.value.code == 2
    assert problem in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--budget", "lots"], "--budget must be a number of GLM, got 'lots'"),
        (["--budget", "-1"], "budget must be a positive number of GLM"),
        (["--subnet", "pub lic"], "subnet must be a plain word"),
        (["--payment-platform", "a b"], "payment_platform must be a plain word"),
        (["--param", "novalue"], "--param takes KEY=VALUE"),
        (["--max-restarts", "-1"], "max_restarts must be a whole number >= 0"),
    ],
)
def test_bad_cli_values_are_named_before_yagna_is_asked(
    argv: list[str],
    problem: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("YAGNA_APPKEY", "k")
    code = main(
        ["run", f"{EXAMPLES / 'heartbeat.py'}:Heartbeat", "--yagna", NOWHERE.api_url, *argv]
    )
    err = capsys.readouterr().err
    assert code != 0
    assert problem in err
    assert "not usable" not in err  # refused before any call to yagna


# -- a service class that does not implement the API ------------------------------------------


class _NoCtx(ServiceActor):
    def run(self) -> None:  # type: ignore[override]
        pass


class _Async(ServiceActor):
    async def run(self, ctx: WorkContext) -> None:  # type: ignore[override]
        pass


class _BadPayload(ServiceActor):
    payload: ClassVar[Any] = {"image": "x"}


@pytest.mark.parametrize(
    ("service", "problem"),
    [
        (_NoCtx, r"_NoCtx.run must take \(self, ctx\)"),
        (_Async, "_Async.run is async"),
        (_BadPayload, "_BadPayload.payload must be a VmPayload, got dict"),
    ],
)
def test_service_classes_that_break_the_api(service: type[ServiceActor], problem: str) -> None:
    with pytest.raises(ServiceDefinitionError, match=problem):
        service.validate()


@pytest.mark.yagna
def test_run_service_refuses_bad_input_before_any_agreement(
    localnet: LocalNet, tmp_path: Path
) -> None:
    heartbeat = load_service(HEARTBEAT)
    config = ApiConfig(app_key=localnet.app_key, api_url=localnet.api_url)
    with Golem(config=config, budget="1", journal=tmp_path) as golem:
        cases: list[tuple[Callable[[], object], str]] = [
            (lambda: golem.run_service(object), "is not a ServiceActor subclass"),  # type: ignore[arg-type]
            (lambda: golem.run_service(_Async), "is async"),
            (lambda: golem.run_service(heartbeat, 0), "instances must be a whole number >= 1"),
            (lambda: golem.run_service(heartbeat, 2, params=[{}]), "1 params given for 2"),
            (lambda: golem.run_service(heartbeat, payload="vm"), "must be a VmPayload"),  # type: ignore[arg-type]
            (
                lambda: golem.run_service(heartbeat, health_interval_s=0),
                "health_interval_s must be a finite number > 0",
            ),
        ]
        for bad, problem in cases:
            with pytest.raises((GolemError, ServiceDefinitionError, DemandError), match=problem):
                bad()
        assert golem.clusters == []
        assert golem.journal is not None
        run_id = golem.journal.state.run_id
        assert golem.rt is not None
        assert golem.rt.client.market.agreements(app_session_id=run_id) == []
