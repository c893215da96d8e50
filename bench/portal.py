#!/usr/bin/env python3
"""Measures the web portal's pages on a server with 1,000 projects; called by bench/portal.sh.

Setup (through the API): 3 environments, 10 project groups, N projects (1,000 by default) with
a one-step process on the built-in worker; the first 100 get a release deployed to the first
environment, so the dashboard, the tasks list and the project pages have data. Then the bench
signs in through the portal's own form and fetches each main page R times over one keep-alive
connection: the first fetch after the data changed (nothing cached), and the p50/p99 of the
rest, client-side on loopback (so the figure is the server's time plus one loopback round trip).

Target (issue 7): every page under 100 ms on the server. Writes bench/results/<date>-portal.md.
"""
import argparse
import datetime
import http.client
import os
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agents as common  # noqa: E402
import deploy  # noqa: E402

PASSWORD = "portal bench password"


def setup(api, projects):
    # The server starts with the environment `common.ENVIRONMENT` (the first of the lifecycle).
    environments = [api.call("POST", "/api/Spaces-1/environments", {"Name": name})
                    for name in ["Staging", "Live"]]
    groups = [api.call("POST", "/api/Spaces-1/projectgroups", {"Name": f"Group {index:02}"})
              for index in range(10)]
    created = []
    for index in range(projects):
        body = {"Name": f"Project {index:04}", "ProjectGroupId": groups[index % len(groups)]["Id"]}
        project = api.call("POST", "/api/Spaces-1/projects", body)
        created.append(project)
        if index < 100:
            process = api.call("GET", f"/api/Spaces-1/projects/{project['Id']}/deploymentprocesses")
            process["Steps"] = [deploy.server_step("Echo", "echo hi")]
            api.call("PUT", f"/api/Spaces-1/projects/{project['Id']}/deploymentprocesses", process)
            api.call("POST", "/api/Spaces-1/releases/create/v1",
                     {"ProjectName": project["Name"], "ReleaseVersion": "1.0.0"})
    tasks = [deploy.deploy(api, project["Name"], common.ENVIRONMENT) for project in created[:100]]
    for task_id in tasks:
        deploy.wait_task(api, task_id)
    release = api.call("GET", f"/api/Spaces-1/projects/{created[0]['Id']}/releases")["Items"][0]
    return created[0], release, tasks[0], environments


def sign_in(port):
    connection = http.client.HTTPConnection("127.0.0.1", port)
    body = urllib.parse.urlencode({"username": "admin", "password": PASSWORD, "next": "/app"})
    connection.request("POST", "/app/sign-in", body,
                       {"Content-Type": "application/x-www-form-urlencoded"})
    response = connection.getresponse()
    response.read()
    if response.status != 303:
        raise common.BenchError(f"sign-in answered {response.status}")
    cookies = [header.split(";", 1)[0] for name, header in response.getheaders()
               if name.lower() == "set-cookie"]
    return "; ".join(cookies), connection


def fetch(connection, cookie, path):
    started = time.perf_counter()
    connection.request("GET", path, headers={"Cookie": cookie})
    response = connection.getresponse()
    body = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status != 200:
        raise common.BenchError(f"{path} answered {response.status}: {body[:300]!r}")
    return elapsed, len(body)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuttle", required=True)
    parser.add_argument("--revision", default="unknown")
    parser.add_argument("--command", default="bash bench/portal.sh")
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=30)
    arguments = parser.parse_args()
    os.environ["CUTTLE_BOOTSTRAP_ADMIN_PASSWORD"] = PASSWORD
    processes = common.Processes()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="cuttle-portal-bench-") as work:
            server = deploy.start_server(arguments.cuttle, processes, work, "portal", ["--task-cap", "20"])
            started = time.monotonic()
            project, release, task_id, environments = setup(server.api, arguments.projects)
            setup_seconds = time.monotonic() - started
            port = int(server.url.rsplit(":", 1)[1])
            cookie, connection = sign_in(port)
            project_path = f"/app/Spaces-1/projects/{project['Id']}"
            pages = [
                ("dashboard", "/app/Spaces-1"),
                ("projects", "/app/Spaces-1/projects"),
                ("project overview", project_path),
                ("process", f"{project_path}/process"),
                ("step editor", f"{project_path}/process/steps/0"),
                ("variables", f"{project_path}/variables"),
                ("project settings", f"{project_path}/settings"),
                ("create release", f"{project_path}/releases/new"),
                ("release", f"/app/Spaces-1/releases/{release['Id']}"),
                ("deploy", f"/app/Spaces-1/releases/{release['Id']}/deploy"),
                ("tasks", "/app/Spaces-1/tasks"),
                ("task", f"/app/Spaces-1/tasks/{task_id}"),
                ("environments", "/app/Spaces-1/infrastructure/environments"),
                ("targets", "/app/Spaces-1/infrastructure/targets"),
                ("packages", "/app/Spaces-1/library/packages"),
                ("lifecycles", "/app/Spaces-1/library/lifecycles"),
                ("API keys", "/app/Spaces-1/configuration"),
            ]
            for name, path in pages:
                # A write before the first fetch empties the API's response cache.
                server.api.call("PUT", f"/api/Spaces-1/environments/{environments[0]['Id']}", environments[0])
                first, size = fetch(connection, cookie, path)
                rest = [fetch(connection, cookie, path)[0] for _ in range(arguments.repeats)]
                figures = common.summary(rest)
                rows.append((name, path, first, figures["p50"], figures["p99"], size))
            rss = server.rss()
    except common.BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        setup_seconds, rss = float("nan"), float("nan")
    finally:
        processes.stop()
    slowest = max((max(row[2], row[4]) for row in rows), default=float("nan"))
    lines = [
        f"# Portal pages — {datetime.date.today().isoformat()}",
        "",
        f"- Machine: {common.machine()}",
        f"- Revision: {arguments.revision}",
        f"- Command: `{arguments.command}`",
        f"- Data: {arguments.projects} projects in 10 groups, 3 environments, 100 releases deployed "
        f"(setup took {setup_seconds:.0f} s); server RSS after the run {rss:.1f} MiB",
        "",
        f"Each page fetched once right after a write (nothing cached), then {arguments.repeats} times "
        "over one keep-alive connection; milliseconds on the client, over loopback.",
        "",
        "| Page | first ms | p50 ms | p99 ms | HTML KiB |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, path, first, p50, p99, size in rows:
        lines.append(f"| {name} (`{path}`) | {first:.1f} | {p50:.1f} | {p99:.1f} | {size / 1024:.0f} |")
    lines += ["", f"Target: every page under 100 ms — slowest first or p99 fetch {slowest:.1f} ms: "
              f"{common.verdict(slowest < 100)}.", ""]
    text = "\n".join(lines)
    print(text)
    results = os.path.join(common.ROOT, "bench", "results")
    os.makedirs(results, exist_ok=True)
    with open(os.path.join(results, f"{datetime.date.today().isoformat()}-portal.md"), "w") as output:
        output.write(text)


if __name__ == "__main__":
    main()
