"""Fixtures of the stock-client tests: localnet (tests/conftest.py), a tagged image, yagna's view.

Stock clients and their dependencies are installed by ``bash .ci/bootstrap test``: golem-js with
``npm ci`` into ``tests/stock/js/node_modules``, yapapi into its own venv ``.venv-yapapi``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from golem_actors.localnet.network import LocalNet
from golem_actors.yagna import ApiConfig, YagnaClient
from tests.localnet.test_images import copy_binaries
from tests.stock.harness import GOLEM_ACTORS, REPO, STOCK

JS = STOCK / "js"  # golem-js scripts; node_modules from `npm ci`
GOLEM_JS_VERSION = "3.6.0"
YAPAPI_PYTHON = REPO / ".venv-yapapi" / "bin" / "python"  # python scripts run in STOCK / "py"
YAPAPI_VERSION = "0.13.1"
#: the tag stock clients ask localnet's registry for
IMAGE_TAG = "stock/transform:1.0"
_PROGRAMS = {"sh": "/usr/bin/dash", "cat": "/usr/bin/cat", "tr": "/usr/bin/tr"}
_PROGRAMS |= {"wc": "/usr/bin/wc", "sleep": "/usr/bin/sleep"}


@pytest.fixture(scope="session")
def stock_image(localnet: LocalNet, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny GVMI (sh, cat, tr, wc, sleep), built and tagged with the console scripts.

    Its volumes are the ones stock clients write to: /golem/input, /golem/output, /golem/work
    (the working directory). Returns the tag, which localnet's registry now resolves.
    """
    tmp = tmp_path_factory.mktemp("stock-image")
    root = copy_binaries(tmp / "root", _PROGRAMS)
    volumes = ("/golem/input", "/golem/output", "/golem/work")
    build = [str(GOLEM_ACTORS), "image", "build", str(root), "-o", str(tmp / "transform.gvmi")]
    build += ["--workdir", "/golem/work"]
    for volume in volumes:
        build += ["--volume", volume]
    add = [str(GOLEM_ACTORS), "localnet", "images", "add", str(tmp / "transform.gvmi")]
    add += ["--tag", IMAGE_TAG, "--data-dir", str(localnet.data_dir)]
    for argv in (build, add):
        subprocess.run(argv, check=True, capture_output=True, timeout=120)
    assert localnet.images.find_tag(IMAGE_TAG) is not None
    return IMAGE_TAG


@pytest.fixture(scope="session")
def golem_js_node() -> str:
    """``node``, checked to have golem-js installed as the lock pins it."""
    found = shutil.which("node")
    assert found, "node (v18+) is needed: see the README's test bootstrap"
    installed = JS / "node_modules" / "@golem-sdk" / "golem-js" / "package.json"
    assert installed.is_file(), "golem-js is not installed: run `bash .ci/bootstrap test`"
    assert f'"version": "{GOLEM_JS_VERSION}"' in installed.read_text(), installed
    return found


@pytest.fixture(scope="session")
def yapapi_python() -> Path:
    """The Python of yapapi's own venv, checked to have the pinned yapapi."""
    assert YAPAPI_PYTHON.is_file(), "yapapi's venv is missing: run `bash .ci/bootstrap test`"
    version = subprocess.run(
        [str(YAPAPI_PYTHON), "-c", "import yapapi; print(yapapi.__version__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert version == YAPAPI_VERSION
    return YAPAPI_PYTHON


@pytest.fixture
def gftp_on_path(tmp_path: Path) -> Path:
    """A directory holding only ``gftp`` (ours), to put first on a yapapi client's PATH."""
    ours = Path(sys.executable).parent / "gftp"
    assert ours.is_file(), "the gftp console script is missing: reinstall the package"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gftp").symlink_to(ours)
    return bin_dir


@pytest.fixture
def yagna(localnet: LocalNet) -> Iterator[YagnaClient]:
    """The requestor's REST API: what the tests ask yagna after a stock client has run."""
    with YagnaClient(ApiConfig(app_key=localnet.app_key, api_url=localnet.api_url)) as client:
        yield client


def text_file(path: Path, size: int) -> Path:
    """``size`` bytes of lower-case text over several lines (several GFTP chunks past 64 KB)."""
    line = b"the quick brown fox jumps over the lazy dog 0123456789\n"
    path.write_bytes((line * (size // len(line) + 1))[:size])
    return path
