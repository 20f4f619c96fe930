"""The task examples run on localnet and do what their docstrings say."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pykka
import pytest

from golem_actors.localnet.network import LocalNet
from golem_actors.yagna import ApiConfig

pytestmark = [pytest.mark.yagna, pytest.mark.usefixtures("healthy_providers")]

EXAMPLES = Path(__file__).parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def options(localnet: LocalNet) -> dict[str, object]:
    config = ApiConfig(app_key=localnet.app_key, api_url=localnet.api_url)
    return {
        "config": config,
        "budget": "1",
        "max_workers": 3,
        "task_timeout": 60,
        "golem_options": {"settle_timeout_s": 20},
    }


def test_keyspace_search_finds_the_preimage(localnet: LocalNet) -> None:
    example = load("keyspace_search")
    secret = 913
    digest = hashlib.sha256(str(secret).encode()).hexdigest()
    assert example.search(digest, 1200, 100, **options(localnet)) == secret
    assert pykka.ActorRegistry.get_all() == []


def test_keyspace_search_reports_a_miss(localnet: LocalNet) -> None:
    example = load("keyspace_search")
    digest = hashlib.sha256(b"not a number").hexdigest()
    assert example.search(digest, 300, 100, **options(localnet)) is None


def test_data_job_verifies_every_file(localnet: LocalNet) -> None:
    example = load("data_job")
    files = example.make_files(8)
    assert example.run_job(files, **options(localnet)) == len(files)
    assert pykka.ActorRegistry.get_all() == []
