#!/usr/bin/env python3
"""Measures the built-in feed with one large package; called by bench/packages.sh.

1. Makes `Bench.Large.1.0.0.zip`: one entry of random bytes, stored without compression (so the
   archive is as large as its content and validation reads every byte), in a scratch directory.
2. Starts `cuttle server` on 127.0.0.1 with a fresh data directory in that scratch directory.
3. Pushes the file with `curl -F fileToUpload=@…` to `/api/Spaces-1/packages/raw` (what the
   Octopus client sends), then downloads it from `…/packages/{id}/raw` to /dev/null, checking
   status, size and the SHA-256 the server reports.
4. Reports wall-clock MB/s for both, the server's own split of the upload (its `package
   uploaded` log line: receive = network + hashing + writing + fsync, validate = reading the
   archive through), the server's RSS before and its peak (`VmHWM`) after each step, and the
   load average, since other builds on the machine distort the figures.

The server runs in its own process group and is killed on the way out, also on failure.
Writes bench/results/<date>-packages.md and prints it.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
API_KEY = "API-PACKAGEBENCHPACKAGEBENCHPACKAGE01"
PACKAGE_FILE = "Bench.Large.1.0.0.zip"
PACKAGE_ID = "packages-Bench.Large.1.0.0"


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/{pid}/status")


def mib(kib):
    return kib / 1024


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


def make_package(path, size_bytes):
    """A stored zip of random bytes; returns its SHA-256. Random, so nothing compresses."""
    chunk = 8 * 1024 * 1024
    digest = hashlib.sha256()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        with archive.open("payload.bin", "w", force_zip64=True) as entry:
            remaining = size_bytes
            while remaining:
                block = os.urandom(min(chunk, remaining))
                entry.write(block)
                remaining -= len(block)
    with open(path, "rb") as file:
        while block := file.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def wait_for_line(log_path, pattern, process, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}; see {log_path}")
        with open(log_path, errors="replace") as file:
            # The server's log may carry colour codes around field names.
            match = re.search(pattern, re.sub(r"\x1b\[[0-9;]*m", "", file.read()))
        if match:
            return match
        time.sleep(0.05)
    raise RuntimeError(f"no line matching {pattern!r} in {log_path} after {timeout} s")


def curl(arguments):
    """Runs curl; returns (status, seconds) from its --write-out."""
    output = subprocess.run(
        ["curl", "-sS", "-H", f"X-Octopus-ApiKey: {API_KEY}", "-w", "%{http_code} %{time_total}"] + arguments,
        check=True, capture_output=True, text=True).stdout
    status, seconds = output.rsplit(" ", 1)[0][-3:], float(output.rsplit(" ", 1)[1])
    return int(status), seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuttle", required=True)
    parser.add_argument("--revision", default="unknown")
    parser.add_argument("--command", default="bash bench/packages.sh")
    parser.add_argument("--size-mib", type=int, default=1024, help="the package's size (default 1024)")
    parser.add_argument("--work", help="scratch directory (default: a new one under the repository's bench/)")
    arguments = parser.parse_args()

    size_bytes = arguments.size_mib * 1024 * 1024
    # Under bench/ rather than /tmp: /tmp may be a RAM disk, which would hide the disk's cost.
    work = arguments.work or tempfile.mkdtemp(prefix="packages-bench-", dir=os.path.join(ROOT, "bench"))
    server = None
    try:
        package_path = os.path.join(work, PACKAGE_FILE)
        print(f"making a {arguments.size_mib} MiB package…", flush=True)
        expected_hash = make_package(package_path, size_bytes)
        archive_bytes = os.path.getsize(package_path)

        log_path = os.path.join(work, "server.log")
        environment = dict(os.environ, CUTTLE_BOOTSTRAP_API_KEY=API_KEY, CUTTLE_LOG="info")
        with open(log_path, "w") as log:
            server = subprocess.Popen(
                [arguments.cuttle, "server", "--data-dir", os.path.join(work, "data"),
                 "--listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0"],
                stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True)
        address = wait_for_line(log_path, r"Cuttle is listening on (http://\S+)", server, 60).group(1)
        time.sleep(1)
        rss_idle = mib(status_kib(server.pid, "VmRSS"))
        load_before = load_average()

        print("uploading…", flush=True)
        response_path = os.path.join(work, "upload.json")
        status, upload_seconds = curl(["-o", response_path, "-F", f"fileToUpload=@{package_path}",
                                       f"{address}/api/Spaces-1/packages/raw"])
        with open(response_path) as file:
            response = json.load(file)
        if status != 200 or response.get("Hash") != expected_hash or response.get("PackageSizeBytes") != archive_bytes:
            raise RuntimeError(f"upload answered {status}: {json.dumps(response)[:500]}")
        peak_after_upload = mib(status_kib(server.pid, "VmHWM"))
        split = wait_for_line(
            log_path, r"receive_ms=(\d+) validate_ms=(\d+) store_ms=(\d+)", server, 10)
        receive_ms, validate_ms, store_ms = (int(value) for value in split.groups())

        print("downloading…", flush=True)
        status, download_seconds = curl(["-o", "/dev/null", f"{address}/api/Spaces-1/packages/{PACKAGE_ID}/raw"])
        if status != 200:
            raise RuntimeError(f"download answered {status}")
        peak_after_download = mib(status_kib(server.pid, "VmHWM"))
        load_after = load_average()
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        if not arguments.work:
            shutil.rmtree(work, ignore_errors=True)

    megabytes = archive_bytes / 1e6
    date = datetime.date.today().isoformat()
    lines = [
        f"# Packages — {date}",
        "",
        f"- Machine: {machine()}",
        f"- Revision: {arguments.revision}",
        f"- Command: `{arguments.command}`",
        f"- Load average (1, 5, 15 min) before the upload: {load_before}; after the download: {load_after}",
        "",
        f"## One {arguments.size_mib} MiB package (`{PACKAGE_FILE}`, random bytes, stored zip: {archive_bytes:,} bytes)",
        "",
        "| | seconds | MB/s |",
        "| --- | ---: | ---: |",
        f"| upload with `curl -F fileToUpload=@…` (until the answer) | {upload_seconds:.2f} | {megabytes / upload_seconds:.0f} |",
        f"| … server: receiving (network, SHA-256, writing, fsync) | {receive_ms / 1000:.2f} | {megabytes / max(receive_ms, 1) * 1000:.0f} |",
        f"| … server: validating (reading the archive through) | {validate_ms / 1000:.2f} | {megabytes / max(validate_ms, 1) * 1000:.0f} |",
        f"| … server: storing (rename, record) | {store_ms / 1000:.2f} | |",
        f"| download with curl to /dev/null | {download_seconds:.2f} | {megabytes / download_seconds:.0f} |",
        "",
        "| server memory | MiB |",
        "| --- | ---: |",
        f"| RSS after start (`VmRSS`) | {rss_idle:.1f} |",
        f"| peak RSS after the upload (`VmHWM`) | {peak_after_upload:.1f} |",
        f"| peak RSS after the download (`VmHWM`) | {peak_after_download:.1f} |",
        "",
        f"Target: peak RSS under 100 MiB while a large package streams through — "
        f"{'met' if peak_after_download < 100 else '**not met**'}.",
        "",
    ]
    report = "\n".join(lines)
    results = os.path.join(ROOT, "bench", "results", f"{date}-packages.md")
    with open(results, "w") as file:
        file.write(report)
    print(report)


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, subprocess.CalledProcessError) as error:
        print(f"packages benchmark failed: {error}", file=sys.stderr)
        sys.exit(1)
