"""A throwaway PostgreSQL server for tests: ``initdb`` into a temporary folder, a free port, gone at the end.

The test suite of this repository (and a plugin's, against :class:`~delivery_sdk.store.postgres.PostgresStore`)
uses it when no PostgreSQL server is given::

    with ThrowawayCluster.start() as cluster:
        dsn = cluster.dsn  # postgresql://postgres@127.0.0.1:PORT/postgres, trust auth

The server binaries (``initdb``, ``pg_ctl``, ``postgres``) are found in ``$DELIVERY_SDK_PG_BINDIR`` when it
is set (and only there), else through ``PATH``, then ``pg_config --bindir``, then the distributions' folders
(Debian's and Ubuntu's ``/usr/lib/postgresql/<version>/bin``, the newest first; ``/usr/pgsql-<version>/bin``;
Homebrew's). PostgreSQL
refuses to run as root: as root, the server runs as an unprivileged user (``postgres`` when it exists, else
``nobody``) that owns the temporary folder. When no server can be started, :class:`PostgresUnavailable`
says what to install.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

__all__ = ["INSTALL_HINT", "PostgresUnavailable", "ThrowawayCluster", "find_server_bindir"]

INSTALL_HINT = (
    "install PostgreSQL's server binaries (Debian/Ubuntu: `apt-get install postgresql`, which "
    "./scripts/setup.sh does), or point DELIVERY_SDK_TEST_PG at a server you run"
)
BINDIR_ENV = "DELIVERY_SDK_PG_BINDIR"
_SEARCH_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/opt/homebrew/opt/postgresql*/bin")


class PostgresUnavailable(RuntimeError):
    """No throwaway PostgreSQL server could be started; the message says why and what to install."""


def _version_key(path: Path) -> tuple[int, ...]:
    digits = "".join(ch if ch.isdigit() else " " for ch in str(path))
    return tuple(int(part) for part in digits.split())


def find_server_bindir(environ: dict[str, str] | None = None) -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, or ``None`` when there is none."""
    env = os.environ if environ is None else environ
    candidates: list[Path] = []
    if env.get(BINDIR_ENV):  # an explicit choice: that folder or none
        return _if_server(Path(env[BINDIR_ENV]))
    on_path = shutil.which("initdb", path=env.get("PATH"))
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config", path=env.get("PATH"))
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10)
            candidates.append(Path(out.stdout.strip()))
    for pattern in _SEARCH_GLOBS:
        found = sorted(Path("/").glob(pattern.lstrip("/")), key=_version_key, reverse=True)
        candidates.extend(found)
    for folder in candidates:
        if _if_server(folder):
            return folder
    return None


def _if_server(folder: Path) -> Path | None:
    if all((folder / name).is_file() and os.access(folder / name, os.X_OK) for name in ("initdb", "pg_ctl")):
        return folder
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _unprivileged_user() -> str:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise PostgresUnavailable("running as root, and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")


def _run_as(user: str | None) -> list[str]:
    if user is None:
        return []
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", user, "--"]
    setpriv = shutil.which("setpriv")
    if setpriv:
        entry = pwd.getpwnam(user)
        return [setpriv, f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", "--"]
    raise PostgresUnavailable(f"running as root, and neither runuser nor setpriv is there to run PostgreSQL as {user}")


class ThrowawayCluster:
    """A PostgreSQL cluster of its own in a temporary folder, listening on 127.0.0.1 at a free port (trust auth).

    :meth:`start` creates and starts one; :meth:`stop` (or leaving the ``with`` block) stops it and removes the
    folder; :meth:`restart` restarts the server in place (its data kept), as a test of reconnection needs.
    """

    def __init__(self, bindir: Path, folder: Path, port: int, user: str | None) -> None:
        """Describe a cluster; :meth:`start` is the way to make one."""
        self.bindir = bindir
        self.folder = folder
        self.port = port
        self.user = user
        self.data = folder / "data"
        self.log = folder / "server.log"

    @property
    def dsn(self) -> str:
        """The DSN of the cluster's ``postgres`` database, as the superuser ``postgres``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls, bindir: Path | None = None) -> ThrowawayCluster:
        """Create a cluster (``initdb``) in a new temporary folder and start its server; raise
        :class:`PostgresUnavailable` with what to install when that cannot be done."""
        bindir = bindir or find_server_bindir()
        if bindir is None:
            raise PostgresUnavailable(f"no PostgreSQL server binaries (initdb, pg_ctl) on this machine: {INSTALL_HINT}")
        user = _unprivileged_user() if os.geteuid() == 0 else None
        # under the system's temporary folder (world-traversable), not pytest's per-user one (mode 0700)
        folder = Path(tempfile.mkdtemp(prefix="delivery-sdk-pg-", dir="/tmp" if user else None))
        if user:
            shutil.chown(folder, user)
        cluster = cls(bindir, folder, _free_port(), user)
        try:
            cluster._run("initdb", "-D", str(cluster.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
            cluster._pg_ctl_start()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _run(self, program: str, *args: str) -> None:
        command = [*_run_as(self.user), str(self.bindir / program), *args]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=self.folder)
        except (OSError, subprocess.SubprocessError) as exc:
            raise PostgresUnavailable(f"{program} could not run ({exc}): {INSTALL_HINT}") from exc
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise PostgresUnavailable(
                f"{program} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}\n{log}"
            )

    def _pg_ctl_start(self) -> None:
        options = (
            f"-k {self.folder} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t", "60", "start")

    def restart(self) -> None:
        """Restart the server (``pg_ctl restart -m fast``): every connection is dropped, the data stays."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
        self._pg_ctl_start()

    def stop(self) -> None:
        """Stop the server (immediately: its data is thrown away) and remove the folder."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(PostgresUnavailable):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> ThrowawayCluster:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
