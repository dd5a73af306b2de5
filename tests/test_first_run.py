"""What a new user meets first: a busy port fails at once, in one line naming the setting to change."""

from __future__ import annotations

import pytest

from parley.rpc import start_server
from parley.suite import PortInUse, start_service


async def test_a_second_server_cannot_bind_a_port_a_running_one_holds(settings) -> None:
    first = await start_server(settings, f"{settings.host}:0", [])
    try:
        with pytest.raises(OSError):
            await start_server(settings, f"{settings.host}:{first.port}", [])
    finally:
        await first.stop(0)


async def test_a_busy_service_port_names_the_setting_to_change(settings) -> None:
    holder = await start_server(settings, f"{settings.host}:0", [])
    busy = settings.model_copy(update={"conversations_port": holder.port})
    try:
        with pytest.raises(PortInUse) as caught:
            await start_service("conversations", busy)
        message = str(caught.value)
        assert str(holder.port) in message and "PARLEY_CONVERSATIONS_PORT" in message
        assert "\n" not in message
    finally:
        await holder.stop(0)
