"""Free TCP ports on 127.0.0.1 for the bench, the chaos run and the tests that start real servers."""

from __future__ import annotations

import socket
from collections import deque

# Ports this process handed out lately. Nothing is bound to them until the servers start, so the kernel
# may offer one again: a block picked after a port (or another block) could take it too.
_RECENT = 4096
_handed_out: deque[int] = deque(maxlen=_RECENT)


def _kernel_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _hand_out(ports: range) -> None:
    _handed_out.extend(ports)


def free_port(attempts: int = 50) -> int:
    """A port the kernel had free a moment ago and this process has not handed out lately (another process
    may still take it before it is bound)."""
    for _ in range(attempts):
        port = _kernel_port()
        if port not in _handed_out:
            _hand_out(range(port, port + 1))
            return port
    raise OSError(f"no free port this process had not handed out in {attempts} attempts")


def free_port_block(size: int, attempts: int = 50) -> int:
    """The first of `size` consecutive ports, all free now and none handed out lately: for settings that
    derive ports from a base (each service's /metrics port is the base plus its index), where one free base
    says nothing of the rest."""
    for _ in range(attempts):
        base = _kernel_port()
        block = range(base, base + size)
        if base + size > 65_536 or any(port in _handed_out for port in block):
            continue
        held: list[socket.socket] = []
        try:
            for port in block:
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            _hand_out(block)
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise OSError(f"no {size} consecutive free ports found in {attempts} attempts")
