"""A suite's child process stops by itself once the process that started it is gone (killed before it could
stop its children), instead of running on as an orphan."""

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from parley.supervision import stop_when_orphaned

SERVICES = str(Path(__file__).resolve().parents[1] / "services")

# A parent that starts a child watching it, prints the child's pid and then waits to be killed.
PARENT = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid())])
print(child.pid, flush=True)
time.sleep(600)
"""
CHILD = """
import asyncio, sys
from parley.supervision import stop_when_orphaned
stop = asyncio.Event()
asyncio.run(stop_when_orphaned(int(sys.argv[1]), stop))
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_child_stops_once_its_supervisor_is_killed() -> None:
    env = os.environ | {"PYTHONPATH": SERVICES}
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD], stdout=subprocess.PIPE, env=env)
    assert parent.stdout is not None
    with parent.stdout:
        child = int(parent.stdout.readline())
    time.sleep(1.5)
    assert _alive(child)  # watching a live parent, it keeps running
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


async def test_an_unsupervised_process_and_one_whose_parent_lives_are_not_stopped() -> None:
    stop = asyncio.Event()
    await stop_when_orphaned(0, stop)
    assert not stop.is_set()
    watch = asyncio.create_task(stop_when_orphaned(os.getppid(), stop))
    await asyncio.sleep(0.2)
    assert not stop.is_set() and not watch.done()
    watch.cancel()
    await stop_when_orphaned(os.getppid() + 1_000_000, stop)  # not our parent: gone already
    assert stop.is_set()
