"""`parley serve console` as its own process: it says where it listens, serves pages, and stops on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from urllib.error import HTTPError

from parley.config import Settings


def test_serve_console_prints_its_url_and_serves_until_sigterm(settings: Settings) -> None:
    env = dict(os.environ) | {
        "PARLEY_CONSOLE_PORT": "0",  # any free port; the process prints the one it bound
        "PARLEY_ROUTER_ADDR": "127.0.0.1:1",  # no suite: pages say the services are unavailable
        "PARLEY_CONVERSATIONS_ADDR": "127.0.0.1:1",
        "PARLEY_RPC_TIMEOUT_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)  # the console needs no Redis: it must not start an embedded one either
    with subprocess.Popen(
        [sys.executable, "-m", "parley", "serve", "console"], env=env, stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            match = re.search(r"console on (http://127\.0\.0\.1:\d+/)", line)
            assert match, line
            with urllib.request.urlopen(match.group(1) + "static/console.css", timeout=10) as reply:
                assert reply.status == 200
            try:
                urllib.request.urlopen(match.group(1), timeout=10)
                raise AssertionError("the floor cannot be shown without the router")
            except HTTPError as error:
                with error:
                    assert error.code == 503 and b"UNAVAILABLE" in error.read()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
        finally:
            if process.poll() is None:  # a failed check must not leave it running
                process.kill()
