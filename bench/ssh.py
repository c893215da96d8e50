#!/usr/bin/env python3
"""Measures scripts through Cuttle's SSH targets beside ansible and plain OpenSSH; called by
bench/ssh.sh after the release build.

Everything talks to one sshd this script starts on a free port of 127.0.0.1, with a host key of
its own, logging in as a dedicated account without shell start-up files (`cuttlebench`, home
in the run's temporary directory, created with `useradd` when run as root and removed after).

1. Round trip of a one-line script (`echo hi`) as an ad-hoc script task through one SSH
   target: from the POST to seeing `IsCompleted` (the same client as bench/agents.py), beside
   `bash -c 'echo hi'` spawned from Python and `ssh -S … 'echo hi'` over an already-open
   OpenSSH ControlMaster connection, in turn, 200 rounds.
2. Fan-out of one `echo hi` to 1, 10 and 50 targets, median of 3 runs each:
   - Cuttle, the targets sharing one login (Cuttle pools their connections; on the target
     they share one executor root, and each target takes an isolation mutex of its own, so
     their scripts run side by side);
   - Cuttle, with a login user of its own per target (`cuttlebench00`…, each with its own
     home, so its own connections and executor: what 50 separate hosts are). The binary is
     hard-linked into each home beforehand, so the run does not copy our 140 MB binary 50
     times (the one-login targets get it uploaded once, by the health check the server runs
     on new targets);
   - ansible-core (from PyPI, in a virtual environment this script makes) with an inventory of
     50 aliases of 127.0.0.1 and that port, the `raw` module, `--forks 50`, host key checking
     off, its default ControlPersist connection sharing;
   - plain `ssh` over N already-open ControlMaster connections, all at once: the floor.

Every process is started in its own process group and stopped on the way out. Writes
bench/results/<date>-ssh.md and prints it.
"""
import argparse
import datetime
import os
import pwd
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agents  # noqa: E402  (the shared server, API and statistics helpers)
from agents import BenchError, Processes, Server, load_average, machine, run_task, summary, time_spawn, verdict  # noqa: E402

ROOT = agents.ROOT
SCRIPT = agents.SCRIPT
BENCH_USER = "cuttlebench"
# The login users standing for separate hosts: cuttlebench00, cuttlebench01…
HOST_USER_PREFIX = "cuttlebench"
SSHD = "/usr/sbin/sshd"


# ---------------------------------------------------------------------------------------------
# The login account and sshd


class BenchAccount:
    """The account the targets log in as: no dotfiles, so a login costs no shell start-up."""

    def __init__(self, work):
        self.home = os.path.join(work, "home")
        self.created = False
        if os.geteuid() == 0:
            # The run's directory is 0700; the account must reach its home inside it.
            os.chmod(work, 0o755)
            os.makedirs(self.home)
            try:
                pwd.getpwnam(BENCH_USER)
                # Left by an interrupted run (`--force`: even with a session still open).
                subprocess.run(["userdel", "--force", BENCH_USER], check=True)
            except KeyError:
                pass
            # `-p '*'`: no password, but not locked (sshd refuses keys for a locked account
            # when it runs without PAM).
            subprocess.run(["useradd", "--system", "-M", "-d", self.home, "-s", "/bin/bash", "-p", "*",
                            BENCH_USER], check=True)
            self.created = True
            entry = pwd.getpwnam(BENCH_USER)
            os.chown(self.home, entry.pw_uid, entry.pw_gid)
            self.username = BENCH_USER
        else:
            self.username = pwd.getpwuid(os.geteuid()).pw_name
            self.home = os.path.expanduser("~")
            print(f"warning: not root, logging in as {self.username}, whose shell start-up files run on each "
                  "login", file=sys.stderr)
        self.dotfiles = sorted(name for name in os.listdir(self.home) if name.startswith("."))

    def remove(self):
        if self.created:
            # `--force`: sshd's session processes may outlive the connections by a moment.
            subprocess.run(["userdel", "--force", BENCH_USER], check=False)


class HostUsers:
    """One login user per target, each with a home of its own holding the server's binary
    (hard-linked, as if uploaded): what separate hosts are to the server."""

    def __init__(self, work, count, binary):
        self.names = []
        if os.geteuid() != 0:
            return
        remote_name = "cuttle-" + sha256_of(binary)[:16]
        homes = os.path.join(work, "homes")
        os.makedirs(homes)
        for index in range(count):
            name = f"{HOST_USER_PREFIX}{index:02d}"
            home = os.path.join(homes, name)
            try:
                pwd.getpwnam(name)
                subprocess.run(["userdel", "--force", name], check=True)
            except KeyError:
                pass
            subprocess.run(["useradd", "--system", "-M", "-d", home, "-s", "/bin/bash", "-p", "*", name],
                           check=True)
            self.names.append(name)
            entry = pwd.getpwnam(name)
            bin_directory = os.path.join(home, ".cuttle", "bin")
            os.makedirs(bin_directory)
            os.link(binary, os.path.join(bin_directory, remote_name))
            for directory in (home, os.path.join(home, ".cuttle"), bin_directory):
                os.chown(directory, entry.pw_uid, entry.pw_gid)

    def remove(self):
        for name in self.names:
            subprocess.run(["userdel", "--force", name], check=False)


def sha256_of(path):
    import hashlib
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def generate_key(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "cuttle-bench", "-f", path], check=True)


def fingerprint_of(public_key):
    return subprocess.run(["ssh-keygen", "-lf", public_key], check=True, capture_output=True,
                          text=True).stdout.split()[1]


class Sshd:
    def __init__(self, processes, work, max_sessions):
        self.directory = os.path.join(work, "sshd")
        os.makedirs(self.directory)
        host_key = os.path.join(self.directory, "host_key")
        self.client_key = os.path.join(self.directory, "client_key")
        generate_key(host_key)
        generate_key(self.client_key)
        shutil.copy(self.client_key + ".pub", os.path.join(self.directory, "authorized_keys"))
        os.chmod(os.path.join(self.directory, "authorized_keys"), 0o644)
        os.chmod(self.directory, 0o755)
        self.fingerprint = fingerprint_of(host_key + ".pub")
        os.makedirs("/run/sshd", exist_ok=True)
        for _attempt in range(5):
            self.port = agents.PORTS.take()
            config = os.path.join(self.directory, "sshd_config")
            with open(config, "w") as file:
                file.write(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {self.directory}/sshd.pid
AuthorizedKeysFile {self.directory}/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxSessions {max_sessions}
MaxStartups 500
Subsystem sftp internal-sftp
LogLevel ERROR
""")
            self.process = processes.spawn([SSHD, "-D", "-e", "-f", config], self.directory, "sshd")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        return
                except OSError:
                    time.sleep(0.02)
            processes.stop([self.process])
        raise BenchError(f"sshd did not start:\n{agents.tail(self.process.stderr_path)}")


def ssh_options(sshd, username):
    return ["-i", sshd.client_key, "-p", str(sshd.port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-l", username]


class ControlMasters:
    """N OpenSSH connections kept open (`ssh -M -N`), each with its control socket."""

    def __init__(self, processes, work, sshd, username, count):
        self.directory = os.path.join(work, "cm")
        os.makedirs(self.directory, exist_ok=True)
        self.sshd, self.username = sshd, username
        self.sockets = [os.path.join(self.directory, f"{index}") for index in range(count)]
        self.processes = [processes.spawn(["ssh", "-M", "-N", "-S", socket] + ssh_options(sshd, username)
                                          + ["127.0.0.1"], self.directory, f"master-{index}")
                          for index, socket in enumerate(self.sockets)]
        deadline = time.monotonic() + 60
        for socket, process in zip(self.sockets, self.processes):
            while subprocess.run(["ssh", "-S", socket, "-O", "check", "127.0.0.1"], capture_output=True).returncode:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"ssh master {socket} did not start:\n{agents.tail(process.stderr_path)}")
                time.sleep(0.02)

    def command(self, index):
        return ["ssh", "-S", self.sockets[index]] + ssh_options(self.sshd, self.username) + ["127.0.0.1", SCRIPT]

    def fan_out(self, count):
        started = time.perf_counter()
        running = [subprocess.Popen(self.command(index), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL) for index in range(count)]
        outputs = [process.communicate(timeout=60) for process in running]
        elapsed = (time.perf_counter() - started) * 1000
        failed = [(process.returncode, error) for process, (out, error) in zip(running, outputs)
                  if process.returncode or out.strip() != b"hi"]
        if failed:
            raise BenchError(f"{len(failed)} ssh runs failed: {failed[0]}")
        return elapsed


# ---------------------------------------------------------------------------------------------
# ansible


class Ansible:
    def __init__(self, work, venv, sshd, username, count):
        self.directory = os.path.join(work, "ansible")
        os.makedirs(self.directory)
        self.binary = os.path.join(venv, "bin", "ansible")
        if not os.access(self.binary, os.X_OK):
            print(f"installing ansible-core into {venv}…", flush=True)
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
            subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "ansible-core"], check=True)
        # An empty configuration of our own: nothing from /etc/ansible or the home directory.
        with open(os.path.join(self.directory, "ansible.cfg"), "w") as file:
            file.write("[defaults]\n")
        self.version = subprocess.run([self.binary, "--version"], capture_output=True, text=True,
                                      env=self.environment()).stdout.splitlines()[0]
        self.inventory = os.path.join(self.directory, "inventory.ini")
        with open(self.inventory, "w") as file:
            file.write("[all:vars]\n")
            file.write(f"ansible_host=127.0.0.1\nansible_port={sshd.port}\nansible_user={username}\n")
            file.write(f"ansible_ssh_private_key_file={sshd.client_key}\n")
            file.write("ansible_ssh_common_args='-o UserKnownHostsFile=/dev/null'\n\n")
            file.write("[bench]\n")
            for index in range(count):
                file.write(f"bench-{index:03d}\n")

    def environment(self):
        return dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_CONFIG=os.path.join(self.directory, "ansible.cfg"),
                    ANSIBLE_LOCAL_TEMP=os.path.join(self.directory, "tmp"),
                    ANSIBLE_SSH_CONTROL_PATH_DIR=os.path.join(self.directory, "cp"),
                    ANSIBLE_NOCOLOR="1", LC_ALL="C.UTF-8", LANG="C.UTF-8")

    def command(self, count):
        return [self.binary, "-i", self.inventory, f"bench[0:{count - 1}]", "-m", "raw", "-a", SCRIPT,
                "--forks", "50"]

    def run(self, count):
        started = time.perf_counter()
        result = subprocess.run(self.command(count), capture_output=True, text=True, env=self.environment(),
                                timeout=600)
        elapsed = (time.perf_counter() - started) * 1000
        ok = result.stdout.count("| CHANGED | rc=0")
        if result.returncode or ok != count:
            raise BenchError(f"ansible: rc {result.returncode}, {ok} of {count} hosts ok:\n"
                             f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
        return elapsed


# ---------------------------------------------------------------------------------------------
# Cuttle


def add_targets(server, sshd, username, count, prefix, shared_account, usernames=None):
    """Registers `count` SSH targets on the sshd; returns their machine ids. With `usernames`,
    target i logs in as usernames[i], with an account of its own."""
    with open(sshd.client_key) as file:
        key = file.read()
    environment = server.api.call("GET", f"/api/Spaces-1/environments?name={agents.ENVIRONMENT}")["Items"][0]["Id"]

    def account(name, login):
        return server.api.call("POST", "/api/Spaces-1/accounts", {
            "Name": name, "AccountType": "SshKeyPair", "Username": login,
            "PrivateKeyFile": {"NewValue": key}})["Id"]

    shared = account(f"{prefix} account", username) if shared_account else None
    ids = []
    for index in range(count):
        login = usernames[index] if usernames else username
        account_id = shared or account(f"{prefix} account {index:03d}", login)
        ids.append(server.api.call("POST", "/api/Spaces-1/machines", {
            "Name": f"{prefix}-{index:03d}", "EnvironmentIds": [environment], "Roles": [prefix],
            "Endpoint": {"CommunicationStyle": "Ssh", "Host": "127.0.0.1", "Port": sshd.port,
                         "AccountId": account_id, "Fingerprint": sshd.fingerprint}})["Id"])
    return ids


def fan_out(measure, sizes, repeats):
    """{size: [ms of each run]}: `measure(size)` `repeats` times per size."""
    return {size: [measure(size) for _ in range(repeats)] for size in sizes}


# ---------------------------------------------------------------------------------------------
# Report


def seconds(values):
    return f"{statistics.median(values) / 1000:.3f}"


def write_report(arguments, figures, command):
    f = figures
    rt = f["round_trip"]
    lines = [
        f"# SSH targets benchmark, {datetime.date.today().isoformat()}",
        "",
        f"Machine: {machine()}. Load average at start / end: {f['load_start']} / {f['load_end']}",
        "(the cores are shared with whatever else runs on the machine). Binary: "
        f"`{arguments.cuttle}`{f' built from {arguments.revision}' if arguments.revision else ''}; SQLite store.",
        f"One OpenSSH sshd ({f['sshd_version']}) on 127.0.0.1, `MaxSessions {arguments.max_sessions}`,",
        f"`MaxStartups 500`; every login is `{f['username']}` (dotfiles in its home: "
        f"{', '.join(f['dotfiles']) or 'none'}), with an ed25519 key. {f['ansible_version']}.",
        "",
        f"Command: `{command}`",
        "",
        "## 1. Round trip of `echo hi`",
        "",
        f"{arguments.runs} rounds after {arguments.warmup} warm-up rounds, each row once per round in turn. Cuttle:",
        "`POST /api/Spaces-1/tasks` (`AdHocScript`, one SSH target) to the first `GET /api/tasks/{id}`",
        "answering `IsCompleted: true` (polled every 2 ms); *server* is the task's QueueTime →",
        "CompletedTime. The binary is on the target already (uploaded by the health check the server",
        "runs on a new target) and the connection is open (warm-up rounds).",
        "",
        "| Path | p50 ms | p99 ms | Server p50 ms | Server p99 ms |",
        "| --- | --- | --- | --- | --- |",
        f"| bare `bash -c 'echo hi'` (Python subprocess) | {rt['bare']['p50']:.1f} | {rt['bare']['p99']:.1f} | | |",
        f"| `ssh -S … 'echo hi'` over an open ControlMaster connection | {rt['ssh']['p50']:.1f} "
        f"| {rt['ssh']['p99']:.1f} | | |",
        f"| Cuttle, SSH target | {rt['cuttle']['client']['p50']:.1f} | {rt['cuttle']['client']['p99']:.1f} "
        f"| {rt['cuttle']['server']['p50']:.1f} | {rt['cuttle']['server']['p99']:.1f} |",
    ]
    if "ansible" in rt:
        lines.append(f"| ansible `raw`, one host ({rt['ansible']['n']} runs, its ControlPersist connection warm) "
                     f"| {rt['ansible']['p50']:.1f} | {rt['ansible']['p99']:.1f} | | |")
    lines += [
        "",
        "## 2. Fan-out: one `echo hi` to N targets",
        "",
        f"Wall time, median of {arguments.repeats} runs (every run listed, seconds). Cuttle: POST to `IsCompleted`;",
        "ansible and ssh: the command's (or the N commands') start to exit. Each Cuttle row follows",
        "one warm-up run to all its targets (the connections are open, as on a server that runs",
        "scripts often); the ansible rows include ansible's own start (a Python program) and use",
        "its ControlPersist sockets left by the earlier runs.",
        "",
        "| Targets | Path | Median s | Runs s | Target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, label in [("cuttle_shared", "Cuttle, one login for all (an isolation mutex per target)"),
                       ("cuttle_separate", "Cuttle, a login user per target (as separate hosts)"),
                       ("ansible", f"ansible `raw`, `--forks 50`"),
                       ("ssh", "`ssh` over N open ControlMaster connections")]:
        if key not in f["fan_out"]:
            continue
        for size, runs in f["fan_out"][key].items():
            target = ""
            if key in ("cuttle_shared", "cuttle_separate") and size == 50:
                target = f"≤ 0.7 s: {verdict(statistics.median(runs) <= 700)}"
            lines.append(f"| {size} | {label} | {seconds(runs)} | {', '.join(f'{v / 1000:.3f}' for v in runs)} "
                         f"| {target} |")
    if "cold" in f:
        lines += ["", "First runs (new connections, the binary checked): "
                  + "; ".join(f"{label}: {value / 1000:.3f} s" for label, value in f["cold"].items()) + "."]
    lines += [
        "",
        "### What a script costs",
        "",
        "What the code does for one script on an SSH target (crates/cuttle-ssh/src/transport.rs,",
        "connection.rs; crates/cuttle/src/exec.rs; crates/cuttle-exec):",
        "",
        "- one channel on a pooled connection, authenticated once (a pool per host, port, account",
        "  and fingerprint; up to 10 channels per connection, then another connection); the binary's",
        "  presence is checked over SFTP once per pool, and the local binary hashed once per server;",
        "- sshd starts the login shell with `cuttle exec` (one session, one process per script); the",
        "  request goes on its standard input; the executor prepares the ticket as an agent's does",
        "  (its files fsynced), runs the bash bootstrap, and the lines and the result come back on",
        "  the channel, so the server's status polls are answered from memory;",
        "- once the server has saved the result it sends `complete` on the same channel, and",
        "  `cuttle exec` deletes the ticket and exits: no second session.",
        "",
        "The one-login rows: every target logs in as the same user, so every script lands in the",
        "same executor, whose isolation mutex (full isolation, one per machine, as Tentacle's) runs",
        "one at a time: 50 targets there are 50 scripts in a row (waiters retry every 10 ms), not a",
        "fan-out. The per-target users stand for 50 hosts: nothing is shared but the sshd and the",
        "machine's two cores, which every row's processes (sshd sessions, `cuttle exec`, bash, the",
        "server) share.",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuttle", default=os.path.join(ROOT, "target", "release", "cuttle"),
                        help="the cuttle binary (default: target/release/cuttle)")
    parser.add_argument("--runs", type=int, default=200, help="round trips per path (default 200)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up round trips per path (default 5)")
    parser.add_argument("--ansible-runs", type=int, default=20,
                        help="single-host ansible round trips (default 20; 0: skip)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per fan-out size (default 3)")
    parser.add_argument("--fan-out", default="1,10,50", help="fan-out sizes (default 1,10,50)")
    parser.add_argument("--max-sessions", type=int, default=64,
                        help="sshd's MaxSessions (default 64: ansible multiplexes every alias on one connection)")
    parser.add_argument("--ansible-venv", default=os.path.join(tempfile.gettempdir(), "cuttle-bench-ansible"),
                        help="where ansible-core is installed (made when missing)")
    parser.add_argument("--no-ansible", action="store_true", help="skip ansible")
    parser.add_argument("--output", help="the result file (default bench/results/<date>-ssh.md)")
    parser.add_argument("--command", help="the command to record in the result file")
    parser.add_argument("--revision", help="the source the binary was built from, to record")
    arguments = parser.parse_args()
    arguments.cuttle = os.path.abspath(arguments.cuttle)
    sizes = sorted(int(size) for size in arguments.fan_out.split(","))
    largest = sizes[-1]
    if not os.access(arguments.cuttle, os.X_OK):
        sys.exit(f"no cuttle binary at {arguments.cuttle}; build it first (bash bench/ssh.sh does)")
    if not os.access(SSHD, os.X_OK):
        sys.exit(f"{SSHD} is missing: install openssh-server and openssh-client")
    command = arguments.command or shlex.join(["python3", "bench/ssh.py"] + sys.argv[1:])
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda number, frame: sys.exit(128 + number))

    figures = {"load_start": load_average(), "fan_out": {}, "cold": {}}
    figures["sshd_version"] = subprocess.run([SSHD, "-V"], capture_output=True, text=True).stderr.strip() \
        or subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    processes = Processes()
    with tempfile.TemporaryDirectory(prefix="cuttle-bench-ssh-") as work:
        account = BenchAccount(work)
        host_users = None
        try:
            host_users = HostUsers(work, largest, arguments.cuttle)
            figures["username"], figures["dotfiles"] = account.username, account.dotfiles
            sshd = Sshd(processes, work, arguments.max_sessions)
            ansible = None
            if not arguments.no_ansible:
                ansible = Ansible(work, arguments.ansible_venv, sshd, account.username, largest)
                figures["ansible_version"] = ansible.version
            else:
                figures["ansible_version"] = "ansible not run"
            masters = ControlMasters(processes, work, sshd, account.username, largest)

            server = Server(arguments.cuttle, processes, work, "server")
            try:
                single, = add_targets(server, sshd, account.username, 1, "rt", shared_account=True)
                server.wait_idle()
                print(f"round trips: {arguments.runs} rounds…", flush=True)
                bare, ssh, cuttle = [], [], []
                for round_number in range(arguments.warmup + arguments.runs):
                    results = (time_spawn(["bash", "-c", SCRIPT]), time_spawn(masters.command(0)),
                               run_task(server.api, [single]))
                    if round_number >= arguments.warmup:
                        bare.append(results[0])
                        ssh.append(results[1])
                        cuttle.append(results[2])
                figures["round_trip"] = {
                    "bare": summary(bare), "ssh": summary(ssh),
                    "cuttle": {"client": summary([run["client"] for run in cuttle]),
                               "server": summary([run["server"] for run in cuttle])}}
                if ansible and arguments.ansible_runs:
                    print(f"ansible round trips: {arguments.ansible_runs}…", flush=True)
                    ansible.run(1)
                    figures["round_trip"]["ansible"] = summary([ansible.run(1) for _ in range(arguments.ansible_runs)])

                for key, shared in [("cuttle_shared", True), ("cuttle_separate", False)]:
                    if key == "cuttle_separate" and not host_users.names:
                        continue
                    print(f"fan-out: {key}…", flush=True)
                    ids = add_targets(server, sshd, account.username, largest, key.replace("_", "-"), shared,
                                      usernames=None if shared else host_users.names)
                    server.wait_idle()
                    figures["cold"][key] = run_task(server.api, ids, timeout=300)["client"]
                    figures["fan_out"][key] = fan_out(
                        lambda size, ids=ids: run_task(server.api, ids[:size], timeout=300)["client"],
                        sizes, arguments.repeats)
            finally:
                server.stop()

            if ansible:
                print("fan-out: ansible…", flush=True)
                figures["cold"]["ansible"] = ansible.run(largest)
                figures["fan_out"]["ansible"] = fan_out(ansible.run, sizes, arguments.repeats)
            print("fan-out: ssh…", flush=True)
            figures["fan_out"]["ssh"] = fan_out(masters.fan_out, sizes, arguments.repeats)
        finally:
            processes.stop()
            account.remove()
            if host_users:
                host_users.remove()
    figures["load_end"] = load_average()

    report = write_report(arguments, figures, command)
    path = arguments.output or os.path.join(ROOT, "bench", "results", f"{datetime.date.today().isoformat()}-ssh.md")
    with open(path, "w") as file:
        file.write(report)
    print(report)


if __name__ == "__main__":
    main()
