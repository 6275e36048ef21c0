"""A real single-node SLURM cluster for the integration test (tests/test_slurm_integration.py).

Brings up munge, MariaDB, slurmdbd, slurmctld and slurmd from Debian's packages (``tests/slurm/install.sh``)
as plain child processes in one temporary folder: no systemd, no files outside that folder, free TCP ports
picked at start-up, one node with this machine's CPUs and memory, two partitions (``cpu`` and ``gpu``), two
fake GPUs declared as GRES through character devices (so that one GPU job need not wait for another), and
accounting (``sacct``, the executor plugin's status command) with one account. :meth:`SlurmCluster.stop`
cancels the cluster's jobs and stops exactly the processes it started. Also runnable by hand:
``python tests/slurm_cluster.py`` keeps a cluster up until Ctrl-C and prints the ``SLURM_CONF`` to export.
"""

from __future__ import annotations

import ctypes
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from string import Template

TEMPLATES = Path(__file__).resolve().parent / "slurm"
PACKAGES = ("slurmctld", "slurmd", "slurmdbd", "slurm-client", "munge", "mariadb-server")
DAEMONS = {  # executable: the Debian package that ships it
    "munged": "munge",
    "mariadbd": "mariadb-server",
    "mariadb-install-db": "mariadb-server",
    "slurmdbd": "slurmdbd",
    "slurmctld": "slurmctld",
    "slurmd": "slurmd",
    "sbatch": "slurm-client",
    "sacct": "slurm-client",
    "sacctmgr": "slurm-client",
    "srun": "slurm-client",
}
SBIN = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")


class ClusterUnavailable(RuntimeError):
    """The cluster cannot be started here; the message says why (the test skips with it)."""


def _which(name: str) -> str | None:
    return shutil.which(name) or next(
        (f"{d}/{name}" for d in SBIN if os.access(f"{d}/{name}", os.X_OK)), None
    )


def unavailable_reason() -> str | None:
    """Why no cluster can be started on this machine, or None when it can be tried."""
    if not sys.platform.startswith("linux"):
        return f"a real SLURM cluster needs Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "starting SLURM daemons needs root (slurmd runs jobs as their users); run the test as root"
    missing = sorted({pkg for exe, pkg in DAEMONS.items() if _which(exe) is None})
    if missing:
        return (
            f"Debian packages missing: {' '.join(missing)} (install them with `tests/slurm/install.sh`, "
            "as root; CI does)"
        )
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the test process dies (no daemon outlives a killed pytest)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"({path} not written)"
    return "\n".join(text[-lines:])


class SlurmCluster:
    """One single-node cluster in ``root`` (a new temporary folder by default)."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        cluster: str = "prefixtune",
        account: str = "prefixtune",
        cpu_partition: str = "cpu",
        gpu_partition: str = "gpu",
        gpus: int = 2,
    ) -> None:
        # short: munge's and MariaDB's Unix sockets live here (paths are limited to 107 bytes)
        self.root = Path(root or tempfile.mkdtemp(prefix="slurm-", dir="/tmp"))
        self.cluster, self.account = cluster, account
        self.cpu_partition, self.gpu_partition, self.gpus = cpu_partition, gpu_partition, gpus
        self.host = socket.gethostname().split(".")[0]
        self.user = "root"
        self.processes: dict[str, subprocess.Popen] = {}  # exactly what this object started, in start order
        self.logs = self.root / "log"
        self.conf = self.root / "slurm.conf"

    # -- environment --------------------------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """The environment for SLURM commands (and snakemake) that talk to this cluster."""
        path = os.environ.get("PATH", "")
        for d in ("/usr/sbin", "/usr/bin"):
            if d not in path.split(":"):
                path = f"{path}:{d}"
        path = f"{self.root / 'bin'}:{path}"
        return {**os.environ, "SLURM_CONF": str(self.conf), "USER": self.user, "PATH": path}

    def run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """A SLURM client command against this cluster."""
        result = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed ({result.returncode}): {result.stderr or result.stdout}"
            )
        return result

    # -- start --------------------------------------------------------------------------------------------------
    def start(self, timeout: float = 90) -> SlurmCluster:
        """Start every daemon and create the account; raises :class:`ClusterUnavailable` with the log tail."""
        reason = unavailable_reason()
        if reason:
            raise ClusterUnavailable(reason)
        try:
            self._start(timeout)
        except ClusterUnavailable:
            self.stop()
            raise
        except Exception as e:  # noqa: BLE001 - any start-up error becomes a skip reason with the logs
            tails = self.log_tails()
            self.stop()
            raise ClusterUnavailable(f"SLURM did not start: {e!r}\n{tails}") from e
        return self

    def _start(self, timeout: float) -> None:
        for sub in ("log", "ctld", "slurmd", "db", "munge"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        os.chmod(self.root / "munge", 0o700)
        self._write_srun_shim()
        values = self._values()
        self._start_munge(values, timeout)
        self._start_mariadb(values, timeout)
        for name in ("slurm.conf", "slurmdbd.conf", "gres.conf"):
            text = Template((TEMPLATES / f"{name}.in").read_text()).substitute(values)
            (self.root / name).write_text(text)
        os.chmod(self.root / "slurmdbd.conf", 0o600)  # slurmdbd refuses a readable file (it holds a password)
        self._spawn("slurmdbd", [_which("slurmdbd"), "-D"])
        self._wait(
            "slurmdbd",
            lambda: self.run("sacctmgr", "-n", "list", "cluster", check=False).returncode == 0,
            timeout,
        )
        self.run("sacctmgr", "-i", "add", "cluster", self.cluster)
        self.run(
            "sacctmgr",
            "-i",
            "add",
            "account",
            self.account,
            f"Cluster={self.cluster}",
            "Description=integration test",
            "Organization=prefixtune",
        )
        self.run(
            "sacctmgr",
            "-i",
            "add",
            "user",
            self.user,
            f"Account={self.account}",
            f"DefaultAccount={self.account}",
            f"Cluster={self.cluster}",
        )
        self._spawn("slurmctld", [_which("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._wait("slurmctld", lambda: "UP" in self.run("scontrol", "ping", check=False).stdout, timeout)
        self._spawn("slurmd", [_which("slurmd"), "-D", "-f", str(self.conf), "-N", self.host])
        self._wait("slurmd", self._node_idle, timeout)

    def _write_srun_shim(self) -> None:
        """``srun`` that finds this cluster's slurm.conf. A real cluster keeps it where SLURM looks by default
        (/etc/slurm, or slurmd's configless cache); this one is reached through ``SLURM_CONF`` only, which the
        executor's job step (snakemake-executor-plugin-slurm-jobstep 0.6.1) removes from the environment of the
        ``srun`` it runs inside the job."""
        shim = self.root / "bin" / "srun"
        shim.parent.mkdir(exist_ok=True)
        shim.write_text(f'#!/bin/sh\nSLURM_CONF="${{SLURM_CONF:-{self.conf}}}" exec {_which("srun")} "$@"\n')
        shim.chmod(0o755)

    def _values(self) -> dict[str, str]:
        probe = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True, timeout=30).stdout
        hw = dict(re.findall(r"(\w+)=(\S+)", probe.splitlines()[0] if probe else ""))
        if "CPUs" not in hw:
            raise ClusterUnavailable(f"`slurmd -C` did not describe this node: {probe!r}")
        for i in range(self.gpus):
            device = self.root / f"fakegpu{i}"
            try:  # a character device with /dev/null's numbers: slurmd only needs the file to exist
                os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
            except OSError:  # no CAP_MKNOD (some containers): a link to /dev/null is a character device too
                device.symlink_to("/dev/null")
        return {
            "cluster": self.cluster,
            "host": self.host,
            "root": str(self.root),
            "ctld_port": str(_free_port()),
            "slurmd_port": str(_free_port()),
            "dbd_port": str(_free_port()),
            "db_port": str(_free_port()),
            "db_password": secrets.token_hex(8),
            "munge_socket": str(self.root / "munge" / "munge.socket"),
            "cpus": hw["CPUs"],
            "boards": hw.get("Boards", "1"),
            "sockets": hw.get("SocketsPerBoard", "1"),
            "cores": hw.get("CoresPerSocket", hw["CPUs"]),
            "threads": hw.get("ThreadsPerCore", "1"),
            "memory": str(int(int(hw.get("RealMemory", "4000")) * 0.9)),  # leave some to the daemons
            "cpu_partition": self.cpu_partition,
            "gpu_partition": self.gpu_partition,
            "gpus": str(self.gpus),
            "gpu_devices": f"{self.root}/fakegpu[0-{self.gpus - 1}]",
        }

    def _start_munge(self, v: dict[str, str], timeout: float) -> None:
        key = self.root / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        os.chmod(key, 0o400)
        munge = self.root / "munge"
        self._spawn(
            "munged",
            [
                _which("munged"),
                "-F",
                "--force",
                f"--socket={v['munge_socket']}",
                f"--key-file={key}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--seed-file={munge / 'munged.seed'}",
                f"--log-file={self.logs / 'munged.log'}",
            ],
        )
        self._wait("munged", lambda: Path(v["munge_socket"]).exists(), timeout)

    def _start_mariadb(self, v: dict[str, str], timeout: float) -> None:
        data, sock = self.root / "db", self.root / "mysqld.sock"
        init = subprocess.run(
            [
                _which("mariadb-install-db"),
                "--no-defaults",
                f"--datadir={data}",
                "--user=root",
                "--skip-test-db",
                "--auth-root-authentication-method=socket",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if init.returncode != 0:
            raise ClusterUnavailable(f"mariadb-install-db failed: {init.stdout[-1500:]}{init.stderr[-1500:]}")
        self._spawn(
            "mariadbd",
            [
                _which("mariadbd"),
                "--no-defaults",
                f"--datadir={data}",
                f"--socket={sock}",
                f"--port={v['db_port']}",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                f"--pid-file={self.root / 'mysqld.pid'}",
                f"--log-error={self.logs / 'mariadb.log'}",
                "--user=root",
                "--innodb-buffer-pool-size=64M",
                "--innodb-lock-wait-timeout=900",
                "--skip-log-bin",
            ],
        )
        client = _which("mariadb") or _which("mysql")
        ping = [client, "--no-defaults", f"--socket={sock}", "-u", "root", "-e", "SELECT 1"]
        self._wait("mariadbd", lambda: subprocess.run(ping, capture_output=True).returncode == 0, timeout)
        sql = (
            f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{v['db_password']}';"
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
        )
        subprocess.run([*ping[:-1], sql], check=True, capture_output=True, timeout=60)

    def _spawn(self, name: str, argv: list[str]) -> None:
        out = open(self.logs / f"{name}.out", "w")  # noqa: SIM115 - the daemon's stdout/stderr, closed on stop
        env = {**self.env, "SLURM_CONF": str(self.conf)}
        self.processes[name] = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.root, preexec_fn=_die_with_parent
        )

    def _wait(self, name: str, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise ClusterUnavailable(
                    f"{name} exited with code {self.processes[name].returncode} at start-up\n{self.log_tails()}"
                )
            if ready():
                return
            time.sleep(0.5)
        raise ClusterUnavailable(f"{name} not ready after {timeout:.0f} s\n{self.log_tails()}")

    def _node_idle(self) -> bool:
        state = self.run("sinfo", "-h", "-N", "-o", "%T", check=False).stdout.split()
        return bool(state) and all(s == "idle" for s in state)

    # -- stop ---------------------------------------------------------------------------------------------------
    def stop(self, keep_files: bool = False) -> None:
        """Cancel this cluster's jobs, then stop the processes this object started (newest first)."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            self.run("scancel", f"--user={self.user}", check=False)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self.run("squeue", "-h", check=False).stdout.strip():
                time.sleep(1)
        for proc in reversed(list(self.processes.values())):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
            if proc.stdout:
                proc.stdout.close()
        self.processes.clear()
        if not keep_files:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- inspection ---------------------------------------------------------------------------------------------
    def log_tails(self, lines: int = 25) -> str:
        """The last lines of every daemon's log (for skip reasons and failed tests)."""
        parts = []
        for path in sorted(self.logs.glob("*")) if self.logs.is_dir() else []:
            parts.append(f"--- {path.name} ---\n{_tail(path, lines)}")
        return "\n".join(parts)

    def sacct(self, *fields: str, job: str | None = None) -> list[dict[str, str]]:
        """Accounting records (allocations only) of this cluster's jobs, one dict per job."""
        args = ["sacct", "-X", "-n", "-P", "-a", "-o", ",".join(fields)]
        if job:
            args += ["-j", job]
        out = self.run(*args).stdout
        return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line]

    def jobs(self) -> list[dict[str, str]]:
        """Queued and running jobs: id, state and comment (the plugin writes the rule and wildcards there)."""
        out = self.run("squeue", "-h", "-o", "%i|%T|%k").stdout
        return [dict(zip(("id", "state", "comment"), line.split("|"))) for line in out.splitlines() if line]


def _main() -> None:
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM):  # also where a background shell ignores SIGINT
        signal.signal(signum, stop)
    cluster = SlurmCluster().start()
    print(f"export SLURM_CONF={cluster.conf}   # Ctrl-C stops the cluster", flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()


if __name__ == "__main__":
    _main()
