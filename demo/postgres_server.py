"""A throwaway PostgreSQL server for the tests: Debian's `postgresql` package (`apt-get install
postgresql`, as .ci/run does), a cluster made by initdb in a temporary directory and served on a
free loopback port, trust authentication, stopped and removed afterwards. PostgreSQL refuses to run
as root: as root, the cluster belongs to the `postgres` user the package creates."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

INSTALL = "PostgreSQL is not installed: `apt-get install -y postgresql` (Debian), as .ci/run does"


def binaries() -> Path | None:
    """The directory of initdb and pg_ctl (Debian keeps them out of PATH)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """Serves a new, empty cluster; yields its URL (postgresql://postgres@127.0.0.1:PORT/postgres)."""
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError(INSTALL)
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        as_postgres = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="smstools-pg-"))
    data, socket_dir, log = root / "data", root / "run", root / "server.log"
    socket_dir.mkdir()
    if as_postgres:
        user = pwd.getpwnam("postgres")
        for path in (root, socket_dir):
            os.chown(path, user.pw_uid, user.pw_gid)
    port = _free_port()
    run = lambda *args: subprocess.run(as_postgres + [str(bin_dir / args[0]), *args[1:]], check=True, capture_output=True, text=True)  # noqa: E731
    try:
        run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync")
        options = f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        run("pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
    except subprocess.CalledProcessError as error:
        raise RuntimeError(f"{error.cmd[len(as_postgres)]} failed: {error.stderr or error.stdout}") from error
    finally:
        shutil.rmtree(root, ignore_errors=True)
