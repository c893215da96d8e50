#!/usr/bin/env python3
"""Measures scripts through Cuttle's agents; called by bench/agents.sh after the release build.

1. Round trip of a one-line script (`echo hi`) as an ad-hoc script task through the built-in
   worker, one listening agent and one polling agent: client-side from the POST to seeing
   `IsCompleted` (polling `GET /api/tasks/{id}` every 2 ms) and the task's own QueueTime to
   CompletedTime, beside `bash -c 'echo hi'` and cuttle-exec's bash bootstrap spawned from
   Python the same number of times, in turn. Each run's raw log splits the server's time into
   phases; the same round trips with every data directory on tmpfs show what fsync costs, and
   a few more under `perf trace` time the steps inside the executor (skipped without perf).
2. Fan-out of one ad-hoc script to 1, 10 and 50 listening agents, then polling agents, each a
   `cuttle agent run` process with its own home: POST to `IsCompleted`, median of 3, with
   the CPU time the server, the agents and the machine spent on each run.
3. Idle RSS of one agent, and the server's RSS with 200 connected polling agents.

Everything listens on 127.0.0.1. Every process is started in its own process group and killed
on the way out, also on failure. Writes bench/results/<date>-agents.md and prints it.
"""
import argparse
import concurrent.futures
import datetime
import http.client
import json
import math
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
API_KEY = "API-AGENTBENCHAGENTBENCHAGENTBENCH01"
SCRIPT = "echo hi"
ENVIRONMENT = "Bench"


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# Processes


class Processes:
    """Every process this run started, each in a process group of its own."""

    def __init__(self):
        self.running = []

    def spawn(self, command, directory, name, environment=None):
        stdout_path = os.path.join(directory, f"{name}.stdout")
        stderr_path = os.path.join(directory, f"{name}.stderr")
        with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(command, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                       env=environment, start_new_session=True)
        process.stdout_path, process.stderr_path = stdout_path, stderr_path
        self.running.append(process)
        return process

    def stop(self, processes=None, grace=10.0):
        """SIGTERM to each group, SIGKILL to what is left after `grace` seconds."""
        targets = list(self.running if processes is None else processes)
        for process in targets:
            signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in targets:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for process in targets:
            # The group too: anything the process started (a script) goes with it.
            signal_group(process, signal.SIGKILL)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                print(f"warning: process {process.pid} did not die", file=sys.stderr)
            if process in self.running:
                self.running.remove(process)


def signal_group(process, signum):
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def tail(path, count=20):
    try:
        with open(path, errors="replace") as file:
            return "".join(file.readlines()[-count:])
    except OSError:
        return ""


def wait_for_lines(processes, pattern, timeout):
    """Waits until each process' stdout matches `pattern`; returns the matches, in order."""
    regex = re.compile(pattern)
    found = {}
    deadline = time.monotonic() + timeout
    while len(found) < len(processes):
        for index, process in enumerate(processes):
            if index in found:
                continue
            with open(process.stdout_path, errors="replace") as file:
                match = regex.search(file.read())
            if match:
                found[index] = match
            elif process.poll() is not None:
                raise BenchError(f"{shlex.join(process.args)} exited with {process.returncode} before "
                                 f"printing /{pattern}/:\n{tail(process.stderr_path)}")
        if len(found) < len(processes):
            if time.monotonic() > deadline:
                missing = [index for index in range(len(processes)) if index not in found]
                raise BenchError(f"{len(missing)} processes did not print /{pattern}/ within {timeout} s; "
                                 f"first: {tail(processes[missing[0]].stderr_path)}")
            time.sleep(0.02)
    return [found[index] for index in range(len(processes))]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def ephemeral_ports():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as file:
            low, high = (int(part) for part in file.read().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return low, high


class PortAllocator:
    """Ports for listening agents, below the ephemeral range: a port picked by binding port 0
    is an ephemeral one, which an outgoing connection may take before the agent binds it."""

    def __init__(self):
        low, _ = ephemeral_ports()
        self.next = random.randrange(10000, max(10001, low - 3000))
        self.limit = low

    def take(self):
        while self.next < self.limit:
            port, self.next = self.next, self.next + 1
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
        raise BenchError("no free port below the ephemeral range")


PORTS = PortAllocator()


# ---------------------------------------------------------------------------------------------
# The API


class Api:
    """A keep-alive HTTP/1.1 connection to the server, so tight polling costs one round trip."""

    def __init__(self, port):
        self.port = port
        self.connection = None

    def call(self, method, path, body=None, raw=False):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"X-Octopus-ApiKey": API_KEY}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                if self.connection is None:
                    self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                self.connection.request(method, path, body=data, headers=headers)
                response = self.connection.getresponse()
                payload = response.read()
                break
            except (http.client.HTTPException, OSError):
                self.close()
                # Only reads are retried (a kept-alive connection the server closed); a create
                # is never sent twice.
                if attempt or method != "GET":
                    raise
        if response.status >= 400:
            raise BenchError(f"{method} {path}: {response.status} {payload[:800]!r}")
        if raw:
            return payload.decode("utf-8", errors="replace")
        return json.loads(payload or b"null")

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def milliseconds(start, end):
    return (parse_time(end) - parse_time(start)).total_seconds() * 1000


def run_task(api, machine_ids, poll_interval=0.002, timeout=120.0, script=SCRIPT):
    """POSTs an ad-hoc bash script (`echo hi` unless told) and polls until it is completed.
    Returns the timings."""
    arguments = {"ScriptBody": script, "Syntax": "Bash"}
    if machine_ids:
        arguments["MachineIds"] = list(machine_ids)
    started = time.perf_counter()
    task = api.call("POST", "/api/Spaces-1/tasks", {"Name": "AdHocScript", "Arguments": arguments})
    task_id = task["Id"]
    deadline = started + timeout
    polls = 0
    while not task["IsCompleted"]:
        if time.perf_counter() > deadline:
            raise BenchError(f"{task_id} was not completed within {timeout} s (state {task['State']})")
        time.sleep(poll_interval)
        task = api.call("GET", f"/api/tasks/{task_id}")
        polls += 1
    client_ms = (time.perf_counter() - started) * 1000
    if task["State"] != "Success":
        log = api.call("GET", f"/api/Spaces-1/tasks/{task_id}/raw", raw=True)
        raise BenchError(f"{task_id} ended {task['State']}: {task.get('ErrorMessage')}\n{log[-3000:]}")
    return {
        "id": task_id,
        "client": client_ms,
        "server": milliseconds(task["QueueTime"], task["CompletedTime"]),
        "claim": milliseconds(task["QueueTime"], task["StartTime"]),
        "start": task["StartTime"],
        "completed": task["CompletedTime"],
        "polls": polls,
    }


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\S+)\s+(\w+)\s+(.*)$")


def phases(api, run):
    """Splits a single-target run's server time with its raw log (times are the server's, ms)."""
    log = api.call("GET", f"/api/Spaces-1/tasks/{run['id']}/raw", raw=True)
    running = output = finished = None
    for line in log.splitlines():
        match = LOG_LINE.match(line)
        if not match:
            continue
        time_text, _category, message = match.groups()
        if running is None and message.startswith("Running the script on"):
            running = time_text
        elif output is None and message.strip() == "hi":
            output = time_text
        elif finished is None and message.startswith("The script finished"):
            finished = time_text
    if not (running and output and finished):
        raise BenchError(f"unexpected log for {run['id']}:\n{log[-2000:]}")
    return {
        "claim": run["claim"],
        "setup": milliseconds(run["start"], running),
        "script": milliseconds(running, finished),
        "output_to_finished": milliseconds(output, finished),
        "finish": milliseconds(finished, run["completed"]),
        "client_extra": run["client"] - run["server"],
    }


# ---------------------------------------------------------------------------------------------
# Statistics


def percentile(values, fraction):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summary(values):
    return {"p50": statistics.median(values), "p99": percentile(values, 0.99), "min": min(values),
            "max": max(values), "mean": statistics.fmean(values), "n": len(values)}


# ---------------------------------------------------------------------------------------------
# Baselines


def time_spawn(command, stdin=None, cwd=None):
    started = time.perf_counter()
    result = subprocess.run(command, input=stdin, capture_output=True, cwd=cwd, timeout=30)
    elapsed = (time.perf_counter() - started) * 1000
    if result.returncode != 0 or b"hi" not in result.stdout:
        raise BenchError(f"{command} failed: {result.returncode} {result.stderr[-500:]!r}")
    return elapsed


def bootstrap_spawner(directory):
    """A function spawning cuttle-exec's bash bootstrap (with its helpers) around `echo hi`,
    with four variables on stdin, as the executor launches it: the floor for any transport."""
    source = os.path.join(ROOT, "crates", "cuttle-exec", "src", "bootstrap")
    with open(os.path.join(source, "bash.sh")) as file:
        bootstrap = file.read()
    with open(os.path.join(source, "helpers.sh")) as file:
        bootstrap = bootstrap.replace("#### HELPERS ####", file.read())
    with open(os.path.join(directory, "bootstrap.sh"), "w") as file:
        file.write(bootstrap)
    with open(os.path.join(directory, "script.sh"), "w") as file:
        file.write(SCRIPT + "\n")
    preamble = "".join(f"octopus_parameters['{name}']='{value}'\n" for name, value in [
        ("Octopus.Task.Id", "ServerTasks-1"), ("Octopus.Space.Id", "Spaces-1"),
        ("Octopus.Machine.Id", "Machines-1"), ("Octopus.Machine.Name", "bench")]).encode()
    command = ["bash", "--noprofile", "--norc", "bootstrap.sh", "script.sh"]
    return lambda: time_spawn(command, stdin=preamble, cwd=directory)


# ---------------------------------------------------------------------------------------------
# Timelines inside the executor, with perf trace


TRACED_SYSCALLS = "mkdir,execve,exit_group,fsync,fdatasync,unlinkat"
# "  6038.498 ( 0.391 ms): tokio-rt-worke/2527 fsync(fd: 14)   = 0": time since the trace
# began, duration, thread name/id, the call. A call another event interrupts ends with "..."
# and comes back as "… ( 1.195 ms): name/id  ... [continued]: fsync()) = 0".
PERF_LINE = re.compile(r"^\s*([\d.]+|\?) \(\s*(?:([\d.]+) ms)?\s*\): (.*)/(\d+)\s+(.*)$")


def perf_trace_works():
    if shutil.which("perf") is None:
        return False
    result = subprocess.run(["perf", "trace", "-e", "fsync", "--", "true"], capture_output=True, timeout=30)
    return result.returncode == 0


def perf_wrapper(name, directory):
    """`perf trace` reads the syscalls from tracepoints: the process is never stopped."""
    return ["perf", "trace", "-e", TRACED_SYSCALLS, "-o", os.path.join(directory, f"{name}.perf"), "--"]


def executor_timelines(path):
    """One timeline per ticket, in the order they ran, from the perf trace of a process that
    runs an executor (an agent, or the server with its built-in worker). A ticket's first mkdir
    (its staging directory) is the start call arriving; then bash is executed and exits; the
    ticket's last fsync before the unlinks makes its final state durable; the unlinks are the
    server's complete call, made once its status polling saw the end and it saved progress."""
    runs, current, bash_pid = [], None, None
    with open(path, errors="replace") as file:
        for line in file:
            match = PERF_LINE.match(line)
            if not match or match.group(1) == "?":
                continue
            at, duration, thread, pid, call = match.groups()
            at = float(at)
            end = at + (float(duration) if duration else 0.0)
            continued = call.startswith("... [continued]:")
            name = call.split(":", 1)[1].strip() if continued else call
            if name.startswith("mkdir(") and not continued:
                # A ticket makes two directories within a millisecond or two (staging, then its
                # workspace); the executor's own directories at start come long before.
                if current is None or "unlinked" in current or \
                        ("spawned" not in current and at - current["arrived"] > 50):
                    current = {"arrived": at, "fsyncs": 0}
                    runs.append(current)
                    bash_pid = None
            elif current is None:
                continue
            elif name.startswith("execve(") and bash_pid is None and not continued:
                # The ticket's first execve is the spawned child looking for bash along PATH
                # (the `cat` of `$(cat)` comes later, from another process).
                current["spawned"], bash_pid = at, pid
            elif name.startswith("exit_group(") and pid == bash_pid and "exited" not in current:
                current["exited"] = at
            elif name.startswith(("fsync(", "fdatasync(")):
                if not continued:
                    current["fsyncs"] += 1
                if "exited" in current and "unlinked" not in current:
                    # Its end when perf shows its duration, else its start.
                    current["durable"] = max(current.get("durable", 0.0), end)
            elif name.startswith("unlinkat(") and "exited" in current and "durable" in current \
                    and "unlinked" not in current:
                current["unlinked"] = at
    complete = [run for run in runs if all(key in run for key in ("spawned", "exited", "durable", "unlinked"))]
    return [{
        "prepare": run["spawned"] - run["arrived"],
        "bash": run["exited"] - run["spawned"],
        "finish": run["durable"] - run["exited"],
        "noticed": run["unlinked"] - run["durable"],
        "fsyncs": run["fsyncs"],
    } for run in complete]


def traced_round_trips(cuttle, processes, work, runs, warmup):
    """Worker, listening and polling round trips on a server and agents run under perf trace."""
    server = Server(cuttle, processes, work, "server-traced", wrap=perf_wrapper)
    try:
        listening, = add_agents(server, "traced-listening", 1, polling=False)
        polling, = add_agents(server, "traced-polling", 1, polling=True)
        server.wait_idle()
        paths = {"worker": [], "listening": [listening.machine_id], "polling": [polling.machine_id]}
        figures = round_trips(server.api, paths, runs, warmup)
    finally:
        server.stop()  # perf writes the rest of its file as it ends
    files = {"worker": os.path.join(server.directory, "server.perf"),
             "listening": os.path.join(listening.home, "agent.perf"),
             "polling": os.path.join(polling.home, "agent.perf")}
    timelines = {}
    for name, path in files.items():
        # Health checks run no scripts, so the last tickets are the measured runs.
        entries = executor_timelines(path)[-runs:]
        if len(entries) < runs // 2:
            raise BenchError(f"only {len(entries)} complete ticket timelines in {path}")
        timelines[name] = {key: statistics.median([entry[key] for entry in entries]) for key in entries[0]}
        timelines[name]["noticed_mean"] = statistics.fmean([entry["noticed"] for entry in entries])
        timelines[name]["noticed_late"] = 100 * sum(entry["noticed"] > 5 for entry in entries) / len(entries)
        timelines[name]["n"] = len(entries)
        timelines[name]["client"] = figures[name]["client"]["p50"]
    return timelines


def fsync_latency(directory, count=50):
    path = os.path.join(directory, "fsync-probe")
    times = []
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(count):
            os.write(descriptor, b"x" * 128)
            started = time.perf_counter()
            os.fsync(descriptor)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(descriptor)
        os.unlink(path)
    return statistics.median(times)


# ---------------------------------------------------------------------------------------------
# Server and agents


class Server:
    def __init__(self, cuttle, processes, work, name, wrap=None):
        self.cuttle = cuttle
        self.processes = processes
        # A function of (name, directory) giving a command prefix: perf trace for the timelines.
        self.wrap = wrap or (lambda name, directory: [])
        self.directory = os.path.join(work, name)
        os.makedirs(self.directory)
        environment = dict(os.environ, CUTTLE_BOOTSTRAP_API_KEY=API_KEY, CUTTLE_LOG="warn")
        self.process = processes.spawn(
            self.wrap("server", self.directory) + [cuttle, "server", "--data-dir", os.path.join(self.directory, "data"),
             "--listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0"],
            self.directory, "server", environment)
        self.agent_address = wait_for_lines([self.process], r"Cuttle agent port is listening on (\S+)", 60)[0][1]
        http = wait_for_lines([self.process], r"Cuttle is listening on http://(\S+)", 60)[0][1]
        self.url = f"http://{http}"
        self.api = Api(int(http.rsplit(":", 1)[1]))
        self.api.call("POST", "/api/Spaces-1/environments", {"Name": ENVIRONMENT})
        self.agents = []

    def wait_idle(self, settle=6.0, timeout=300.0):
        """Waits out the health checks the server queues for new targets (it looks every 5 s)."""
        time.sleep(settle)
        deadline = time.monotonic() + timeout
        path = "/api/Spaces-1/tasks?states=Queued,Executing,Cancelling&take=1"
        while self.api.call("GET", path)["TotalResults"]:
            if time.monotonic() > deadline:
                raise BenchError(f"tasks still running after {timeout} s")
            time.sleep(0.2)

    def rss(self):
        return rss_mib(self.process.pid)

    def stop(self):
        self.api.close()
        self.processes.stop([agent.process for agent in self.agents if agent.process] + [self.process])


class Agent:
    def __init__(self, server, name, polling):
        self.server = server
        self.name = name
        self.polling = polling
        self.home = os.path.join(server.directory, "agents", name)
        os.makedirs(self.home)
        self.port = None if polling else PORTS.take()
        self.process = None
        self.machine_id = None

    def register(self):
        command = [self.server.cuttle, "agent", "--home", self.home, "register", "--server", self.server.url,
                   "--api-key", API_KEY, "--name", self.name, "--environment", ENVIRONMENT, "--role", "bench"]
        if self.polling:
            command += ["--polling", "--server-comms-address", self.server.agent_address]
        else:
            command += ["--listen-port", str(self.port), "--public-hostname", "127.0.0.1"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60,
                                env=dict(os.environ, CUTTLE_LOG="warn"))
        if result.returncode != 0:
            raise BenchError(f"registering {self.name} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        with open(os.path.join(self.home, "agent.json")) as file:
            self.machine_id = json.load(file)["Registration"]["Id"]

    def start(self):
        command = [self.server.cuttle, "agent", "--home", self.home, "run"]
        if not self.polling:
            command += ["--listen", f"127.0.0.1:{self.port}"]
        self.process = self.server.processes.spawn(self.server.wrap("agent", self.home) + command, self.home, "agent",
                                                   dict(os.environ, CUTTLE_LOG="warn"))

    @property
    def ready_pattern(self):
        return r"Cuttle agent is connected to" if self.polling else r"Cuttle agent is listening on"


def add_agents(server, prefix, count, polling, start=True, timeout=120):
    agents = [Agent(server, f"{prefix}-{index:03d}", polling) for index in range(count)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(Agent.register, agents))
    server.agents += agents
    if start:
        start_agents(agents, timeout)
    return agents


def start_agents(agents, timeout=120):
    for agent in agents:
        agent.start()
    wait_for_lines([agent.process for agent in agents], agents[0].ready_pattern, timeout)


# ---------------------------------------------------------------------------------------------
# Measurements


def round_trips(api, paths, runs, warmup, baselines=()):
    """Runs every path (name → machine ids) and baseline (name → function) in turn, `runs`
    times after `warmup` rounds, so a change in the machine's load touches them all alike."""
    results = {name: [] for name in paths}
    spawns = {name: [] for name, _ in baselines}
    for round_number in range(warmup + runs):
        for name, spawn in baselines:
            elapsed = spawn()
            if round_number >= warmup:
                spawns[name].append(elapsed)
        for name, machine_ids in paths.items():
            run = run_task(api, machine_ids)
            if round_number >= warmup:
                results[name].append(run)
    figures = {name: summary(times) for name, times in spawns.items()}
    for name, runs_of_path in results.items():
        split = [phases(api, run) for run in runs_of_path]
        figures[name] = {
            "client": summary([run["client"] for run in runs_of_path]),
            "server": summary([run["server"] for run in runs_of_path]),
            "phases": {key: statistics.median([entry[key] for entry in split]) for key in split[0]},
            "script_p99": percentile([entry["script"] for entry in split], 0.99),
            "polls": statistics.median([run["polls"] for run in runs_of_path]),
            "script_histogram": histogram([entry["script"] for entry in split]),
        }
    return figures


def histogram(values):
    buckets = [5, 10, 20, 30, 40, 50, 70, 100, 150, 250, 500, 1000, math.inf]
    counts = {}
    for value in values:
        bucket = next(limit for limit in buckets if value <= limit)
        counts[bucket] = counts.get(bucket, 0) + 1
    return ", ".join(f"≤{'∞' if limit == math.inf else int(limit)} ms: {counts[limit]}"
                     for limit in buckets if limit in counts)


def cpu_ms(pid, children=False):
    """The process' CPU time (user + system; with `children`, also that of the children it
    waited for: an agent's scripts), in ms, at the kernel's tick resolution."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    ticks = utime + stime + (cutime + cstime if children else 0)
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def machine_busy_ms():
    """CPU time all cores spent not idle since boot, in ms (everything on the machine)."""
    with open("/proc/stat") as file:
        values = [int(value) for value in file.readline().split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) * 1000 / os.sysconf("SC_CLK_TCK")


def fan_out(server, agents, sizes, repeats):
    """{size: {"client": [ms…], "server": [ms…], "cpu": {…medians}}}."""
    figures = {}
    for size in sizes:
        chosen = agents[:size]
        ids = [agent.machine_id for agent in chosen]
        runs, cpu = [], {"server": [], "agents": [], "machine": []}
        for _ in range(repeats):
            before = (cpu_ms(server.process.pid),
                      sum(cpu_ms(agent.process.pid, children=True) for agent in chosen), machine_busy_ms())
            runs.append(run_task(server.api, ids, timeout=300))
            after = (cpu_ms(server.process.pid),
                     sum(cpu_ms(agent.process.pid, children=True) for agent in chosen), machine_busy_ms())
            for key, start, end in zip(("server", "agents", "machine"), before, after):
                cpu[key].append(end - start)
        figures[size] = {"client": [run["client"] for run in runs], "server": [run["server"] for run in runs],
                         "cpu": {key: statistics.median(values) for key, values in cpu.items()}}
    return figures


def idle_agent_rss(agent):
    time.sleep(2)
    return rss_mib(agent.process.pid)


def memory_split(pid):
    """RSS split as /proc/<pid>/smaps_rollup counts it, in MiB: `Anonymous` (the process' own
    heap and stacks, and the binary's relocated `.data.rel.ro`) and `File` (pages of the cuttle
    binary and the shared libraries, in the page cache)."""
    split = {}
    with open(f"/proc/{pid}/smaps_rollup") as file:
        for line in file:
            name, _, rest = line.partition(":")
            if name in ("Rss", "Anonymous"):
                split[name] = int(rest.split()[0]) / 1024
    split["File"] = split["Rss"] - split["Anonymous"]
    return split


def code_layout(binary):
    """Sizes in MiB of the agent's code block (between `__cuttle_agent_code_start` and `_end`,
    gathered by crates/cuttle/link/agent-hot.ld) and of all code (`.text`); None when binutils
    is missing."""
    try:
        symbols = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True).stdout
        sections = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    addresses = {fields[2]: int(fields[0], 16) for fields in map(str.split, symbols.splitlines()) if len(fields) == 3}
    block = addresses.get("__cuttle_agent_code_end", 0) - addresses.get("__cuttle_agent_code_start", 0)
    text = next((int(fields[5], 16) for fields in (line.replace("[ ", "[").split() for line in sections.splitlines())
                 if len(fields) > 5 and fields[1] == ".text"), 0)
    return block / 1024 / 1024, text / 1024 / 1024


def load_average():
    with open("/proc/loadavg") as file:
        return " ".join(file.read().split()[:3])


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        memory_gib = int(meminfo.readline().split()[1]) / 1024 / 1024
    return f"{os.cpu_count()} cores, {model}, {memory_gib:.0f} GiB, {platform.platform()}"


# ---------------------------------------------------------------------------------------------
# Report


def verdict(ok):
    return "met" if ok else "**not met**"


PATHS = [("worker", "built-in worker"), ("listening", "listening agent"), ("polling", "polling agent")]


def write_report(arguments, figures, command):
    f = figures
    bare, boot, rt = f["bare"], f["bootstrap"], f["round_trip"]
    lines = [
        f"# Agents benchmark, {datetime.date.today().isoformat()}",
        "",
        f"Machine: {machine()}. Load average at start / end: {f['load_start']} / {f['load_end']}",
        "(the cores are shared with whatever else runs on the machine). fsync on the data",
        f"directory's disk: median {f['fsync']:.2f} ms. Binary: `{arguments.cuttle}`"
        f"{f' built from {arguments.revision}' if arguments.revision else ''}; SQLite store; everything on 127.0.0.1.",
        "",
        f"Command: `{command}`",
        "",
        "## 1. Round trip of `echo hi`",
        "",
        f"{arguments.runs} rounds after {arguments.warmup} warm-up rounds; each round runs every row once, in turn,",
        "so a change in the machine's load touches every row alike. *Client*: from sending",
        "`POST /api/Spaces-1/tasks` (`AdHocScript`, `echo hi`) to the first `GET /api/tasks/{id}`",
        "answering `IsCompleted: true` (polled every 2 ms on a kept-alive connection). *Server*: the",
        "task's own `QueueTime` → `CompletedTime` (millisecond timestamps). Baselines:",
        "`subprocess.run(['bash', '-c', 'echo hi'])` from Python, and cuttle-exec's bash bootstrap",
        "(`bash --noprofile --norc bootstrap.sh script.sh`, its helpers and four variables on stdin,",
        "as the executor launches it) spawned the same way.",
        "",
        "| Path | Client p50 ms | Client p99 ms | Server p50 ms | Server p99 ms | Client p50 − bare p50 | Target: within 15 ms of bare |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| bare `bash -c 'echo hi'` (Python subprocess) | {bare['p50']:.1f} | {bare['p99']:.1f} | | | | |",
        f"| cuttle-exec bash bootstrap, spawned directly | {boot['p50']:.1f} | {boot['p99']:.1f} | | "
        f"| {boot['p50'] - bare['p50']:+.1f} | |",
    ]
    for key, label in PATHS:
        r = rt[key]
        gap = r["client"]["p50"] - bare["p50"]
        lines.append(f"| {label} | {r['client']['p50']:.1f} | {r['client']['p99']:.1f} | {r['server']['p50']:.1f} "
                     f"| {r['server']['p99']:.1f} | {gap:+.1f} | {verdict(gap <= 15)} |")
    lines += [
        "",
        "### Where the time goes",
        "",
        "The server's time, split with each run's raw log (lines carry the server's clock when they",
        "were logged, in milliseconds); medians over the same runs:",
        "",
        "| Phase, ms | Built-in worker | Listening agent | Polling agent |",
        "| --- | --- | --- | --- |",
    ]
    phase_rows = [
        ("claim", "QueueTime → StartTime (the POST wakes the runner; claim)"),
        ("setup", "StartTime → \"Running the script on …\" (targets loaded, progress saved)"),
        ("script", "→ \"The script finished\" (start the ticket, run it, poll its status until it ends)"),
        ("output_to_finished", "the `hi` line → \"The script finished\" (0: one status answer brings both)"),
        ("finish", "→ CompletedTime (progress saved, ticket completed, task saved)"),
        ("client_extra", "client round trip − server time (the POST itself, the 2 ms client polling)"),
    ]
    for key, label in phase_rows:
        lines.append(f"| {label} | " + " | ".join(f"{rt[path]['phases'][key]:.1f}" for path, _ in PATHS) + " |")
    lines += [
        "| p99 of the script phase | " + " | ".join(f"{rt[path]['script_p99']:.1f}" for path, _ in PATHS) + " |",
        "| client polls per run (median) | " + " | ".join(f"{rt[path]['polls']:.0f}" for path, _ in PATHS) + " |",
        "",
        "Distribution of the script phase:",
        "",
    ]
    for key, label in PATHS:
        lines.append(f"- {label}: {rt[key]['script_histogram']}")
    timelines = f.get("timelines")
    if timelines:
        lines += [
            "",
            f"Inside the executor: {timelines['worker']['n']} more rounds on a server and agents run under `perf trace -e",
            f"{TRACED_SYSCALLS}` (tracepoints: nothing is stopped), timed by the executor's own",
            "syscalls; medians, ms:",
            "",
            "| Step inside the executor | Built-in worker | Listening agent | Polling agent |",
            "| --- | --- | --- | --- |",
        ]
        for key, label in [
            ("prepare", "start call arrives (staging mkdir) → bash spawned: ticket files, state `Running`, fork"),
            ("bash", "bash spawned (its PATH search included) → bash exited: the bootstrap and `echo hi`"),
            ("finish", "bash exited → final state durable: log fdatasync, `state.json` fsync + directory fsync"),
            ("noticed", "final state durable → the server's complete call unlinks the ticket: status polling backoff, one status answer, one progress save"),
            ("noticed_mean", "the same, mean (the polling makes it bimodal)"),
            ("noticed_late", "the same, % of runs over 5 ms"),
            ("fsyncs", "fsync/fdatasync calls per ticket"),
            ("client", "client round trip p50 of these traced rounds (compare with the table above)"),
        ]:
            lines.append(f"| {label} | " + " | ".join(
                f"{timelines[path][key]:.{0 if key in ('fsyncs', 'noticed_late') else 1}f}" for path, _ in PATHS) + " |")
    tmpfs = f.get("tmpfs")
    if tmpfs:
        lines += [
            "",
            f"The same round trips ({arguments.tmpfs_runs} rounds) with the server's data directory and the agents'",
            "homes on tmpfs (`/dev/shm`), where fsync costs nothing:",
            "",
            "| Path | Client p50 ms on disk | Client p50 ms on tmpfs | Client p99 ms on tmpfs | Server p50 ms on tmpfs | bare p50 in those rounds |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for key, label in PATHS:
            lines.append(f"| {label} | {rt[key]['client']['p50']:.1f} | {tmpfs[key]['client']['p50']:.1f} "
                         f"| {tmpfs[key]['client']['p99']:.1f} | {tmpfs[key]['server']['p50']:.1f} | {tmpfs['bare']['p50']:.1f} |")
    lines += [
        "",
        "What the code does on this path (crates/cuttle-orchestrator/src/scripts.rs, runner.rs;",
        "crates/cuttle-exec/src/runner.rs, journal.rs, bootstrap/bash.sh):",
        "",
        "- Status polling: after starting a ticket the server asks for its status 2 ms later, then",
        "  doubles the wait while no line arrives (2, 4, 8, 16, 32 … up to 500 ms), so a script that",
        "  ends t ms after its start is seen at the first poll after t: 2, 6, 14, 30, 62 ms (plus the",
        "  answers' own time). A line would reset the wait to 2 ms, but lines are only served once",
        "  fsynced, every 100 ms (`FLUSH_INTERVAL`) or at the end, so a short script's `hi` arrives",
        "  with its end, in one answer (the `hi` → finished phase above is 0).",
        "- fsync: a ticket's files and directories are fsynced when it is prepared (before the start",
        "  call answers), `state.json` and its directory when it turns `Running` (before the spawn),",
        "  again when the process id is recorded (while bash runs), and the log, `state.json` and its",
        "  directory at the end (before the status says finished); the count per run is in the",
        "  executor table, and the tmpfs table shows what they cost on this disk.",
        "- The bootstrap: `__cuttle_preamble=$(cat)` forks a subshell that execs `cat` to read the",
        "  variables, and bash parses about 3 KB of helpers: the bootstrap row above, against bare bash.",
        "- Not on this path: the runner's 1 s poll interval (the POST wakes the runner: QueueTime →",
        "  StartTime is the claim row), and the 250 ms periodic log flush (the log is flushed before",
        "  each progress save and before the task's end is saved).",
    ]

    lines += ["", "## 2. Fan-out: one `echo hi` to N agents", "",
              "Each agent is its own `cuttle agent run` process with its own `--home`, on 127.0.0.1.",
              f"Client wall time from the POST to `IsCompleted`, median of {arguments.repeats} runs (every run",
              "listed); the server's QueueTime → CompletedTime beside it. The server runs at most 32",
              "targets of one ad-hoc script at once (`PARALLEL_TARGETS` in adhoc.rs).", "",
              "CPU per run (median): the server's, the chosen agents' with the scripts they ran, and the",
              "whole machine's (all processes, both cores; 10 ms ticks); both cores for the whole run",
              "would be twice the wall time.", "",
              "| Agents | Mode | Median s | Runs s | Server median s | CPU ms: server / agents and scripts / machine | Target |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for mode, data in [("listening", f["fan_out_listening"]), ("polling", f["fan_out_polling"])]:
        for size, runs in data.items():
            median = statistics.median(runs["client"]) / 1000
            target = f"≤ 0.35 s: {verdict(median <= 0.35)}" if size == 50 else ""
            cpu = runs["cpu"]
            lines.append(f"| {size} | {mode} | {median:.3f} | {', '.join(f'{v / 1000:.3f}' for v in runs['client'])} "
                         f"| {statistics.median(runs['server']) / 1000:.3f} "
                         f"| {cpu['server']:.0f} / {cpu['agents']:.0f} / {cpu['machine']:.0f} | {target} |")
    size, cold = f["fan_out_cold"]
    lines += [
        "",
        f"Before those: the first run to all {size} listening agents, the server dialling each for the first",
        f"time (one dial at a time: `ListeningAgents` holds its lock while dialling): {cold / 1000:.3f} s.",
        "The polling rows follow one warm-up run to every polling agent.",
        "",
        "SSH targets, beside ansible and plain OpenSSH, are measured by `bench/ssh.sh`.",
        "",
        "## 3. Memory",
        "",
        "| Measure | Result | Target |",
        "| --- | --- | --- |",
        f"| Idle RSS of one listening agent (`VmRSS`, 2 s after it printed that it listens) | {f['agent_rss_listening']:.2f} MiB "
        f"| < 10 MiB: {verdict(f['agent_rss_listening'] < 10)} |",
        f"| Idle RSS of one polling agent (2 s after it printed that it is connected) | {f['agent_rss_polling']:.2f} MiB "
        f"| < 10 MiB: {verdict(f['agent_rss_polling'] < 10)} |",
        *(f"| The same after the server's first health check, {mode}: RSS / anonymous / file-backed "
          f"(the binary and libc) | {split['rss']:.2f} / {split['Anonymous']:.2f} / {split['File']:.2f} MiB | |"
          for mode, split in f.get("agent_memory_after_health", {}).items()),
        *(f"| The agent's code gathered at the front of the text (ARCHITECTURE.md, \"Agent code layout\") / all code | "
          f"{layout[0]:.2f} / {layout[1]:.2f} MiB | |" for layout in [f.get("code_layout")] if layout),
        f"| RSS of the listening agent after its {arguments.warmup + arguments.runs} round trips | {f['agent_rss_after_runs']:.1f} MiB | |",
        f"| Server RSS, fresh, before any agent | {f['server_rss_fresh']:.1f} MiB | |",
        f"| Server RSS with {f['polling_count']} polling agents connected, idle 2 s | {f['server_rss_polling']:.1f} MiB "
        f"| < 100 MiB: {verdict(f['server_rss_polling'] < 100)} |",
        f"| Server RSS after a health check of all {f['polling_count']} ({f['health_seconds']:.2f} s, {f['health_state']}; "
        f"{f['healthy']} Healthy after it) | {f['server_rss_after_health']:.1f} MiB | |",
        f"| The {f['polling_count']} polling agents' RSS: total / median / max | {f['agents_rss_total']:.0f} / "
        f"{f['agents_rss_median']:.1f} / {f['agents_rss_max']:.1f} MiB | |",
        "",
        f"The server had run the fan-out above before the {f['polling_count'] - f['first_polling']} other polling "
        f"agents were registered and started together; all printed \"connected\" within {f['connect_seconds']:.2f} s.",
        "The server queues a health check for new targets by itself; the run waits for it (and any other",
        "task) to end before each measurement.",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuttle", default=os.path.join(ROOT, "target", "release", "cuttle"),
                        help="the cuttle binary (default: target/release/cuttle)")
    parser.add_argument("--runs", type=int, default=200, help="round trips per path (default 200)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up round trips per path (default 5)")
    parser.add_argument("--tmpfs-runs", type=int, default=100,
                        help="round trips per path with the data on /dev/shm (default 100; 0: skip)")
    parser.add_argument("--trace-runs", type=int, default=40,
                        help="round trips per path under `perf trace`, for the executor's timeline (default 40; 0: skip)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per fan-out size (default 3)")
    parser.add_argument("--fan-out", default="1,10,50", help="fan-out sizes (default 1,10,50)")
    parser.add_argument("--polling-agents", type=int, default=200,
                        help="polling agents connected for the server's RSS (default 200)")
    parser.add_argument("--output", help="the result file (default bench/results/<date>-agents.md)")
    parser.add_argument("--command", help="the command to record in the result file")
    parser.add_argument("--revision", help="the source the binary was built from, to record")
    arguments = parser.parse_args()
    arguments.cuttle = os.path.abspath(arguments.cuttle)
    sizes = sorted(int(size) for size in arguments.fan_out.split(","))
    largest = sizes[-1]
    if not os.access(arguments.cuttle, os.X_OK):
        sys.exit(f"no cuttle binary at {arguments.cuttle}; build it first (bash bench/agents.sh does)")
    command = arguments.command or shlex.join(["python3", "bench/agents.py"] + sys.argv[1:])
    if not os.path.isdir("/dev/shm"):
        arguments.tmpfs_runs = 0
    if arguments.trace_runs and not perf_trace_works():
        print("`perf trace` is not available: no timeline inside the executor", file=sys.stderr)
        arguments.trace_runs = 0

    # SIGTERM and SIGHUP unwind like Ctrl-C, so the finally blocks stop every process.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda number, frame: sys.exit(128 + number))

    figures = {"load_start": load_average(), "code_layout": code_layout(arguments.cuttle)}
    processes = Processes()
    with tempfile.TemporaryDirectory(prefix="cuttle-bench-agents-") as work:
        try:
            figures["fsync"] = fsync_latency(work)
            baselines = [("bare", lambda: time_spawn(["bash", "-c", SCRIPT])),
                         ("bootstrap", bootstrap_spawner(work))]

            # Server 1: round trips and the listening fan-out.
            server = Server(arguments.cuttle, processes, work, "server-1")
            try:
                listening, = add_agents(server, "rt-listening", 1, polling=False)
                figures["agent_rss_listening"] = idle_agent_rss(listening)
                polling, = add_agents(server, "rt-polling", 1, polling=True)
                figures["agent_rss_polling"] = idle_agent_rss(polling)
                server.wait_idle()
                # Both connected now (the listening one by the server's health check): the
                # same state, and what of the RSS is the agent's own.
                figures["agent_memory_after_health"] = {
                    mode: dict(memory_split(agent.process.pid), rss=rss_mib(agent.process.pid))
                    for mode, agent in [("listening", listening), ("polling", polling)]}
                print(f"round trips: {arguments.runs} rounds…", flush=True)
                paths = {"worker": [], "listening": [listening.machine_id], "polling": [polling.machine_id]}
                trips = round_trips(server.api, paths, arguments.runs, arguments.warmup, baselines)
                figures["bare"], figures["bootstrap"] = trips.pop("bare"), trips.pop("bootstrap")
                figures["round_trip"] = trips
                figures["agent_rss_after_runs"] = rss_mib(listening.process.pid)

                print("fan-out: listening…", flush=True)
                fleet = add_agents(server, "fan-listening", largest, polling=False)
                server.wait_idle()
                figures["fan_out_cold"] = (largest, run_task(server.api, [a.machine_id for a in fleet], timeout=300)["client"])
                figures["fan_out_listening"] = fan_out(server, fleet, sizes, arguments.repeats)
            finally:
                server.stop()

            if arguments.tmpfs_runs:
                print(f"round trips on tmpfs: {arguments.tmpfs_runs} rounds…", flush=True)
                with tempfile.TemporaryDirectory(prefix="cuttle-bench-agents-", dir="/dev/shm") as shm:
                    server = Server(arguments.cuttle, processes, shm, "server-tmpfs")
                    try:
                        listening, = add_agents(server, "tmpfs-listening", 1, polling=False)
                        polling, = add_agents(server, "tmpfs-polling", 1, polling=True)
                        server.wait_idle()
                        paths = {"worker": [], "listening": [listening.machine_id], "polling": [polling.machine_id]}
                        figures["tmpfs"] = round_trips(server.api, paths, arguments.tmpfs_runs, arguments.warmup,
                                                       baselines[:1])
                    finally:
                        server.stop()

            if arguments.trace_runs:
                print(f"round trips under perf trace: {arguments.trace_runs} rounds…", flush=True)
                figures["timelines"] = traced_round_trips(arguments.cuttle, processes, work,
                                                          arguments.trace_runs, arguments.warmup)

            # Server 2: polling agents, the polling fan-out, then the server's RSS with them all.
            server = Server(arguments.cuttle, processes, work, "server-2")
            try:
                time.sleep(1)
                figures["server_rss_fresh"] = server.rss()
                count = max(arguments.polling_agents, largest)
                print(f"polling agents: {largest}…", flush=True)
                fleet = add_agents(server, "polling", largest, polling=True)
                figures["first_polling"] = len(fleet)
                server.wait_idle()
                print("fan-out: polling…", flush=True)
                run_task(server.api, [a.machine_id for a in fleet], timeout=300)  # warm-up
                figures["fan_out_polling"] = fan_out(server, fleet, sizes, arguments.repeats)

                print(f"polling agents: {count - len(fleet)} more…", flush=True)
                rest = add_agents(server, "polling-more", count - len(fleet), polling=True, start=False)
                started = time.monotonic()
                if rest:
                    start_agents(rest, timeout=300)
                figures["connect_seconds"] = time.monotonic() - started
                fleet += rest
                server.wait_idle()  # the health check the server queues for new targets
                time.sleep(2)
                figures["polling_count"] = len(fleet)
                figures["server_rss_polling"] = server.rss()
                agent_rss = [rss_mib(agent.process.pid) for agent in fleet]
                figures["agents_rss_total"] = sum(agent_rss)
                figures["agents_rss_median"] = statistics.median(agent_rss)
                figures["agents_rss_max"] = max(agent_rss)

                print("health check of every polling agent…", flush=True)
                started = time.perf_counter()
                task = server.api.call("POST", "/api/Spaces-1/tasks", {
                    "Name": "Health", "Arguments": {"MachineIds": [a.machine_id for a in fleet]}})
                deadline = started + 300
                while not task["IsCompleted"] and time.perf_counter() < deadline:
                    time.sleep(0.01)
                    task = server.api.call("GET", f"/api/tasks/{task['Id']}")
                figures["health_seconds"] = time.perf_counter() - started
                figures["health_state"] = task["State"]
                machines = server.api.call("GET", "/api/Spaces-1/machines?take=100000")["Items"]
                figures["healthy"] = sum(1 for m in machines if m.get("HealthStatus") == "Healthy")
                figures["server_rss_after_health"] = server.rss()
            finally:
                server.stop()
        finally:
            processes.stop()
    figures["load_end"] = load_average()

    report = write_report(arguments, figures, command)
    path = arguments.output or os.path.join(ROOT, "bench", "results",
                                            f"{datetime.date.today().isoformat()}-agents.md")
    with open(path, "w") as file:
        file.write(report)
    print(report)


if __name__ == "__main__":
    main()
