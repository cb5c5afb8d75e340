"""Fixtures for the model tests: an isolated VIDCOLOR_HOME, a local HTTP server, tiny weights."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path
from typing import Iterator

import pytest
import torch


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any socket connection during the test fails it (shipped weights must load offline)."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("loading shipped weights must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def vidcolor_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``$VIDCOLOR_HOME`` (weights cache and user styles) per test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("VIDCOLOR_HOME", str(home))
    return home


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        path = self.path
        cut = path.startswith("/cut/")
        body = self.files.get(path[4:] if cut else path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if cut:  # promise the whole body, send half, drop the connection
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # keep test output clean
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """``(base_url, files)``: serves ``files[path]`` on 127.0.0.1; ``/cut<path>`` sends half then closes."""
    files: dict[str, bytes] = {}
    handler = type("Handler", (_Handler,), {"files": files})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", files
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def tiny_colorizer(tmp_path: Path) -> Path:
    """A 1 -> 2 channel U-Net (ngf=4, 6 levels) with seeded weights, as a weights folder."""
    from vidcolor.models.pretrained import save_pretrained
    from vidcolor.models.registry import build_model

    torch.manual_seed(0)
    kwargs = {"ngf": 4, "num_downs": 6}
    model = build_model("unet", **kwargs)
    return save_pretrained(model, tmp_path / "tiny_colorizer",
                           {"arch": "unet", "kwargs": kwargs, "task": "colorize", "l_norm": [50, 50], "ab_scale": 110})
