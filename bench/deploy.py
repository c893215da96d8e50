#!/usr/bin/env python3
"""Measures deployments; called by bench/deploy.sh after the release build.

1. Latency from the deploy call (`POST deployments/create/untenanted/v1`) to the task's
   Success, for a one-step `echo hi` deployment to one listening agent (p50/p99), beside
   `bash -c 'echo hi'` spawned the same number of times.
2. Throughput: N deployments queued at once (100 projects x 5 environments, one step on the
   built-in worker), deployments per second from the first POST to the last Success, on
   SQLite and on PostgreSQL, with the default task cap and a higher one.
3. A task writing 1,000,000 log lines (`seq`): ingest rate, the server's peak RSS, and the
   time to fetch the last 1,000 lines (`GET /api/tasks/{id}/events?after=N`).

Reuses bench/agents.py's process handling. Writes bench/results/<date>-deploy.md and prints it.
"""
import argparse
import concurrent.futures
import datetime
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agents as common  # noqa: E402

ENVIRONMENTS = ["Env-1", "Env-2", "Env-3", "Env-4", "Env-5"]


def server_step(name, body, roles=None):
    properties = {"Octopus.Action.Script.ScriptBody": body, "Octopus.Action.Script.Syntax": "Bash"}
    step_properties = {}
    if roles:
        step_properties["Octopus.Action.TargetRoles"] = roles
    else:
        properties["Octopus.Action.RunOnServer"] = "true"
    return {"Name": name, "Properties": step_properties,
            "Actions": [{"Name": name, "ActionType": "Octopus.Script", "Properties": properties}]}


def make_project(api, name, steps, lifecycle_id=None):
    body = {"Name": name}
    if lifecycle_id:
        body["LifecycleId"] = lifecycle_id
    project = api.call("POST", "/api/Spaces-1/projects", body)
    process = api.call("GET", f"/api/Spaces-1/projects/{project['Id']}/deploymentprocesses")
    process["Steps"] = steps
    api.call("PUT", f"/api/Spaces-1/projects/{project['Id']}/deploymentprocesses", process)
    api.call("POST", "/api/Spaces-1/releases/create/v1", {"ProjectName": name, "ReleaseVersion": "1.0.0"})
    return project


def deploy(api, project, environment):
    answer = api.call("POST", "/api/Spaces-1/deployments/create/untenanted/v1",
                      {"ProjectName": project, "ReleaseVersion": "1.0.0", "EnvironmentNames": [environment]})
    return answer["DeploymentServerTasks"][0]["ServerTaskId"]


def wait_task(api, task_id, poll=0.002, timeout=600):
    deadline = time.monotonic() + timeout
    while True:
        task = api.call("GET", f"/api/tasks/{task_id}")
        if task["IsCompleted"]:
            if task["State"] != "Success":
                log = api.call("GET", f"/api/tasks/{task_id}/raw", raw=True)
                raise common.BenchError(f"{task_id} ended {task['State']}: {log[-2000:]}")
            return task
        if time.monotonic() > deadline:
            raise common.BenchError(f"{task_id} did not finish")
        time.sleep(poll)


def start_server(cuttle, processes, work, name, extra_arguments=(), database_url=None):
    """Starts a server with extra flags (the agents bench's Server takes none)."""
    directory = os.path.join(work, name)
    os.makedirs(directory)
    environment = dict(os.environ, CUTTLE_BOOTSTRAP_API_KEY=common.API_KEY, CUTTLE_LOG="warn")
    command = [cuttle, "server", "--data-dir", os.path.join(directory, "data"),
               "--listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0", *extra_arguments]
    if database_url:
        command += ["--database-url", database_url]
    server = common.Server.__new__(common.Server)
    server.cuttle = cuttle
    server.processes = processes
    server.wrap = lambda role, directory: []
    server.directory = directory
    server.process = processes.spawn(command, directory, "server", environment)
    server.agent_address = common.wait_for_lines([server.process], r"Cuttle agent port is listening on (\S+)", 60)[0][1]
    http = common.wait_for_lines([server.process], r"Cuttle is listening on http://(\S+)", 60)[0][1]
    server.url = f"http://{http}"
    server.api = common.Api(int(http.rsplit(":", 1)[1]))
    server.api.call("POST", "/api/Spaces-1/environments", {"Name": common.ENVIRONMENT})
    server.agents = []
    return server


def latency(cuttle, processes, work, runs):
    server = start_server(cuttle, processes, work, "latency")
    common.add_agents(server, "lat", 1, polling=False)
    server.wait_idle()
    api = server.api
    make_project(api, "Latency", [server_step("Echo", "echo hi", roles="bench")])
    for _ in range(5):
        wait_task(api, deploy(api, "Latency", common.ENVIRONMENT))
    values, bare = [], []
    for _ in range(runs):
        started = time.perf_counter()
        wait_task(api, deploy(api, "Latency", common.ENVIRONMENT))
        values.append((time.perf_counter() - started) * 1000)
        bare.append(common.time_spawn(["bash", "-c", "echo hi"]))
    server.stop()
    return common.summary(values), common.summary(bare)


def throughput(cuttle, processes, work, name, count, task_cap, database_url=None):
    extra = ["--task-cap", str(task_cap)]
    server = start_server(cuttle, processes, work, name, extra, database_url)
    api = server.api
    environment_ids = []
    for environment in ENVIRONMENTS:
        environment_ids.append(api.call("POST", "/api/Spaces-1/environments", {"Name": environment})["Id"])
    lifecycle = api.call("POST", "/api/Spaces-1/lifecycles", {
        "Name": "Anywhere", "Phases": [{"Name": "All", "OptionalDeploymentTargets": environment_ids}]})
    projects = max(1, count // len(ENVIRONMENTS))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda index: make_project(common.Api(api.port), f"P{index:03d}",
                                                 [server_step("Echo", "echo hi")], lifecycle["Id"]),
                      range(projects)))
    pairs = [(f"P{index:03d}", environment) for index in range(projects) for environment in ENVIRONMENTS]
    started = time.perf_counter()
    task_ids = []
    lock = threading.Lock()

    def queue(pair):
        client = common.Api(api.port)
        task_id = deploy(client, *pair)
        client.close()
        with lock:
            task_ids.append(task_id)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(queue, pairs))
    queued = time.perf_counter() - started
    for task_id in task_ids:
        wait_task(api, task_id, poll=0.01)
    elapsed = time.perf_counter() - started
    server.stop()
    return {"count": len(pairs), "queued_s": queued, "elapsed_s": elapsed, "per_second": len(pairs) / elapsed}


def log_volume(cuttle, processes, work, lines):
    server = start_server(cuttle, processes, work, "log")
    api = server.api
    make_project(api, "Chatty", [server_step("Seq", f"seq 1 {lines}")])
    peak = [0.0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], server.rss())
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    task_id = deploy(api, "Chatty", common.ENVIRONMENT)
    task = wait_task(api, task_id, poll=0.05, timeout=1800)
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    # The log holds the script's lines after a few of the engine's; ask for about the last 1,000.
    last = lines
    fetch_started = time.perf_counter()
    body = api.call("GET", f"/api/tasks/{task_id}/events?after={last - 1000}", raw=True)
    fetch_ms = (time.perf_counter() - fetch_started) * 1000
    if f"\"MessageText\":\"{lines}\"" not in body:
        raise common.BenchError("the last line was not in the log's tail")
    server.stop()
    return {"lines": lines, "seconds": elapsed, "per_second": lines / elapsed, "peak_rss": peak[0],
            "tail_ms": fetch_ms, "server_ms": common.milliseconds(task["StartTime"], task["CompletedTime"])}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuttle", required=True)
    parser.add_argument("--revision", default="unknown")
    parser.add_argument("--command", default="bash bench/deploy.sh")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--deployments", type=int, default=500)
    parser.add_argument("--log-lines", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=os.environ.get("CUTTLE_BENCH_DATABASE_URL",
                                                                 "postgres://postgres@127.0.0.1:5432/test"))
    arguments = parser.parse_args()
    processes = common.Processes()
    figures = {}
    pg = None
    try:
        with tempfile.TemporaryDirectory(prefix="cuttle-deploy-bench-") as work:
            figures["latency"], figures["bare"] = latency(arguments.cuttle, processes, work, arguments.runs)
            figures["sqlite_cap5"] = throughput(arguments.cuttle, processes, work, "tp-sqlite-5", arguments.deployments, 5)
            figures["sqlite_cap20"] = throughput(arguments.cuttle, processes, work, "tp-sqlite-20", arguments.deployments, 20)
            schema = f"cuttle_bench_{uuid.uuid4().hex}"
            subprocess.run(["psql", arguments.database_url, "-Xqc", f"CREATE SCHEMA {schema}"], check=True)
            pg = (arguments.database_url, schema)
            separator = "&" if "?" in arguments.database_url else "?"
            url = f"{arguments.database_url}{separator}options=-c%20search_path%3D{schema}"
            figures["pg_cap20"] = throughput(arguments.cuttle, processes, work, "tp-pg-20", arguments.deployments, 20, url)
            figures["log"] = log_volume(arguments.cuttle, processes, work, arguments.log_lines)
    except common.BenchError as error:
        print(f"error: {error}", file=sys.stderr)
    finally:
        processes.stop()
        if pg:
            subprocess.run(["psql", pg[0], "-Xqc", f"DROP SCHEMA {pg[1]} CASCADE"], check=False,
                           capture_output=True)
    report(arguments, figures)


def report(arguments, figures):
    missing = {"p50": float("nan"), "p99": float("nan"), "mean": float("nan")}
    latency, bare = figures.get("latency", missing), figures.get("bare", missing)
    log = figures.get("log", {"lines": arguments.log_lines, "per_second": float("nan"), "seconds": float("nan"),
                              "peak_rss": float("nan"), "tail_ms": float("nan")})
    nothing = {"count": 0, "queued_s": float("nan"), "elapsed_s": float("nan"), "per_second": float("nan")}
    for key in ["sqlite_cap5", "sqlite_cap20", "pg_cap20"]:
        figures.setdefault(key, nothing)
    lines = [
        f"# Deployments — {datetime.date.today().isoformat()}",
        "",
        f"- Machine: {common.machine()}",
        f"- Revision: {arguments.revision}",
        f"- Command: `{arguments.command}`",
        "",
        "## Deploy call to Success, one `echo hi` step on one listening agent",
        "",
        "| | p50 ms | p99 ms | mean ms |",
        "| --- | ---: | ---: | ---: |",
        f"| deployment ({arguments.runs} runs) | {latency['p50']:.1f} | {latency['p99']:.1f} | {latency['mean']:.1f} |",
        f"| `bash -c 'echo hi'` spawn | {bare['p50']:.1f} | {bare['p99']:.1f} | {bare['mean']:.1f} |",
        "",
        f"Target: p50 within 25 ms of the bare spawn — difference {latency['p50'] - bare['p50']:.1f} ms: "
        f"{common.verdict(latency['p50'] - bare['p50'] <= 25)}.",
        "",
        "## Deployments queued at once (one step on the built-in worker; 100 projects x 5 environments)",
        "",
        "| store | task cap | deployments | queued in s | all done in s | deployments/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, store, cap in [("sqlite_cap5", "SQLite", 5), ("sqlite_cap20", "SQLite", 20), ("pg_cap20", "PostgreSQL", 20)]:
        figure = figures[key]
        lines.append(f"| {store} | {cap} | {figure['count']} | {figure['queued_s']:.2f} | {figure['elapsed_s']:.2f} | {figure['per_second']:.0f} |")
    lines += [
        "",
        f"Target: at least 100 per second on SQLite — {common.verdict(max(figures['sqlite_cap5']['per_second'], figures['sqlite_cap20']['per_second']) >= 100)}.",
        "",
        f"## A task writing {log['lines']:,} log lines",
        "",
        f"- Ingest: {log['per_second']:,.0f} lines/s ({log['seconds']:.1f} s from the deploy call to Success; target 100,000 lines/s: {common.verdict(log['per_second'] >= 100_000)})",
        f"- Server peak RSS: {log['peak_rss']:.1f} MiB (target under 100 MiB: {common.verdict(log['peak_rss'] < 100)})",
        f"- Fetching the last 1,000 lines (`/api/tasks/{{id}}/events?after=N`): {log['tail_ms']:.1f} ms (target under 50 ms: {common.verdict(log['tail_ms'] < 50)})",
        "",
    ]
    text = "\n".join(lines)
    path = os.path.join(common.ROOT, "bench", "results", f"{datetime.date.today().isoformat()}-deploy.md")
    with open(path, "w") as file:
        file.write(text)
    print(text)


if __name__ == "__main__":
    main()
