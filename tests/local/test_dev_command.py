"""`cinema dev` (what `make dev` runs): one command brings the platform up on embedded services,
health names a stopped dependency, Ctrl-C stops everything, and a second start reuses the data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from shared.local.services import embedded_redis_url, stop_embedded_postgres, stop_embedded_redis
from shared.settings import REPO_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SIGNING_SECRET"}}
    env |= {"APP_ENV": "local", "DATA_DIR": str(data_dir), "LOG_LEVEL": "INFO"}
    return subprocess.Popen(
        [str(REPO_ROOT / ".venv" / "bin" / "cinema"), "dev", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_health(base: str, status: int, timeout: float = 90) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{base}/api/v1/health", timeout=10)
            last = response.status_code, response.text
            if response.status_code == status:
                body: dict[str, object] = response.json()
                return body
        except httpx.TransportError as error:
            last = error
        time.sleep(0.3)
    raise AssertionError(f"health never answered {status}; last: {last}")


def interrupt(process: subprocess.Popen[bytes], log: Path) -> None:
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends to the whole group
    try:
        assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise


@pytest.fixture
def data_dir(tmp_path: Path):
    yield tmp_path / "data"
    stop_embedded_redis(tmp_path / "data")
    stop_embedded_postgres(tmp_path / "data")


def test_dev_up_degraded_stopped_and_restarted(data_dir: Path, tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "dev.log"
    base = f"http://127.0.0.1:{port}"
    process = start(data_dir, port, log)
    try:
        body = wait_health(base, 200)
        assert body["status"] == "pass", body
        assert "Cinema Online" in httpx.get(base + "/").text

        stop_embedded_redis(data_dir)
        assert wait_health(base, 503)["down"] == ["redis"]
        embedded_redis_url(data_dir)  # bring it back: health recovers without a restart
        wait_health(base, 200)

        stop_embedded_postgres(data_dir)
        assert "database" in wait_health(base, 503)["down"]  # type: ignore[operator]
    finally:
        interrupt(process, log)
    assert not (data_dir / "postgres" / "postmaster.pid").exists(), "Ctrl-C left PostgreSQL running"
    assert not (data_dir / "redis" / "redis.sock").exists(), "Ctrl-C left Redis running"
    secret = (data_dir / "signing-secret").read_text()

    process = start(data_dir, port, log)
    try:
        assert wait_health(base, 200)["status"] == "pass"
    finally:
        interrupt(process, log)
    assert (data_dir / "signing-secret").read_text() == secret  # the same .data was reused
    assert "applied 0 migration(s)" in log.read_text()
