"""Images by tag and by hash, end to end: a ``Golem`` session on localnet resolves
``VmPayload(image_tag=...)`` / ``VmPayload(image_hash=...)`` through localnet's registry, the
provider downloads and deploys that image, and a command sees the image's own files (not the
host's). An unknown tag and a registry that is down fail clearly, before any demand."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from golem_actors import Golem, ServiceActor, Task, WorkContext
from golem_actors.events import AgreementCreated, DemandPublished, Event
from golem_actors.images.info import ImageRegistryError
from golem_actors.localnet.images import Image
from golem_actors.localnet.network import LocalNet
from golem_actors.policy.payload import VmPayload
from golem_actors.yagna import ApiConfig
from tests.localnet.test_images import tiny_rootfs
from tests.waiting import wait_for

pytestmark = [pytest.mark.yagna, pytest.mark.usefixtures("healthy_providers")]

#: What the image holds, and nothing else: the host's /etc/issue and python3 are not there.
LOOK = "cat /etc/issue; cd / && echo *; test -e /usr/bin/python3 && echo host || echo no-python"
SEEN = "tiny image\nbin dev etc golem lib lib64 proc tmp\nno-python\n"


def tiny_image(localnet: LocalNet, tmp_path: Path, tag: str) -> tuple[Image, str]:
    """The tiny rootfs (dash, cat) in localnet's image store under ``tag``, and what its
    ``/etc/id`` says: unique to the call, so is the image's hash."""
    marker = uuid.uuid4().hex
    root = tiny_rootfs(tmp_path / f"root-{marker}")
    (root / "etc" / "id").write_text(marker)
    return localnet.images.add(root, tag=tag), marker


def unique_tag() -> str:
    return f"test/tiny-{uuid.uuid4().hex[:8]}:1.0"


class Looks(ServiceActor):
    """Reports what it sees in its image, then idles."""

    def run(self, ctx: WorkContext) -> None:
        seen = ctx.run("/bin/sh", "-c", LOOK).stdout
        Path(self.params["out"]).write_text(str(seen))
        ctx.wait_until_stopped()


@pytest.fixture
def session(localnet: LocalNet) -> Iterator[tuple[Golem, list[Event]]]:
    """A session resolving images through localnet's registry, and the events it emitted."""
    assert localnet.images_url is not None
    config = ApiConfig(app_key=localnet.app_key, api_url=localnet.api_url)
    events: list[Event] = []
    golem = Golem(config=config, budget="2", settle_timeout_s=20, registry_url=localnet.images_url)
    with golem:
        assert golem.rt is not None
        golem.rt.events.subscribe(events.append)
        yield golem, events
    assert pykka.ActorRegistry.get_all() == []


def test_a_service_runs_the_image_its_tag_names(
    localnet: LocalNet, session: tuple[Golem, list[Event]], tmp_path: Path
) -> None:
    golem, _ = session
    tag = unique_tag()
    tiny_image(localnet, tmp_path, tag)
    out = tmp_path / "seen.txt"
    payload = VmPayload(image_tag=tag)
    cluster = golem.run_service(Looks, 1, params=[{"out": str(out)}], payload=payload)
    assert cluster.wait_running(timeout=90), cluster.snapshots()
    wait_for("the service's look at its image", out.exists, timeout=60)
    assert out.read_text() == SEEN


def test_tasks_run_the_image_its_hash_names(
    localnet: LocalNet, session: tuple[Golem, list[Event]], tmp_path: Path
) -> None:
    golem, _ = session
    image, marker = tiny_image(localnet, tmp_path, unique_tag())
    tasks = [Task(data=i, commands=[["/bin/sh", "-c", f"{LOOK}; cat /etc/id"]]) for i in range(2)]
    run = golem.execute_tasks(tasks, payload=VmPayload(image_hash=image.hash), max_workers=2)
    for _ in tasks:
        result = run.next_result(timeout=120)
        assert result is not None
        assert result.ok, result.error
        assert result.result == SEEN + marker


def test_an_unknown_tag_fails_before_any_demand(session: tuple[Golem, list[Event]]) -> None:
    golem, events = session
    with pytest.raises(ImageRegistryError, match=r"test/none:9.* is not in the image registry"):
        golem.run_service(Looks, 1, params=[{"out": "/nonexistent"}],
                          payload=VmPayload(image_tag="test/none:9"))  # fmt: skip
    with pytest.raises(ImageRegistryError, match="not in the image registry"):
        golem.execute_tasks([Task(commands=[["/bin/true"]])],
                            payload=VmPayload(image_hash="0" * 56))  # fmt: skip
    assert [e for e in events if isinstance(e, DemandPublished | AgreementCreated)] == []
    assert golem.clusters == []


def test_a_registry_that_is_down_is_named(localnet: LocalNet) -> None:
    config = ApiConfig(app_key=localnet.app_key, api_url=localnet.api_url)
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{closed.getsockname()[1]}"
        events: list[Any] = []
        with Golem(config=config, budget="1", settle_timeout_s=10, registry_url=down) as golem:
            assert golem.rt is not None
            golem.rt.events.subscribe(events.append)
            with pytest.raises(ImageRegistryError, match=rf"registry {down} is unreachable"):
                golem.run_service(Looks, 1, payload=VmPayload(image_tag="test/any:1"))
            assert [e for e in events if isinstance(e, DemandPublished)] == []
    assert pykka.ActorRegistry.get_all() == []
