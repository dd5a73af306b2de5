"""Each process of the suite checks, before it starts, the ports it will listen on: its own, never another's.
A second pipeline worker used to check the first one's /metrics port, and exited at start-up whenever the
first had bound it already."""

from __future__ import annotations

import socket

import pytest

from parley import ports
from parley.config import SERVICES, Settings
from parley.ports import free_port_block
from parley.suite import PortInUse, check_ports_free, ports_of


def test_a_worker_checks_its_own_metrics_port_while_another_worker_holds_its_own(settings: Settings) -> None:
    # the workers' ports come after the services' ones: the whole block must be free, not just its base
    metrics_base = free_port_block(len(SERVICES) + 2)
    base = settings.model_copy(update={"metrics_port": metrics_base, "host": "127.0.0.1"})
    first, second = (base.model_copy(update={"worker_index": i}) for i in (0, 1))
    [(_, _, first_port, _)] = ports_of(first, "worker")
    [(_, _, second_port, _)] = ports_of(second, "worker")
    assert first_port == base.metrics_port_of("worker", 0)
    assert second_port == base.metrics_port_of("worker", 1) != first_port
    with socket.socket() as held:  # the first worker is up and serving its /metrics
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("127.0.0.1", first_port))
        held.listen()
        check_ports_free(ports_of(second, "worker"))  # the second one starts
        with pytest.raises(PortInUse):
            check_ports_free(ports_of(first, "worker"))  # a second copy of the first does not


def test_a_block_never_takes_a_port_handed_out_before(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing listens on a port handed out until its server starts, so the kernel may offer it again: the
    # second block of a suite with replicas (or a service's port) once landed inside the first block.
    first = ports.free_port_block(len(SERVICES))
    single = ports.free_port()
    offered = iter([first + 2, single, *range(40000, 40100)])
    monkeypatch.setattr(ports, "_kernel_port", lambda: next(offered))

    second = ports.free_port_block(len(SERVICES))
    again = ports.free_port()

    taken = set(range(first, first + len(SERVICES))) | {single}
    assert not taken & set(range(second, second + len(SERVICES)))
    assert again not in taken | set(range(second, second + len(SERVICES)))
