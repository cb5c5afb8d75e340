"""Download a file over HTTP(S): progress bar, sha256 check, atomic, nothing left behind on failure.

The file is streamed into ``<dest>.part`` while hashing; only a complete, verified download is
renamed to ``dest``. A 404, an unreachable host, a connection cut half-way (fewer bytes than
``Content-Length``) or a checksum mismatch raise :class:`~vidcolor.errors.WeightsError` with one
line naming the URL, and the ``.part`` file is removed, so the cache never holds a half file.
Failures to fetch (HTTP error, no connection, cut transfer) are :class:`DownloadError`, so a caller
can say what to do offline; a checksum mismatch is a plain WeightsError.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from vidcolor import __version__
from vidcolor.errors import WeightsError

ProgressCallback = Callable[[int, "int | None"], None]
_CHUNK = 1 << 16


class DownloadError(WeightsError):
    """The file could not be fetched: ``url`` and a short ``reason`` (``HTTP 404 Not Found``, ...)."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"download failed: {url}: {reason}")
        self.url, self.reason = url, reason


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_digest(digest: str, *, sha256: str | None, sha256_prefix: str | None, what: str) -> None:
    """Raise WeightsError unless ``digest`` matches the full ``sha256`` or starts with ``sha256_prefix``."""
    if sha256 and digest.lower() != sha256.lower():
        raise WeightsError(f"{what}: sha256 mismatch (expected {sha256}, got {digest}); the file is corrupt or "
                           "was replaced, nothing was kept")
    if not sha256 and sha256_prefix and not digest.lower().startswith(sha256_prefix.lower()):
        raise WeightsError(f"{what}: sha256 mismatch (expected a digest starting {sha256_prefix}, got {digest}); "
                           "nothing was kept")


def download(url: str, dest: str | Path, *, sha256: str | None = None, sha256_prefix: str | None = None,
             progress: bool | None = None, on_progress: ProgressCallback | None = None, timeout: float = 60.0) -> str:
    """Download ``url`` to ``dest`` atomically and return the file's sha256 (hex).

    ``progress``: show a rich progress bar on stderr (default: only when stderr is a terminal).
    ``on_progress(done_bytes, total_bytes_or_None)`` is called after every chunk (tests, GUIs).
    Raises WeightsError (one line) on HTTP errors, network errors, truncation and digest mismatch.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if progress is None:
        progress = sys.stderr.isatty()
    request = urllib.request.Request(url, headers={"User-Agent": f"vidcolor/{__version__}"})
    try:
        try:
            response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http(s) URLs from the registry)
        except urllib.error.HTTPError as exc:
            raise DownloadError(url, f"HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DownloadError(url, f"cannot connect ({reason})") from None
        with response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            digest = _stream(response, part, total, url, progress, on_progress)
        check_digest(digest, sha256=sha256, sha256_prefix=sha256_prefix, what=f"download of {url}")
        os.replace(part, dest)
        return digest
    finally:
        part.unlink(missing_ok=True)


def _stream(response, part: Path, total: int | None, url: str, progress: bool,
            on_progress: ProgressCallback | None) -> str:
    h = hashlib.sha256()
    done = 0
    bar = _progress_bar(Path(url).name, total) if progress else None
    try:
        with open(part, "wb") as f:
            while True:
                try:
                    block = response.read(_CHUNK)
                except (http.client.IncompleteRead, ConnectionError, TimeoutError, OSError) as exc:
                    raise DownloadError(url, f"connection lost after {done} of {total if total is not None else '?'} "
                                        f"bytes ({type(exc).__name__})") from None
                if not block:
                    break
                f.write(block)
                h.update(block)
                done += len(block)
                if bar is not None:
                    bar[0].update(bar[1], completed=done)
                if on_progress is not None:
                    on_progress(done, total)
    finally:
        if bar is not None:
            bar[0].stop()
    if total is not None and done != total:
        raise DownloadError(url, f"connection cut after {done} of {total} bytes")
    return h.hexdigest()


def _progress_bar(label: str, total: int | None):
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   console=Console(stderr=True), transient=True)
    bar.start()
    return bar, bar.add_task(label, total=total)
