#!/usr/bin/env python3
"""Regenerates crates/cuttle/link/agent-hot.ld, the linker script that puts the code an agent runs
while it idles and runs scripts at the front of the binary's text.

Why: the kernel maps a binary's code into a process 64 KiB at a time around each page fault
("fault-around"), and the agent's code is scattered through the 26 MB of text the server
needs. Every scattered function it touches brings 64 KiB into its RSS: 8 MiB of code for an
agent that runs about 2 MiB of it. Gathering those functions into one block makes the idle
agent's RSS about 6 MiB smaller. ARCHITECTURE.md ("Agent code layout") says more.

How: builds the release binary, starts a server and a listening and a polling agent (bench/agents.py
does the plumbing) with both agents under valgrind's callgrind, lets the server health-check
them, runs a few scripts on both, stops the agents, and collects every function of the cuttle
binary that callgrind saw run. Each becomes an input-section pattern with its hashes replaced
by `*` (a v0 name's crate hashes `Cs…_`), so the script still matches after a dependency or the
toolchain changes; a renamed function simply drops out of the block until the next regeneration.

Usage: python3 scripts/agent-layout.py [--cuttle target/release/cuttle]
Needs valgrind. Takes about a minute after the build.
"""

import argparse
import glob
import os
import re
import signal
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import agents  # noqa: E402  (bench/agents.py: server, agents and tasks on 127.0.0.1)

OUTPUT = os.path.join(ROOT, "crates", "cuttle", "link", "agent-hot.ld")

# Scripts that take the executor's common paths: plain output, stderr, a service message
# (an output variable), the bash helpers.
SCRIPTS = [
    "echo hi",
    "echo to-stderr >&2; echo '##octopus[setVariable name=\"QWxwaGE=\" value=\"b25l\"]'",
    "set_octopusvariable Beta two; echo \"$(get_octopusvariable Octopus.Machine.Name)\"",
]


def callgrind_wrapper(output_directory):
    def wrap(name, directory):
        if name != "agent":
            return []
        return ["valgrind", "--tool=callgrind", "--demangle=no", "--dump-instr=no", "--compress-strings=no",
                f"--callgrind-out-file={output_directory}/{os.path.basename(directory)}.%p.callgrind"]
    return wrap


def profile(cuttle, output_directory):
    processes = agents.Processes()
    with tempfile.TemporaryDirectory(prefix="cuttle-agent-layout-") as work:
        server = agents.Server(cuttle, processes, work, "server", wrap=callgrind_wrapper(output_directory))
        try:
            fleet = (agents.add_agents(server, "listening", 1, polling=False, timeout=300)
                     + agents.add_agents(server, "polling", 1, polling=True, timeout=300))
            server.wait_idle(timeout=600)  # the server health-checks new targets by itself
            machine_ids = [agent.machine_id for agent in fleet]
            for _ in range(2):
                for body in SCRIPTS:
                    agents.run_task(server.api, machine_ids, poll_interval=0.05, timeout=300, script=body)
            # SIGTERM: the agent shuts down in order, and callgrind writes its profile on exit.
            for agent in fleet:
                agent.process.send_signal(signal.SIGTERM)
            for agent in fleet:
                agent.process.wait(timeout=120)
        finally:
            server.stop()


def functions_run(output_directory, binary_path):
    """Names of the binary's functions that callgrind saw run, in first-seen order."""
    names = {}
    for path in sorted(glob.glob(os.path.join(output_directory, "*.callgrind"))):
        current_object = None
        with open(path, errors="replace") as file:
            for line in file:
                if line.startswith("ob="):
                    current_object = line[3:].strip()
                elif line.startswith("fn=") and current_object == binary_path:
                    names.setdefault(re.sub(r"'\d+$", "", line[3:].strip()), None)
    return list(names)


def with_aliases(names, binary_path):
    """`names` and every other name of the same code: functions LLVM found identical share one
    address and one section (named after one of them), and callgrind reports whichever name it
    picks."""
    listing = subprocess.run(["nm", "--defined-only", binary_path], capture_output=True, text=True, check=True).stdout
    names_at = {}
    address_of = {}
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] in "tTwW":
            names_at.setdefault(fields[0], []).append(fields[2])
            address_of[fields[2]] = fields[0]
    result = {}
    for name in names:
        for alias in names_at.get(address_of.get(name), [name]):
            result.setdefault(alias, None)
    return list(result)


def section_pattern(name):
    """The input-section pattern for a function: `.text` and its name, with what changes from
    build to build made a wildcard: a v0 name's crate hashes (`Cs…_`) and, since those differ in
    length, its back-references (`B…_`, offsets into the name), and LLVM's `.llvm.<n>` suffix of
    internal functions. Legacy (`_ZN`) names hide generic arguments in their hash, so a pattern
    for one would match every instantiation: those are left where they are (.cargo/config.toml
    asks for v0)."""
    name = re.sub(r"\.llvm\.\d+$", "*", name)
    if name.startswith("_R"):
        name = re.sub(r"Cs[0-9A-Za-z]*_", "Cs*_", name)
        name = re.sub(r"B[0-9A-Za-z]*_", "B*_", name)
    elif name.startswith("_ZN") or name.startswith("0x"):  # 0x…: code without a symbol
        return None
    if re.search(r"[\[\]\s\"?]", name):
        return None  # not something a linker-script pattern can spell; leave it where it is
    # `.text*.`: cold functions (`#[cold]`, like `RawVec::grow_one`) sit in `.text.unlikely.<name>`.
    return ".text*." + re.sub(r"\*+", "*", name)


def write_script(patterns, command):
    os.makedirs(os.path.dirname(OUTPUT), exist_ok=True)
    with open(OUTPUT, "w") as file:
        file.write("/* The code a Cuttle agent runs while it idles and runs scripts, gathered at the front of\n")
        file.write(" * the text so the kernel maps little of the binary into an agent (ARCHITECTURE.md,\n")
        file.write(f" * \"Agent code layout\"). Generated by `{command}`; do not edit. */\n")
        # One `.text` with the agent's functions first and everything else after, in the order the
        # linker would have used; one section, so debuggers and profilers (valgrind reads only
        # `.text`) see the binary as before.
        file.write("SECTIONS\n{\n  .text :\n  {\n    HIDDEN(__cuttle_agent_code_start = .);\n    *(\n")
        for pattern in patterns:
            file.write(f"      {pattern}\n")
        file.write("    )\n    HIDDEN(__cuttle_agent_code_end = .);\n    *(.text .text.*)\n  }\n}\n")
        file.write("INSERT BEFORE .init;\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuttle", help="profile this binary instead of building target/release/cuttle")
    arguments = parser.parse_args()
    if subprocess.run(["valgrind", "--version"], capture_output=True).returncode != 0:
        sys.exit("valgrind is needed: apt-get install valgrind")
    cuttle = arguments.cuttle
    if cuttle is None:
        subprocess.run(["cargo", "build", "--release", "--locked", "-q", "-p", "cuttle"], cwd=ROOT, check=True)
        target_directory = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        cuttle = os.path.join(target_directory, "release", "cuttle")
    cuttle = os.path.realpath(cuttle)
    with tempfile.TemporaryDirectory(prefix="cuttle-callgrind-") as output_directory:
        profile(cuttle, output_directory)
        names = with_aliases(functions_run(output_directory, cuttle), cuttle)
    if len(names) < 100:
        sys.exit(f"callgrind saw only {len(names)} functions of {cuttle}: the profile did not work")
    patterns = sorted({pattern for pattern in map(section_pattern, names) if pattern})
    write_script(patterns, "python3 scripts/agent-layout.py")
    print(f"{len(names)} names of functions run (with their aliases), {len(patterns)} patterns written to {os.path.relpath(OUTPUT, ROOT)}")


if __name__ == "__main__":
    main()
