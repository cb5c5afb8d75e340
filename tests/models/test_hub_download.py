"""Downloads from a local HTTP server: progress, checksum, 404, cut connection; the cache stays clean."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from vidcolor.errors import WeightsError
from vidcolor.models.hub import download

PAYLOAD = os.urandom(300_000)  # several 64 KiB chunks
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


def test_download_with_progress_and_checksum(http_server, tmp_path: Path) -> None:
    url, files = http_server
    files["/w.pth"] = PAYLOAD
    seen: list[tuple[int, int | None]] = []
    dest = tmp_path / "cache" / "w.pth"
    digest = download(f"{url}/w.pth", dest, sha256=DIGEST, progress=True, on_progress=lambda d, t: seen.append((d, t)))
    assert digest == DIGEST and dest.read_bytes() == PAYLOAD
    assert len(seen) >= 4 and seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["w.pth"]


def test_prefix_checksum_and_unknown_checksum(http_server, tmp_path: Path) -> None:
    url, files = http_server
    files["/w.pth"] = PAYLOAD
    assert download(f"{url}/w.pth", tmp_path / "a.pth", sha256_prefix=DIGEST[:8], progress=False) == DIGEST
    # no published digest: download succeeds and returns the digest for trust-on-first-use
    assert download(f"{url}/w.pth", tmp_path / "b.pth", progress=False) == DIGEST


def _assert_clean(folder: Path) -> None:
    assert not folder.exists() or list(folder.iterdir()) == []


@pytest.mark.parametrize("kind", ["sha256", "prefix"])
def test_checksum_mismatch_leaves_nothing(http_server, tmp_path: Path, kind: str) -> None:
    url, files = http_server
    files["/w.pth"] = PAYLOAD
    cache = tmp_path / "cache"
    bad = {"sha256": "0" * 64} if kind == "sha256" else {"sha256_prefix": "00000000"}
    with pytest.raises(WeightsError, match="sha256 mismatch") as err:
        download(f"{url}/w.pth", cache / "w.pth", progress=False, **bad)
    assert "\n" not in str(err.value) and DIGEST in str(err.value)
    _assert_clean(cache)


def test_404_leaves_nothing(http_server, tmp_path: Path) -> None:
    url, _ = http_server
    cache = tmp_path / "cache"
    with pytest.raises(WeightsError, match=r"HTTP 404") as err:
        download(f"{url}/missing.pth", cache / "missing.pth", progress=False)
    assert f"{url}/missing.pth" in str(err.value)
    _assert_clean(cache)


def test_connection_cut_half_way_leaves_nothing(http_server, tmp_path: Path) -> None:
    url, files = http_server
    files["/w.pth"] = PAYLOAD
    cache = tmp_path / "cache"
    with pytest.raises(WeightsError, match=r"(cut|lost) after \d+ of 300000 bytes"):
        download(f"{url}/cut/w.pth", cache / "w.pth", sha256=DIGEST, progress=False)
    _assert_clean(cache)


def test_unreachable_host(tmp_path: Path) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(WeightsError, match="cannot connect"):
        download(f"http://127.0.0.1:{port}/w.pth", tmp_path / "w.pth", progress=False, timeout=5)
    _assert_clean(tmp_path)
