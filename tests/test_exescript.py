"""ExeScript builder: exact wire shapes, validation naming the problem, result parsing."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from golem_actors.exescript import (
    BatchResult,
    Capture,
    CommandFailedError,
    DeployNet,
    Script,
)
from golem_actors.yagna.models import CommandResult
from golem_actors.yagna.testing import MockYagna

AT_END_STR = {"atEnd": {"format": "str"}}
DEFAULT_CAPTURE = {"stdout": AT_END_STR, "stderr": AT_END_STR}


def result(
    index: int,
    *,
    ok: bool = True,
    finished: bool = False,
    stdout: str | None = None,
    stderr: str | None = None,
    message: str | None = None,
) -> CommandResult:
    """A result item exactly as ``GET /activity/{id}/exec/{batch}`` returns it."""
    return CommandResult.from_json(
        {
            "index": index,
            "eventDate": "2026-11-27T23:21:33.123456Z",
            "result": "Ok" if ok else "Error",
            "stdout": stdout,
            "stderr": stderr,
            "message": message,
            "isBatchFinished": finished,
        }
    )


# -- wire shapes -------------------------------------------------------------------------------


def test_deploy_default_is_yagnas_normalized_form() -> None:
    assert Script().deploy().to_json() == [
        {"deploy": {"env": {}, "hostname": None, "hosts": {}, "net": [], "progress": None}}
    ]


def test_deploy_with_network_hosts_hostname_env() -> None:
    net = DeployNet(
        id="fe14d76b",
        ip="192.168.8.0/24",
        node_ip="192.168.8.7",
        mask="255.255.255.0",
        nodes={"192.168.8.1": "0xf9ce"},
    )
    script = Script().deploy(
        net=[net], hosts={"master": "192.168.8.1"}, hostname="worker-1", env={"A": "1"}
    )
    assert script.to_json() == [
        {
            "deploy": {
                "env": {"A": "1"},
                "hostname": "worker-1",
                "hosts": {"master": "192.168.8.1"},
                "net": [
                    {
                        "id": "fe14d76b",
                        "ip": "192.168.8.0/24",
                        "mask": "255.255.255.0",
                        "gateway": None,
                        "nodeIp": "192.168.8.7",
                        "nodes": {"192.168.8.1": "0xf9ce"},
                    }
                ],
                "progress": None,
            }
        }
    ]


def test_start_run_terminate_shapes() -> None:
    script = Script().start().start("--flag").run("/bin/echo", "hi", "there").terminate()
    assert script.to_json() == [
        {"start": {"args": []}},
        {"start": {"args": ["--flag"]}},
        {"run": {"entry_point": "/bin/echo", "args": ["hi", "there"], "capture": DEFAULT_CAPTURE}},
        {"terminate": {}},
    ]


def test_run_uses_snake_case_entry_point_and_never_camel_case() -> None:
    text = json.dumps(Script().run("/bin/true").to_json())
    assert '"entry_point": "/bin/true"' in text
    assert "entryPoint" not in text


def test_run_without_capture_omits_the_key() -> None:
    script = Script().run("/bin/true", stdout=None, stderr=None)
    assert script.to_json() == [{"run": {"entry_point": "/bin/true", "args": []}}]


def test_run_with_one_stream_captured() -> None:
    script = Script().run("/bin/true", stdout=None, stderr=Capture("bin", stream=True))
    assert script.to_json()[0]["run"]["capture"] == {"stderr": {"stream": {"format": "bin"}}}


@pytest.mark.parametrize(
    ("capture", "expected"),
    [
        (Capture(), {"atEnd": {"format": "str"}}),
        (Capture("string"), {"atEnd": {"format": "str"}}),
        (Capture("binary"), {"atEnd": {"format": "bin"}}),
        (Capture(head=100), {"atEnd": {"head": 100, "format": "str"}}),
        (Capture("bin", tail=4096), {"atEnd": {"tail": 4096, "format": "bin"}}),
        (Capture(head_tail=64), {"atEnd": {"headTail": 64, "format": "str"}}),
        (Capture(stream=True), {"stream": {"format": "str"}}),
        (Capture(stream=True, limit=10), {"stream": {"limit": 10, "format": "str"}}),
    ],
)
def test_capture_shapes(capture: Capture, expected: dict[str, Any]) -> None:
    assert capture.to_json() == expected
    script = Script().run("/bin/true", stdout=capture, stderr=None)
    assert script.to_json()[0]["run"]["capture"] == {"stdout": expected}


def test_transfer_shapes() -> None:
    script = (
        Script()
        .transfer("http://127.0.0.1:8000/in.txt", "container:/golem/input/in.txt")
        .transfer(
            "container:/golem/output/",
            "gftp://0xf9ce/abcdef",
            fmt="zip",
            depth=0,
            fileset=["*.o", {"desc": "all", "includes": ["out/*"], "excludes": ["*.tmp"]}],
        )
        .transfer("container:/golem/output/r.txt", "https://example.org/up", fileset="*.txt")
    )
    hashed = Script().transfer("hash:sha3:00ff:gftp://0xf9ce/abc", "container:/golem/input/")
    assert hashed.to_json()[0]["transfer"]["from"] == "hash:sha3:00ff:gftp://0xf9ce/abc"
    assert script.to_json() == [
        {
            "transfer": {
                "from": "http://127.0.0.1:8000/in.txt",
                "to": "container:/golem/input/in.txt",
                "format": None,
                "depth": None,
                "fileset": None,
                "progress": None,
            }
        },
        {
            "transfer": {
                "from": "container:/golem/output/",
                "to": "gftp://0xf9ce/abcdef",
                "format": "zip",
                "depth": 0,
                "fileset": [
                    "*.o",
                    {"desc": "all", "includes": ["out/*"], "excludes": ["*.tmp"]},
                ],
                "progress": None,
            }
        },
        {
            "transfer": {
                "from": "container:/golem/output/r.txt",
                "to": "https://example.org/up",
                "format": None,
                "depth": None,
                "fileset": "*.txt",
                "progress": None,
            }
        },
    ]


def test_exec_sends_the_script_as_json_text() -> None:
    mock = MockYagna()
    mock.add("POST", "/activity-api/v1/activity/act-1/exec", json="batch-1")
    script = Script().deploy().start().run("/bin/echo", "hi")
    with mock.client() as client:
        assert client.activity.exec("act-1", script.to_json()) == "batch-1"
    (call,) = mock.calls
    assert json.loads(call.body["text"]) == script.to_json()


def test_to_json_is_a_fresh_copy_and_commands_do_not_change() -> None:
    env = {"A": "1"}
    script = Script().deploy(env=env).run("/bin/echo", "hi")
    env["B"] = "2"  # the caller's dict, changed after the call
    out = script.to_json()
    out[0]["deploy"]["env"]["C"] = "3"
    out[1]["run"]["args"].append("mutated")
    assert script.to_json()[0]["deploy"]["env"] == {"A": "1"}
    assert script.to_json()[1]["run"]["args"] == ["hi"]


def test_indexes_and_labels() -> None:
    script = Script().deploy().start()
    assert script.last == 1
    script.run("/bin/echo", "a", label="echo")
    assert script.last == 2
    assert len(script) == 3
    assert [c.index for c in script.commands] == [0, 1, 2]
    assert script.commands[2].label == "echo"
    assert script.commands[2].describe() == "run /bin/echo a"


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Script().run("echo", "hi"), "entry_point must be an absolute path"),
        (lambda: Script().run("/bin/echo", cast("str", 1)), r"run argv\[1\] must be a string"),
        (lambda: Script().run("/bin/echo", "a\x00b"), "without NUL"),
        (lambda: Script().start(cast("str", None)), r"start args\[0\]"),
        (lambda: Capture("text"), "capture format must be str or bin, got 'text'"),
        (lambda: Capture(head=1, tail=2), "one of head/tail/headTail"),
        (lambda: Capture(stream=True, head=5), "one of head/tail/headTail"),
        (lambda: Capture(limit=5), "stream limit"),
        (lambda: Capture(head=0), "capture head must be a whole number >= 1"),
        (lambda: Capture(tail=cast("int", 1.5)), "capture tail must be a whole number"),
        (
            lambda: Script().transfer("file:///etc/passwd", "container:/golem/input/x"),
            "transfer from: 'file:///etc/passwd' needs a scheme of container, http",
        ),
        (
            lambda: Script().transfer("http://h/x", "container:golem/input/x"),
            "transfer to: container path must be absolute",
        ),
        (
            lambda: Script().transfer("http://h/x", "container:/golem/../etc/passwd"),
            "without '..'",
        ),
        (
            lambda: Script().transfer("http:/x", "container:/golem/input/x"),
            "http URL without a host",
        ),
        (lambda: Script().transfer("nope", "container:/golem/input/x"), "needs a scheme"),
        (lambda: Script().transfer("hash:sha3:xyz:http://a/b", "container:/golem/x"), "digest"),
        (lambda: Script().transfer("hash:sha3:00:file:///x", "container:/golem/x"), "scheme"),
        (lambda: Script().transfer("http://a/x", "https://b/y"), "needs a container: side"),
        (
            lambda: Script().transfer("http://a/x", "container:/in", depth=-1),
            "transfer depth must be a whole number >= 0",
        ),
        (lambda: Script().transfer("http://a/x", "container:/in", fmt=""), "transfer format"),
        (
            lambda: Script().transfer("http://a/x", "container:/in", fileset=[{"glob": "*"}]),
            r"transfer fileset\[0\]",
        ),
        (lambda: Script().deploy(env={"A=B": "1"}), "deploy env: entry 'A=B'"),
        (lambda: Script().deploy(env={"A": cast("str", 1)}), "deploy env: entry 'A'"),
        (lambda: Script().deploy(hosts={"m": cast("str", None)}), "deploy hosts"),
        (lambda: Script().deploy(hostname=""), "deploy hostname"),
        (lambda: Script().terminate(label="x").terminate(label="x"), "label 'x' is already used"),
        (lambda: Script().to_json(), "empty ExeScript"),
        (lambda: Script().last, "no commands yet"),
    ],
)
def test_validation_names_the_problem(build: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


def test_deploy_net_must_be_deploy_net() -> None:
    with pytest.raises(TypeError, match="DeployNet"):
        Script().deploy(net=[cast("DeployNet", {"id": "x"})])


def test_a_rejected_command_leaves_the_script_unchanged() -> None:
    script = Script().deploy()
    with pytest.raises(ValueError, match="absolute"):
        script.run("relative/path")
    assert len(script) == 1


@given(st.lists(st.text().filter(lambda s: "\x00" not in s), max_size=8))
def test_any_string_args_survive_json_unchanged(args: list[str]) -> None:
    script = Script().run("/bin/echo", *args)
    decoded = json.loads(json.dumps(script.to_json()))
    assert decoded[0]["run"]["args"] == args


# -- results -----------------------------------------------------------------------------------


def echo_script() -> Script:
    return Script().deploy().start().run("/bin/echo", "hi", label="echo")


def test_all_ok() -> None:
    script = echo_script()
    batch = BatchResult.parse(
        script, [result(0), result(1), result(2, finished=True, stdout="hi\n", stderr="")]
    )
    assert batch.is_finished
    assert batch.ok
    assert batch.first_error is None
    assert batch.pending == ()
    assert batch["echo"].stdout == "hi\n"
    assert batch[2] is batch["echo"]
    assert batch["echo"].event_date == dt.datetime(2026, 11, 27, 23, 21, 33, 123456, tzinfo=dt.UTC)
    assert batch.raise_for_error() is batch


def test_first_error_stops_the_batch() -> None:
    script = echo_script().run("/bin/never", label="later")
    batch = BatchResult.parse(
        script,
        [
            result(0),
            result(1, ok=False, finished=True, stderr="boom\n", message="start failed: exit 1"),
        ],
    )
    assert batch.is_finished
    assert not batch.ok
    error = batch.first_error
    assert error is not None
    assert (error.index, error.stderr, error.message) == (1, "boom\n", "start failed: exit 1")
    assert [c.index for c in batch.pending] == [2, 3]
    with pytest.raises(CommandFailedError) as info:
        batch.raise_for_error()
    exc = info.value
    assert exc.index == 1
    assert exc.command.name == "start"
    assert exc.stderr == "boom\n"
    assert exc.stdout is None
    assert exc.message == "start failed: exit 1"
    assert "command 1 (start) failed: start failed: exit 1" in str(exc)
    assert "boom" in str(exc)


def test_error_on_a_run_names_the_command_line() -> None:
    script = Script().run("/bin/false", "x", label="f")
    batch = BatchResult.parse(script, [result(0, ok=False, finished=True, message="exit 1")])
    with pytest.raises(CommandFailedError, match=r"command 0 \(run /bin/false x\) failed: exit 1"):
        batch.raise_for_error()


def test_partial_results() -> None:
    batch = BatchResult.parse(echo_script(), [result(0), result(1)])
    assert not batch.is_finished
    assert not batch.ok
    assert batch.first_error is None
    assert [c.index for c in batch.pending] == [2]
    with pytest.raises(KeyError, match="echo"):
        batch["echo"]


def test_unfinished_batch_without_results() -> None:
    batch = BatchResult.parse(echo_script(), [])
    assert not batch.is_finished
    assert batch.outcomes == ()
    assert len(batch.pending) == 3
    assert batch.raise_for_error() is batch


def test_repeated_polls_are_merged_by_index() -> None:
    first_poll = [result(0)]
    second_poll = [result(0), result(1), result(2, finished=True, stdout="hi\n")]
    batch = BatchResult.parse(echo_script(), first_poll + second_poll)
    assert [o.index for o in batch.outcomes] == [0, 1, 2]
    assert batch.ok


def test_results_of_another_batch_are_refused() -> None:
    with pytest.raises(ValueError, match="result for command 3 of a 3-command script"):
        BatchResult.parse(echo_script(), [result(3, finished=True)])


def test_binary_capture_output_becomes_bytes() -> None:
    # With ``bin`` capture yagna sends stdout as a JSON array of byte values.
    item = CommandResult(
        index=0,
        event_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        result="Ok",
        is_batch_finished=True,
        stdout=cast("str", [104, 105]),
    )
    batch = BatchResult.parse(Script().run("/bin/cat", stdout=Capture("bin")), [item])
    assert batch[0].stdout == b"hi"


@given(st.integers(min_value=1, max_value=8), st.data())
def test_any_prefix_of_results_is_parsed_consistently(n: int, data: st.DataObject) -> None:
    script = Script()
    for i in range(n):
        script.run("/bin/echo", str(i))
    got = data.draw(st.integers(min_value=0, max_value=n))
    error_at = data.draw(st.one_of(st.none(), st.integers(min_value=0, max_value=max(got - 1, 0))))
    items = []
    for i in range(got):
        failed = error_at == i
        items.append(result(i, ok=not failed, finished=failed or i == n - 1, stdout=str(i)))
        if failed:
            break
    batch = BatchResult.parse(script, items)
    assert [o.index for o in batch.outcomes] == list(range(len(items)))
    assert len(batch.outcomes) + len(batch.pending) == n
    assert batch.ok == (len(items) == n and all(o.ok for o in batch.outcomes))
    assert (batch.first_error is not None) == any(not r.ok for r in items)
    assert batch.is_finished == any(r.is_batch_finished for r in items)
