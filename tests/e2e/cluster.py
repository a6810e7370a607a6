"""Several `mlgate serve` replicas behind nginx, on one machine: separate processes and ports
standing in for separate machines, sharing PostgreSQL, Redis and an artifact folder (standing
in for the object store). Used by tests/e2e/test_replicas.py and bench/replicas.py.

nginx runs the project's own deploy/nginx.conf; only its ports are replaced.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.helpers import env_for, free_port, wait_ready

DEPLOY = Path(__file__).parents[2] / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@dataclass
class Cluster:
    root: Path
    database_url: str
    redis_url: str
    redis_prefix: str
    secret: str = "replicas-share-this-secret"
    workers: int = 1
    replicas: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    nginx: subprocess.Popen[bytes] | None = None
    balancer: str = ""

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    def env(self, home: Path) -> dict[str, str]:
        return env_for(
            home,
            MLGATE_DATABASE_URL=self.database_url,
            MLGATE_REDIS_URL=self.redis_url,
            MLGATE_REDIS_PREFIX=self.redis_prefix,
            MLGATE_SECRET_KEY=self.secret,
            MLGATE_ARTIFACT_DIR=str(self.artifacts),
        )

    def home(self, name: str) -> Path:
        """Each replica its own home (its own machine); everything shared is configured."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def start_replica(self, port: int | None = None) -> int:
        port = port or free_port()
        log = (self.root / f"replica-{port}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "mlgate", "serve", "--port", str(port),
             "--workers", str(self.workers)],
            env=self.env(self.home(f"replica-{port}")),
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        self.replicas[port] = process
        wait_ready(f"http://127.0.0.1:{port}", process, self.root / f"replica-{port}.log")
        return port

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"

    def kill(self, port: int) -> None:
        """SIGKILL, as a machine that loses power: no drain, no last flush."""
        process = self.replicas.pop(port)
        process.kill()
        process.wait(timeout=30)

    def start_nginx(self) -> str:
        """nginx with deploy/nginx.conf, its upstream listing this cluster's replicas."""
        port = free_port()
        text = DEPLOY.read_text()
        servers = "".join(
            f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n" for p in self.replicas
        )
        text, n = re.subn(r"(?m)^        server 127\.0\.0\.1:800\d [^\n]*\n", "", text)
        assert n == 3, "deploy/nginx.conf lists its replicas as the test expects"
        text = text.replace("        least_conn;\n", "        least_conn;\n" + servers)
        text = text.replace("listen 127.0.0.1:8000;", f"listen 127.0.0.1:{port};")
        prefix = self.root / "nginx"
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        conf = prefix / "nginx.conf"
        conf.write_text(text)
        log = (self.root / "nginx.log").open("w")
        user = ["-g", "daemon off; user root;"] if os.geteuid() == 0 else ["-g", "daemon off;"]
        self.nginx = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(conf), *user], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self.balancer = f"http://127.0.0.1:{port}"
        wait_ready(self.balancer, self.nginx, self.root / "nginx.log")
        return self.balancer

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.terminate()
            self.nginx.wait(timeout=30)
        for process in self.replicas.values():
            process.send_signal(signal.SIGTERM)
        for process in self.replicas.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.replicas.clear()
