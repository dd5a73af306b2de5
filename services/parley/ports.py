"""Free TCP ports on 127.0.0.1 for the bench, the chaos run and the tests that start real servers."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port the kernel had free a moment ago (another process may still take it before it is bound)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_block(size: int, attempts: int = 50) -> int:
    """The first of `size` consecutive ports, all free now: for settings that derive ports from a base (each
    service's /metrics port is the base plus its index), where one free base says nothing of the rest."""
    for _ in range(attempts):
        base = free_port()
        if base + size > 65_536:
            continue
        held: list[socket.socket] = []
        try:
            for port in range(base, base + size):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise OSError(f"no {size} consecutive free ports found in {attempts} attempts")
