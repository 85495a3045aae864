"""A real two-node Ray cluster on 127.0.0.1 for the tests: `ray start --head` plus one worker node.

Both nodes are `ray start --block` processes, each in its own session (process group), so the fixture
can end exactly the processes it started (the group's id) whatever happens in the tests; every wait is
bounded. Ray's usage statistics are off and the head listens on 127.0.0.1 only
(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 makes Ray keep the loopback address); the worker node joins
through the IPv4-mapped loopback address ([::ffff:127.0.0.1]), because Ray refuses a second node with
that setting and would otherwise rewrite 127.0.0.1 into the machine's network address.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOKEN = secrets.token_hex(32)  # Ray's token authentication, with a token only this test session knows
START_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_env(*, cluster: bool = False) -> dict:
    """The environment of the cluster's processes and of the drivers the tests start (the CLI)."""
    env = dict(os.environ)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env["RAY_AUTH_MODE"], env["RAY_AUTH_TOKEN"] = "token", TOKEN
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "1" if cluster else "0"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _ray_bin() -> str:
    candidate = Path(sys.executable).with_name("ray")
    return str(candidate) if candidate.exists() else (shutil.which("ray") or "ray")


def _wait_for(predicate, what: str, log: Path, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise RuntimeError(f"the test Ray cluster did not come up ({what}) in {timeout:.0f} s:\n{tail}")


class RayCluster:
    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen] = []

    def _start(self, args: list[str], log: Path, env: dict) -> subprocess.Popen:
        with open(log, "wb") as out:
            process = subprocess.Popen([_ray_bin(), "start", *args, "--block", "--disable-usage-stats",
                                        "--include-log-monitor", "false", "--object-store-memory", str(150 * 2**20),
                                        "--dashboard-agent-listen-port", str(free_port()),
                                        "--runtime-env-agent-port", str(free_port()),
                                        "--metrics-export-port", str(free_port())],
                                       stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.root,
                                       start_new_session=True)
        self.processes.append(process)
        return process

    def start(self) -> "RayCluster":
        head_log, worker_log = self.root / "head.log", self.root / "worker.log"
        self._start(["--head", "--port", str(self.port), "--ray-client-server-port", str(free_port()),
                     "--include-dashboard", "false", "--num-cpus", "1",
                     "--temp-dir", str(self.root / "ray")], head_log, ray_env())
        _wait_for(lambda: "Ray runtime started" in head_log.read_text(errors="replace"), "head node", head_log)
        self._start(["--address", f"[::ffff:127.0.0.1]:{self.port}", "--num-cpus", "1"], worker_log,
                    ray_env(cluster=True))
        _wait_for(lambda: "Ray runtime started" in worker_log.read_text(errors="replace"), "worker node", worker_log)
        return self

    def stop(self) -> None:
        for process in self.processes:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the group this fixture started, nothing else
            except ProcessLookupError:
                pass
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    pytest.importorskip("ray", reason="the 'ray' extra is not installed (pip install -e '.[ray]')")
    # A short root: Ray's socket paths live under --temp-dir and must stay under 107 characters.
    root = Path(tmp_path_factory.mktemp("rc"))
    cluster = RayCluster(root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
