#!/usr/bin/env python3
"""Measures Cuttle's foundation with wrk; called by bench/run.sh after the release builds.

Cold start (spawn to first answered GET /api), idle RSS, and GET /api/Spaces-1/projects?take=30
with 1,000 projects under wrk, on SQLite and on PostgreSQL, beside a minimal axum server
measured the same way in the same run. Writes bench/results/<date>.md.
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CUTTLE = os.path.join(ROOT, "target", "release", "cuttle")
HELLO = os.path.join(ROOT, "bench", "hello-axum", "target", "release", "hello-axum")
API_KEY = "API-BENCHMARKBENCHMARKBENCHMARK000001"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.001)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def start_cuttle(data_dir, port, database_url=None):
    command = [CUTTLE, "server", "--data-dir", data_dir, "--listen", f"127.0.0.1:{port}"]
    if database_url:
        command += ["--database-url", database_url]
    environment = dict(os.environ, CUTTLE_BOOTSTRAP_API_KEY=API_KEY, CUTTLE_LOG="warn")
    started = time.monotonic()
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(f"http://127.0.0.1:{port}/api")
    return process, (time.monotonic() - started) * 1000


def stop(process):
    process.terminate()
    process.wait(timeout=15)


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def request(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"X-Octopus-ApiKey": API_KEY, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as response:
        return json.loads(response.read() or b"null")


def seed_projects(port, count=1000):
    def create(number):
        request(port, "POST", "/api/Spaces-1/projects", {"Name": f"Project {number:04d}", "Description": "A benchmark project"})
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(count)))
    total = request(port, "GET", "/api/Spaces-1/projects?take=1")["TotalResults"]
    assert total == count, total


def wrk(url, duration, headers=(), script=None):
    command = ["wrk", "-t2", "-c16", f"-d{duration}s", "--latency"]
    if script:
        command += ["-s", script]
    for header in headers:
        command += ["-H", header]
    output = subprocess.run(command + [url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))

    def percentile(name):
        match = re.search(rf"^\s+{name}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {"rps": rps, "p50": percentile("50"), "p99": percentile("99"),
            "non_2xx": int(errors.group(1)) if errors else 0, "command": " ".join(command + [url])}


def cold_starts(runs=5):
    first, restart = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as data_dir:
            port = free_port()
            process, elapsed = start_cuttle(data_dir, port)
            first.append(elapsed)
            stop(process)
            process, elapsed = start_cuttle(data_dir, free_port())
            restart.append(elapsed)
            stop(process)
    return statistics.median(first), statistics.median(restart)


def measure_cuttle(duration, database_url=None):
    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        process, _ = start_cuttle(data_dir, port, database_url)
        try:
            time.sleep(1)
            idle = rss_mib(process.pid)
            seed_projects(port)
            url = f"http://127.0.0.1:{port}/api/Spaces-1/projects?take=30"
            wrk(url, 2, [f"X-Octopus-ApiKey: {API_KEY}"])  # warm-up
            result = wrk(url, duration, [f"X-Octopus-ApiKey: {API_KEY}"])
            result["uncached"] = wrk(url, duration, [f"X-Octopus-ApiKey: {API_KEY}"],
                                     os.path.join(ROOT, "bench", "unique-query.lua"))
            result["idle_rss"] = idle
            result["loaded_rss"] = rss_mib(process.pid)
            return result
        finally:
            stop(process)


def measure_hello(duration):
    port = free_port()
    process = subprocess.Popen([HELLO, f"127.0.0.1:{port}"])
    try:
        wait_for(f"http://127.0.0.1:{port}/")
        wrk(f"http://127.0.0.1:{port}/", 2)
        return wrk(f"http://127.0.0.1:{port}/", duration)
    finally:
        stop(process)


def postgres_schema_url(database_url):
    schema = f"cuttle_bench_{uuid.uuid4().hex}"
    subprocess.run(["psql", database_url, "-Xqc", f"CREATE SCHEMA {schema}"], check=True)
    separator = "&" if "?" in database_url else "?"
    return schema, f"{database_url}{separator}options=-c%20search_path%3D{schema}"


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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--database-url", required=True)
    arguments = parser.parse_args()

    first_start, restart = cold_starts()
    hello = measure_hello(arguments.duration)
    sqlite = measure_cuttle(arguments.duration)
    schema, url = postgres_schema_url(arguments.database_url)
    try:
        postgres = measure_cuttle(arguments.duration, url)
    finally:
        subprocess.run(["psql", arguments.database_url, "-Xqc", f"DROP SCHEMA {schema} CASCADE"], check=True)

    def row(name, result):
        ratio = result["rps"] / hello["rps"]
        return (f"| {name} | {result['rps']:,.0f} | {ratio:.0%} | {result['p50']:.2f} | {result['p99']:.2f} "
                f"| {result['non_2xx']} |")

    lines = [
        f"# Foundation benchmark, {datetime.date.today().isoformat()}",
        "",
        f"Machine: {machine()}. Command: `bash bench/run.sh {arguments.duration}` (release build; wrk and the",
        "server share the machine's cores).",
        "",
        "| Measure | Result | Target |",
        "| --- | --- | --- |",
        f"| Cold start to first answered `GET /api`, first start (migrations, bootstrap, argon2), median of 5 | {first_start:.0f} ms | < 200 ms |",
        f"| Cold start to first answered `GET /api`, restart on existing data, median of 5 | {restart:.0f} ms | < 200 ms |",
        f"| Idle RSS after start, SQLite | {sqlite['idle_rss']:.1f} MiB | < 30 MiB |",
        f"| Idle RSS after start, PostgreSQL | {postgres['idle_rss']:.1f} MiB | < 30 MiB |",
        f"| RSS after the load, SQLite / PostgreSQL | {sqlite['loaded_rss']:.1f} / {postgres['loaded_rss']:.1f} MiB | |",
        "",
        f"`GET /api/Spaces-1/projects?take=30` with 1,000 projects, authenticated with an API key; wrk, 2 threads,",
        f"16 connections, {arguments.duration} s after a 2 s warm-up:",
        "",
        "| Server | Requests/s | Of hello-world | p50 ms | p99 ms | Non-2xx |",
        "| --- | --- | --- | --- | --- | --- |",
        row("axum hello-world (`GET /`)", hello),
        row("Cuttle on SQLite", sqlite),
        row("Cuttle on PostgreSQL", postgres),
        row("Cuttle on SQLite, every answer computed (unique URLs)", sqlite["uncached"]),
        row("Cuttle on PostgreSQL, every answer computed (unique URLs)", postgres["uncached"]),
        "",
        "Repeated reads are answered from the response cache (valid until the next committed change);",
        "the \"every answer computed\" rows add an ignored, unique query parameter to each request",
        "(`bench/unique-query.lua`), so each one authenticates, queries the store and serializes.",
        "",
        f"wrk command (Cuttle): `{sqlite['command'].replace(API_KEY, 'API-…')}`",
    ]
    report = "\n".join(lines) + "\n"
    path = os.path.join(ROOT, "bench", "results", f"{datetime.date.today().isoformat()}-foundation.md")
    with open(path, "w") as file:
        file.write(report)
    print(report)


if __name__ == "__main__":
    main()
