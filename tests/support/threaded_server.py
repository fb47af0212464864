"""An ASGI app served by uvicorn on 127.0.0.1 (a free port) in a background thread, for tests.

The local stand-ins (SendGrid, Cloudflare, Cloudinary, OAuth providers, the Upstash bridge) and the
browser tests' live server subclass `ThreadedServer`: the port is bound at construction (so `url` is
known before anything is served), `start()` returns once uvicorn accepts requests, `stop()` asks it to
finish, waits for the thread and releases the port; `with server:` does both.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Literal, Self

import uvicorn


class ThreadedServer:
    """Serve `app` (or what `_build_app()` returns at start) from a daemon thread."""

    def __init__(
        self,
        app: Any = None,
        *,
        label: str,
        thread_name: str,
        path: str = "",
        lifespan: Literal["auto", "on", "off"] = "off",
        start_timeout: float = 5.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self._app = app
        self._label = label  # names the server in the error start() raises, e.g. "the SendGrid test server"
        self._thread_name = thread_name
        self._lifespan = lifespan
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        # IPPROTO_TCP named: asyncio then sets TCP_NODELAY on accepted connections (it checks the listening
        # socket's proto). Without it every keep-alive answer waits ~40 ms for the client's delayed ACK.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _build_app(self) -> Any:
        """The ASGI app to serve; called by start() (override to build it only then)."""
        return self._app

    def _serve_forever(self, server: uvicorn.Server, sockets: list[socket.socket]) -> None:
        """Run uvicorn in this (the background) thread until it is asked to exit."""
        server.run(sockets=sockets)

    def _run(self) -> None:
        assert self._server is not None
        try:
            self._serve_forever(self._server, [self._socket])
        except BaseException as error:  # reported by start()
            self._error = error
            raise

    def start(self) -> Self:
        """Serve until stop(); return once requests are accepted."""
        config = uvicorn.Config(
            self._build_app(), log_level="warning", access_log=False, lifespan=self._lifespan, loop="asyncio"
        )
        server = self._server = uvicorn.Server(config)
        thread = self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
        thread.start()
        deadline = time.monotonic() + self._start_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                reason = f": {self._error!r}" if self._error is not None else ""
                raise RuntimeError(f"{self._label} did not start{reason}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=self._stop_timeout)
        self._socket.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


__all__ = ["ThreadedServer"]
