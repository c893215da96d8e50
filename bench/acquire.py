#!/usr/bin/env python3
"""Measures package acquisition; called by bench/acquire.sh after the release build.

1. Fan-out: one package of --size-mib MiB (a zip of incompressible bytes, stored) uploaded to
   the built-in feed and deployed by an `Octopus.TentaclePackage` step to --agents listening
   agents: the "Acquire packages" activity's wall time, the whole deployment's (extraction on
   every agent included), and the bytes that crossed the loopback interface meanwhile
   (/proc/net/dev `lo` transmitted bytes: both directions of every connection, TLS and HTTP/2
   framing and API calls included) against the
   package bytes the log says were sent.
2. Delta: a --delta-mib MiB package deployed to one agent, then a version with 1 % of its bytes
   changed (100 runs of changed bytes spread over the file): the delta's size as a share of
   the package, the loopback bytes, and the acquisition's wall time (the agent signs the
   basis, the server diffs, sends, the agent patches and verifies).

Reuses bench/agents.py's process handling. Writes bench/results/<date>-acquire.md and prints it.
"""
import argparse
import datetime
import os
import random
import re
import sys
import tempfile
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agents as common  # noqa: E402
import deploy as deploy_bench  # noqa: E402

BOUNDARY = "----cuttle-bench-acquire"


def loopback_bytes():
    with open("/proc/net/dev") as file:
        for line in file:
            name, _, counters = line.partition(":")
            if name.strip() == "lo":
                # Transmitted bytes only: on loopback every byte sent is also counted as
                # received, so the sum would count each byte twice.
                return int(counters.split()[8])
    raise common.BenchError("no loopback interface in /proc/net/dev")


def make_zip(path, content):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("Deploy.sh", "echo deployed $(get_octopusvariable Octopus.Machine.Name)\n")
        archive.writestr("site.bin", content)


def upload(api, path):
    import http.client
    name = os.path.basename(path)
    with open(path, "rb") as file:
        content = file.read()
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"fileToUpload\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    body = head + content + f"\r\n--{BOUNDARY}--\r\n".encode()
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=600)
    connection.request("POST", "/api/Spaces-1/packages/raw", body=body, headers={
        "X-Octopus-ApiKey": common.API_KEY, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    if response.status >= 400:
        raise common.BenchError(f"upload {name}: {response.status} {payload[:400]!r}")


def package_step(package_id):
    return {"Name": "Deploy", "Properties": {"Octopus.Action.TargetRoles": "bench"},
            "Actions": [{"Name": "Deploy", "ActionType": "Octopus.TentaclePackage",
                         "Packages": [{"Name": "", "PackageId": package_id, "FeedId": "feeds-builtin"}],
                         "Properties": {"Octopus.Action.Package.PackageId": package_id}}]}


def release_and_deploy(api, project, version):
    api.call("POST", "/api/Spaces-1/releases/create/v1", {"ProjectName": project, "ReleaseVersion": version})
    before = loopback_bytes()
    started = time.perf_counter()
    answer = api.call("POST", "/api/Spaces-1/deployments/create/untenanted/v1",
                      {"ProjectName": project, "ReleaseVersion": version, "EnvironmentNames": [common.ENVIRONMENT]})
    task_id = answer["DeploymentServerTasks"][0]["ServerTaskId"]
    deploy_bench.wait_task(api, task_id, poll=0.05, timeout=3600)
    total_seconds = time.perf_counter() - started
    wire = loopback_bytes() - before
    details = api.call("GET", f"/api/tasks/{task_id}/details")
    acquire = next(child for child in details["ActivityLogs"][0]["Children"] if child["Name"] == "Acquire packages")
    acquire_seconds = (common.parse_time(acquire["Ended"]) - common.parse_time(acquire["Started"])).total_seconds()
    log = api.call("GET", f"/api/tasks/{task_id}/raw", raw=True)
    full = [int(value) for value in re.findall(r"Full package, (\d+) bytes", log)]
    deltas = [int(value) for value in re.findall(r"Delta of (\d+) bytes", log)]
    return {"total_s": total_seconds, "acquire_s": acquire_seconds, "wire": wire,
            "full": full, "deltas": deltas, "log": log}


def fan_out(cuttle, processes, work, size_mib, agents):
    server = deploy_bench.start_server(cuttle, processes, work, "fan-out")
    common.add_agents(server, "fan", agents, polling=False)
    server.wait_idle()
    api = server.api
    path = os.path.join(work, "fan-payload.1.0.0.zip")
    make_zip(path, os.urandom(size_mib << 20))
    upload(api, path)
    package_bytes = os.path.getsize(path)
    os.unlink(path)
    project = api.call("POST", "/api/Spaces-1/projects", {"Name": "FanOut"})
    process = api.call("GET", f"/api/Spaces-1/projects/{project['Id']}/deploymentprocesses")
    process["Steps"] = [package_step("fan-payload")]
    api.call("PUT", f"/api/Spaces-1/projects/{project['Id']}/deploymentprocesses", process)
    result = release_and_deploy(api, "FanOut", "1.0.0")
    server.stop()
    result["package_bytes"] = package_bytes
    return result


def delta(cuttle, processes, work, size_mib):
    server = deploy_bench.start_server(cuttle, processes, work, "delta")
    common.add_agents(server, "delta", 1, polling=False)
    server.wait_idle()
    api = server.api
    content = bytearray(os.urandom(size_mib << 20))
    path = os.path.join(work, "delta-payload.1.0.0.zip")
    make_zip(path, bytes(content))
    upload(api, path)
    project = api.call("POST", "/api/Spaces-1/projects", {"Name": "Delta"})
    process = api.call("GET", f"/api/Spaces-1/projects/{project['Id']}/deploymentprocesses")
    process["Steps"] = [package_step("delta-payload")]
    api.call("PUT", f"/api/Spaces-1/projects/{project['Id']}/deploymentprocesses", process)
    first = release_and_deploy(api, "Delta", "1.0.0")
    # 1 % of the bytes, in 100 runs spread over the file.
    run_length = len(content) // 100 // 100
    rng = random.Random(42)
    for index in range(100):
        start = index * (len(content) // 100) + rng.randrange(0, len(content) // 100 - run_length)
        content[start:start + run_length] = os.urandom(run_length)
    path = os.path.join(work, "delta-payload.1.0.1.zip")
    make_zip(path, bytes(content))
    upload(api, path)
    package_bytes = os.path.getsize(path)
    second = release_and_deploy(api, "Delta", "1.0.1")
    server.stop()
    second["package_bytes"] = package_bytes
    second["first"] = first
    return second


def mib(value):
    return f"{value / (1 << 20):.1f} MiB"


def report(arguments, figures):
    today = datetime.date.today().isoformat()
    lines = [f"# Package acquisition — {today}", "",
             f"Machine: {common.machine()}; load average before: {figures.get('load', '?')}, "
             f"after: {common.load_average()}.",
             f"Revision {arguments.revision}. Command: `{arguments.command}`.", ""]
    fan = figures.get("fan")
    if fan:
        sent = sum(fan["full"])
        lines += [f"## {arguments.size_mib} MiB package to {arguments.agents} listening agents", "",
                  "| Figure | Value |", "|---|---|",
                  f"| package file | {mib(fan['package_bytes'])} |",
                  f"| targets sent the full package | {len(fan['full'])} |",
                  f"| \"Acquire packages\" wall time | {fan['acquire_s']:.2f} s |",
                  f"| acquisition throughput (package bytes sent / wall time) | {mib(sent / max(fan['acquire_s'], 1e-9))}/s |",
                  f"| whole deployment (acquire + extract on every agent) | {fan['total_s']:.2f} s |",
                  f"| package bytes sent (task log) | {mib(sent)} ({sent / max(fan['package_bytes'], 1):.2f} × the package) |",
                  f"| loopback bytes during the deployment | {mib(fan['wire'])} ({fan['wire'] / max(sent, 1):.3f} × the package bytes sent) |",
                  ""]
    result = figures.get("delta")
    if result:
        delta_bytes = sum(result["deltas"])
        lines += [f"## {arguments.delta_mib} MiB package, 1 % changed, to one agent", "",
                  "| Figure | Value |", "|---|---|",
                  f"| first version (full) acquisition | {result['first']['acquire_s']:.2f} s, loopback {mib(result['first']['wire'])} |",
                  f"| delta sent | {delta_bytes} bytes = {100 * delta_bytes / max(result['package_bytes'], 1):.2f} % of {mib(result['package_bytes'])} |",
                  f"| loopback bytes during the deployment | {mib(result['wire'])} ({100 * result['wire'] / max(result['package_bytes'], 1):.2f} % of the package) |",
                  f"| acquisition wall time (signature, diff, send, patch and verify) | {result['acquire_s']:.2f} s |",
                  f"| whole deployment | {result['total_s']:.2f} s |", ""]
        if not result["deltas"]:
            lines += ["**No delta was sent**; the acquisition log said:", "", "```",
                      "\n".join(line for line in result["log"].splitlines() if "package" in line.lower())[-2000:],
                      "```", ""]
    if figures.get("error"):
        lines += [f"**The run failed**: {figures['error']}", ""]
    text = "\n".join(lines)
    os.makedirs("bench/results", exist_ok=True)
    with open(f"bench/results/{today}-acquire.md", "w") as file:
        file.write(text)
    print(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuttle", required=True)
    parser.add_argument("--revision", default="unknown")
    parser.add_argument("--command", default="bash bench/acquire.sh")
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--delta-mib", type=int, default=100)
    arguments = parser.parse_args()
    processes = common.Processes()
    figures = {"load": common.load_average()}
    try:
        with tempfile.TemporaryDirectory(prefix="cuttle-acquire-bench-") as work:
            figures["fan"] = fan_out(arguments.cuttle, processes, work, arguments.size_mib, arguments.agents)
            figures["delta"] = delta(arguments.cuttle, processes, work, arguments.delta_mib)
    except common.BenchError as error:
        figures["error"] = str(error)
        print(f"error: {error}", file=sys.stderr)
    finally:
        processes.stop()
    report(arguments, figures)


if __name__ == "__main__":
    main()
