"""Images: building a GVMI, resolving it through localnet's registry, and a provider's first deploy.

    python benchmarks/bench_images.py [--mib 64] [--files 2000] [--lookups 200]

A synthetic rootfs (half text, half random bytes) is built into a GVMI (``image build``) and
packed as a tarball; both are added to a store served by the registry. Measured: the build
(s, MB/s of tree), a registry ``/v1/image/info?tag=`` round trip with 20 tagged images (median,
p90), and a provider's first resolution of each image (download from the registry, sha3, checks,
unsquashfs or tar extraction: what the first ``deploy`` of an image pays) and a cached one.
Ends with one line of name=value pairs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import requests

from golem_actors.images.build import build_gvmi
from golem_actors.images.gvmi import ContainerConfig
from golem_actors.localnet.images import ImageStore
from golem_actors.localnet.registry import INFO_PATH, serve_registry

T = TypeVar("T")


def make_tree(root: Path, mib: int, files: int) -> int:
    """``files`` files of ``mib`` MiB in all, in 20 directories; returns the bytes written."""
    size = mib * 2**20 // files
    text = (b"the quick brown fox jumps over the lazy dog\n" * (size // 44 + 1))[:size]
    total = 0
    for i in range(files):
        directory = root / "usr" / "share" / f"d{i % 20}"
        directory.mkdir(parents=True, exist_ok=True)
        data = text if i % 2 else os.urandom(size)
        (directory / f"f{i}").write_bytes(data)
        total += len(data)
    return total


def timed(what: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = what()
    return time.perf_counter() - started, result


def resolve_seconds(provider: ImageStore, package: str) -> float:
    started = time.perf_counter()
    assert provider.rootfs(package, timeout=600) is not None
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--lookups", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        base = Path(tmp)
        tree_bytes = make_tree(base / "root", args.mib, args.files)
        config = ContainerConfig(env=("A=1",), working_dir="/", volumes=("/golem/output",))
        build_s, built = timed(lambda: build_gvmi(base / "root", base / "app.gvmi", config))
        store = ImageStore(base / "store")
        gvmi = store.add(built.path, tag="bench/app:1.0")
        tar = store.add(base / "root", tag="bench/tar:1.0")
        for i in range(18):
            small = base / f"small{i}"
            (small / "etc").mkdir(parents=True)
            (small / "etc" / "n").write_text(str(i))
            store.add(small, tag=f"bench/small:{i}")
        server, url = serve_registry(store)
        try:
            with requests.Session() as session:
                rtts = []
                for _ in range(args.lookups):
                    started = time.perf_counter()
                    answer = session.get(
                        url + INFO_PATH, params={"tag": "bench/app:1.0"}, timeout=10
                    )
                    rtts.append((time.perf_counter() - started) * 1000)
                    assert answer.status_code == 200
            figures = {}
            for name, image in (("gvmi", gvmi), ("tar", tar)):
                provider = ImageStore(base / f"provider-{name}")
                package = f"hash:sha3:{image.hash}:{url}/download/{image.hash}"
                first = resolve_seconds(provider, package)
                cached = resolve_seconds(provider, package)
                figures[f"{name}_first_s"], figures[f"{name}_cached_ms"] = first, cached * 1000
                figures[f"{name}_mib"] = image.size / 2**20
        finally:
            server.shutdown()
            server.server_close()
    rtts.sort()
    median, p90 = statistics.median(rtts), rtts[int(len(rtts) * 0.9)]
    tree_mib = tree_bytes / 2**20
    print(
        f"image build of {tree_mib:.0f} MiB in {args.files} files: {build_s:.2f} s "
        f"({tree_mib / build_s:.0f} MiB/s), GVMI {figures['gvmi_mib']:.1f} MiB "
        f"(tarball {figures['tar_mib']:.1f} MiB)"
    )
    print(f"registry info by tag, 20 images: median {median:.2f} ms, p90 {p90:.2f} ms")
    print(
        f"provider's first resolution (download, sha3, checks, unpack): "
        f"GVMI {figures['gvmi_first_s']:.2f} s, tarball {figures['tar_first_s']:.2f} s; "
        f"cached {figures['gvmi_cached_ms']:.2f} / {figures['tar_cached_ms']:.2f} ms"
    )
    names = " ".join(f"{k}={v:.2f}" for k, v in figures.items())
    print(
        f"tree_mib={tree_mib:.0f} build_s={build_s:.2f} info_median_ms={median:.2f} "
        f"info_p90_ms={p90:.2f} {names}"
    )


if __name__ == "__main__":
    main()
