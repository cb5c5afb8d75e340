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


# -- pull: pinned digests, trust on first use ------------------------------------------------------------
def _checkpoint_bytes(tmp_path: Path, seed: int) -> bytes:
    import torch
    from reference_layouts import cyclegan_resnet, make_state_dict

    path = tmp_path / f"ckpt{seed}.pth"
    torch.save(make_state_dict(cyclegan_resnet(3, 3, 4, 2, "instance_old"), seed=seed), path)
    return path.read_bytes()


@pytest.fixture
def test_entry(http_server, monkeypatch):
    """``make(**fields)``: registers ``style_test`` (a tiny CycleGAN generator served at ``/style_test.pth``)."""
    from vidcolor.models import weights as W

    url, _ = http_server

    def make(**fields) -> W.WeightsEntry:
        entry = W.WeightsEntry(name="style_test", arch="resnet", task="stylize",
                               kwargs={"input_nc": 3, "output_nc": 3, "ngf": 4, "norm": "instance", "n_blocks": 2},
                               url=f"{url}/style_test.pth", meta={"params": 0}, **fields)
        monkeypatch.setitem(W.WEIGHTS, "style_test", entry)
        return entry

    return make


def test_first_download_is_recorded_and_a_changed_file_is_then_refused(http_server, test_entry, tmp_path: Path,
                                                                        vidcolor_home: Path) -> None:
    from vidcolor.models.importers import checksum_file, checksum_status, pull_weights
    from vidcolor.models.pretrained import load_pretrained

    _, files = http_server
    test_entry()
    assert checksum_status("style_test")["text"] == ("not downloaded yet: checksum will be recorded on first "
                                                     "download (not pinned)")
    first = files["/style_test.pth"] = _checkpoint_bytes(tmp_path, seed=0)
    digest = hashlib.sha256(first).hexdigest()
    result, check = pull_weights("style_test", progress=False)
    assert check == "first" and result.sha256 == digest
    record = checksum_file("style_test")
    assert record.read_text() == f"{digest}  style_test.pth\n"  # sha256sum format
    status = checksum_status("style_test")
    assert status["kind"] == "recorded" and status["text"].startswith(f"sha256 recorded on first download: {digest}")
    # the same file again: checked against the record
    assert pull_weights("style_test", force=True, progress=False)[1] == "recorded"
    installed = (result.folder / "weights.safetensors").read_bytes()

    files["/style_test.pth"] = _checkpoint_bytes(tmp_path, seed=1)  # the server now serves another file
    with pytest.raises(WeightsError, match=f"differs from the one recorded on the first download \\({digest}") as err:
        pull_weights("style_test", force=True, progress=False)
    assert "\n" not in str(err.value) and "nothing was kept" in str(err.value)
    assert (result.folder / "weights.safetensors").read_bytes() == installed  # the verified weights stay
    assert record.read_text() == f"{digest}  style_test.pth\n"
    _assert_clean(vidcolor_home / "weights" / "downloads")
    load_pretrained("style_test")
    # a folder pulled before checksum files existed: its config's source digest is the record
    record.unlink()
    with pytest.raises(WeightsError, match=f"\\({digest}, {result.folder}\\).*delete {result.folder} to trust"):
        pull_weights("style_test", force=True, progress=False)
    files["/style_test.pth"] = first
    assert pull_weights("style_test", force=True, progress=False)[1] == "recorded"
    assert record.read_text() == f"{digest}  style_test.pth\n"  # moved to its own file


def test_a_first_download_that_does_not_convert_is_not_recorded(http_server, test_entry, vidcolor_home: Path) -> None:
    from vidcolor.models.importers import checksum_file, pull_weights

    _, files = http_server
    test_entry()
    files["/style_test.pth"] = b"not a checkpoint"
    with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint"):
        pull_weights("style_test", progress=False)
    assert not checksum_file("style_test").exists() and not (vidcolor_home / "weights" / "style_test").exists()


def test_pinned_digest_match_and_mismatch(http_server, test_entry, tmp_path: Path, vidcolor_home: Path) -> None:
    from vidcolor.models.importers import checksum_file, checksum_status, pull_weights

    _, files = http_server
    payload = files["/style_test.pth"] = _checkpoint_bytes(tmp_path, seed=0)
    digest = hashlib.sha256(payload).hexdigest()
    test_entry(sha256="0" * 64)
    assert checksum_status("style_test")["text"] == f"sha256 pinned: {'0' * 64}"
    with pytest.raises(WeightsError, match=f"sha256 mismatch \\(expected {'0' * 64}, got {digest}\\)") as err:
        pull_weights("style_test", progress=False)
    assert err.value.exit_code == 2 and "\n" not in str(err.value)
    assert sorted(p.name for p in (vidcolor_home / "weights").iterdir()) == ["downloads"]
    _assert_clean(vidcolor_home / "weights" / "downloads")

    test_entry(sha256=digest)
    assert pull_weights("style_test", progress=False)[1] == "pinned"
    assert not checksum_file("style_test").exists()  # a pinned digest needs no record

    # only a published prefix (torch.hub file names): checked, and the full digest recorded
    import shutil

    shutil.rmtree(vidcolor_home / "weights" / "style_test")
    test_entry(sha256_prefix="0" * 8)
    with pytest.raises(WeightsError, match="expected a digest starting 00000000"):
        pull_weights("style_test", force=True, progress=False)
    test_entry(sha256_prefix=digest[:8])
    assert pull_weights("style_test", force=True, progress=False)[1] == "prefix"
    assert checksum_file("style_test").read_text().split()[0] == digest
    assert checksum_status("style_test")["kind"] == "recorded"
