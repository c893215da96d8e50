// Drives a real Cuttle server, with a real agent, through the unmodified npm package
// @octopusdeploy/api-client (pinned in package-lock.json), sending what the official GitHub
// actions send: push-package, create-release, deploy-release and await-task. Every field the
// client or an action dereferences (marked REQ in shared/spec/octopus-api.md) is checked for
// presence and type on the answers it reads.
//
// Run by crates/cuttle/tests/it/api_client.rs, which starts the server and the agent and sets:
//   CUTTLE_URL        the server's base URL
//   CUTTLE_API_KEY    an admin API key
//   CUTTLE_SPACE      the space's name (the actions take a name, never an id)
//   CUTTLE_PACKAGES   a directory holding first/hello-web.1.0.0.zip and
//                     rebuilt/hello-web.1.0.0.zip (same name, other content)
//   CUTTLE_TARGET     the name of the agent's deployment target (role "web", in Development
//                     and Test)
// The tests below run in order and share what they create.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");

const {
  BuildInformationRepository,
  Client,
  DeploymentProcessRepository,
  DeploymentRepository,
  EnvironmentRepository,
  EnvironmentV2Repository,
  LifecycleRepository,
  NewProject,
  OverwriteMode,
  PackageRepository,
  ProjectGroupRepository,
  ProjectRepository,
  ReleaseRepository,
  ServerTaskRepository,
  ServerTaskWaiter,
  SpaceRepository,
  SpaceServerTaskRepository,
  checkForCapability,
  resolveSpaceId,
  userGetCurrent,
} = require("@octopusdeploy/api-client");

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} must be set (crates/cuttle/tests/it/api_client.rs sets it)`);
  }
  return value;
}

const serverUrl = required("CUTTLE_URL");
const apiKey = required("CUTTLE_API_KEY");
const spaceName = required("CUTTLE_SPACE");
const packagesDirectory = required("CUTTLE_PACKAGES");
const targetName = required("CUTTLE_TARGET");

// How often the await-task waiter polls. The action polls every 10 s; the server's answers do
// not depend on the pace, and a short one keeps the test quick.
const POLL_MS = 250;
const TASK_TIMEOUT_MS = 120_000;

// The user agents the official actions send ("ts-octopusdeploy " + userAgentApp).
const USER_AGENTS = {
  push: "GitHubActions (package;push;v3)",
  createRelease: "GitHubActions (release;create;v3)",
  deploy: "GitHubActions (release;deploy;v3)",
  buildInformation: "GitHubActions (build-information;push;v1)",
  awaitTask: "GitHubActions await-task-action",
};

function connect(userAgentApp, key = apiKey) {
  return Client.create({ instanceURL: serverUrl, apiKey: key, userAgentApp });
}

// ---- REQ field checks -------------------------------------------------------------------

function describeValue(value) {
  return Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
}

/**
 * Asserts that `object` has each field of `shape` with the given type: "string" (non-empty),
 * "number", "boolean", "array", "object" or "string?" (a string, possibly empty).
 */
function assertShape(object, shape, where) {
  assert.ok(
    object !== null && typeof object === "object",
    `${where}: expected an object, got ${describeValue(object)}: ${JSON.stringify(object)}`,
  );
  for (const [field, type] of Object.entries(shape)) {
    const value = object[field];
    const actual = describeValue(value);
    const context = `${where}.${field} (${type}) in ${JSON.stringify(object)}`;
    switch (type) {
      case "string":
        assert.equal(actual, "string", `${context}: got ${actual}`);
        assert.notEqual(value, "", `${context}: empty`);
        break;
      case "string?":
        assert.equal(actual, "string", `${context}: got ${actual}`);
        break;
      case "array":
      case "object":
      case "number":
      case "boolean":
        assert.equal(actual, type, `${context}: got ${actual}`);
        break;
      default:
        throw new Error(`unknown type ${type}`);
    }
  }
}

/** A collection whose items have `itemShape`. */
function assertCollection(collection, itemShape, where) {
  assertShape(collection, { Items: "array" }, where);
  collection.Items.forEach((item, index) => assertShape(item, itemShape, `${where}.Items[${index}]`));
}

const NAMED = { Id: "string", Name: "string" };
const TASK = { Id: "string", State: "string", IsCompleted: "boolean" };
const TASK_STATES = ["Queued", "Executing", "Cancelling", "Success", "Failed", "Canceled", "TimedOut"];

function assertTask(task, where) {
  assertShape(task, TASK, where);
  assert.ok(TASK_STATES.includes(task.State), `${where}.State ${task.State} is not a task state`);
  const terminal = ["Success", "Failed", "Canceled", "TimedOut"].includes(task.State);
  assert.equal(task.IsCompleted, terminal, `${where}: IsCompleted disagrees with State ${task.State}`);
}

/**
 * Asserts what the client made of an error answer (an OctopusError with the status, its
 * message `ErrorMessage + "\n" + Errors`), then reads the same answer's body directly and
 * checks `{ErrorMessage: non-empty string, Errors: array}`.
 */
async function assertClientError(promise, status, mentions, rawRequest) {
  let error;
  try {
    await promise;
  } catch (caught) {
    error = caught;
  }
  assert.ok(error, `expected the client to fail with ${status}`);
  assert.equal(error.StatusCode, status, `status of ${error.message}`);
  assert.ok(!error.message.startsWith("undefined"), `ErrorMessage missing: ${error.message}`);
  assert.ok(
    !error.message.startsWith("Request failed with status code"),
    `the error body is not JSON: ${error.message}`,
  );
  assert.ok(error.message.includes(mentions), `expected ${JSON.stringify(mentions)} in ${error.message}`);
  if (rawRequest) {
    const response = await fetch(`${serverUrl}${rawRequest.path}`, {
      method: rawRequest.method ?? "GET",
      headers: { "X-Octopus-ApiKey": rawRequest.apiKey ?? apiKey, "Content-Type": "application/json" },
      body: rawRequest.body === undefined ? undefined : JSON.stringify(rawRequest.body),
    });
    assert.equal(response.status, status);
    const body = await response.json();
    assertShape(body, { ErrorMessage: "string", Errors: "array" }, `${status} body`);
    body.Errors.forEach((item, index) => assert.equal(typeof item, "string", `Errors[${index}]`));
  }
  return error;
}

// ---- State shared by the tests, in order --------------------------------------------------

const state = {};

async function waitForTask(taskId, onPoll) {
  // As await-task-action does: the client's waiter, then the task's final State.
  const client = await connect(USER_AGENTS.awaitTask);
  const waiter = new ServerTaskWaiter(client, spaceName);
  const polled = [];
  const task = await waiter.waitForServerTaskToComplete(taskId, POLL_MS, TASK_TIMEOUT_MS, (polledTask) => {
    assertTask(polledTask, `polled task ${taskId}`);
    polled.push(polledTask.State);
    if (onPoll) onPoll(polledTask);
  });
  assert.ok(task, `task ${taskId} did not complete within ${TASK_TIMEOUT_MS} ms (states: ${polled})`);
  assertTask(task, `task ${taskId}`);
  return task;
}

async function rawLog(taskId) {
  const client = await connect(USER_AGENTS.awaitTask);
  const log = await new SpaceServerTaskRepository(client, spaceName).getRaw(taskId);
  assert.equal(typeof log, "string");
  return log;
}

/** deploy-release-action: the v1 command, then the deployments and environments it reads. */
async function deployRelease(projectName, releaseVersion, environmentNames) {
  const client = await connect(USER_AGENTS.deploy);
  const deployments = new DeploymentRepository(client, spaceName);
  const response = await deployments.create({
    spaceName,
    ProjectName: projectName,
    ReleaseVersion: releaseVersion,
    EnvironmentNames: environmentNames,
    Variables: {},
  });
  assertShape(response, { DeploymentServerTasks: "array" }, "deploy response");
  assert.equal(response.DeploymentServerTasks.length, environmentNames.length);
  response.DeploymentServerTasks.forEach((item, index) =>
    assertShape(item, { DeploymentId: "string", ServerTaskId: "string" }, `DeploymentServerTasks[${index}]`),
  );
  const ids = response.DeploymentServerTasks.map((item) => item.DeploymentId);
  const listed = await deployments.list({ take: ids.length, ids });
  assertCollection(listed, { Id: "string", TaskId: "string", EnvironmentId: "string" }, "deployments");
  const results = [];
  for (const { DeploymentId, ServerTaskId } of response.DeploymentServerTasks) {
    const deployment = listed.Items.filter((item) => item.TaskId === ServerTaskId)[0];
    assert.ok(deployment, `no deployment with TaskId ${ServerTaskId} in ${JSON.stringify(listed.Items)}`);
    assert.equal(deployment.Id, DeploymentId);
    results.push(deployment);
  }
  // The action names the environments through environments/v2 (falling back to v1 on 404).
  const environmentIds = results.map((deployment) => deployment.EnvironmentId);
  const environments = await new EnvironmentV2Repository(client, spaceName).list({
    ids: environmentIds,
    skip: 0,
    take: environmentIds.length,
  });
  assertCollection(environments, NAMED, "environments/v2");
  const names = results.map(
    (deployment) => environments.Items.find((environment) => environment.Id === deployment.EnvironmentId)?.Name,
  );
  assert.deepEqual(names, environmentNames);
  return results.map((deployment) => ({ deploymentId: deployment.Id, taskId: deployment.TaskId }));
}

// ---- The tests ------------------------------------------------------------------------------

test("Client.create reads a version that passes the client's gate", async () => {
  const client = await connect(USER_AGENTS.createRelease);
  const information = await client.getServerInformation();
  assert.match(information.version, /^\d+\.\d+\.\d+$/, "Version must be strict semver");
  const [major, minor, patch] = information.version.split(".").map(Number);
  assert.ok(
    major > 2022 || (major === 2022 && (minor > 3 || (minor === 3 && patch >= 5512))),
    `Version ${information.version} is below 2022.3.5512`,
  );
  assert.equal(typeof information.installationId, "string");
  // Helpers the package exports besides the repositories.
  assert.equal(await checkForCapability(client, "CreateReleaseCommandV1", "2022.3"), null);
  assert.equal(await checkForCapability(client, "CreateDeploymentUntenantedCommandV1", "2022.3"), null);
  const user = await userGetCurrent(client);
  assertShape(user, { Id: "string", Username: "string", IsActive: "boolean", Identities: "array" }, "users/me");
});

test("the space resolves by name, exactly, with the client's own lookup", async () => {
  const client = await connect(USER_AGENTS.createRelease);
  state.spaceId = await resolveSpaceId(client, spaceName);
  assert.match(state.spaceId, /^Spaces-\d+$/);
  const spaces = await new SpaceRepository(client).list({ partialName: spaceName, skip: 0, take: 2147483647 });
  assertShape(spaces, { TotalResults: "number", Items: "array" }, "spaces");
  assertCollection(spaces, NAMED, "spaces");
  assert.ok(spaces.Items.some((space) => space.Name === spaceName && space.Id === state.spaceId));
  const space = await new SpaceRepository(client).get(state.spaceId);
  assertShape(space, NAMED, "space");
  assert.equal(space.Name, spaceName);
  // A name no space has: TotalResults 0, which the client turns into its own message.
  await assert.rejects(resolveSpaceId(client, "No Such Space"), /No spaces exist with name 'No Such Space'/);
});

test("environments, lifecycles and project groups list by name and by ids", async () => {
  const client = await connect(USER_AGENTS.createRelease);
  const environments = new EnvironmentRepository(client, spaceName);
  state.environments = {};
  for (const name of ["Development", "Test"]) {
    const found = await environments.list({ partialName: name });
    assertCollection(found, NAMED, `environments?partialName=${name}`);
    const environment = found.Items.find((item) => item.Name === name);
    assert.ok(environment, `no environment named ${name}`);
    state.environments[name] = environment;
  }
  const ids = [state.environments.Development.Id, state.environments.Test.Id];
  const byIds = await environments.list({ ids, take: ids.length });
  assertCollection(byIds, NAMED, "environments?ids");
  assert.deepEqual(byIds.Items.map((item) => item.Id).sort(), [...ids].sort());
  const byIdsV2 = await new EnvironmentV2Repository(client, spaceName).list({ ids, skip: 0, take: ids.length });
  assertCollection(byIdsV2, { ...NAMED, Slug: "string", Type: "string", SortOrder: "number" }, "environments/v2?ids");
  byIdsV2.Items.forEach((item) => assert.equal(item.Type, "Static"));
  assert.deepEqual(byIdsV2.Items.map((item) => item.Id).sort(), [...ids].sort());
  const one = await environments.get(ids[0]);
  assertShape(
    one,
    { ...NAMED, SpaceId: "string", SortOrder: "number", UseGuidedFailure: "boolean", AllowDynamicInfrastructure: "boolean" },
    "environment",
  );
  // The client's own lookup: environments/v2?partialName, names compared ignoring case.
  const byName = await environments.getEnvironmentByName("development");
  assert.equal(byName?.Id, state.environments.Development.Id);
  assert.equal(await environments.getEnvironmentByName("Nowhere"), null);

  const lifecycles = new LifecycleRepository(client, spaceName);
  const lifecycleList = await lifecycles.list({ partialName: "Default" });
  assertCollection(lifecycleList, NAMED, "lifecycles");
  state.lifecycle = lifecycleList.Items.find((item) => item.Name === "Default Lifecycle");
  assert.ok(state.lifecycle, "no Default Lifecycle");
  const lifecycleById = await lifecycles.list({ ids: [state.lifecycle.Id] });
  assert.deepEqual(lifecycleById.Items.map((item) => item.Id), [state.lifecycle.Id]);

  const groups = new ProjectGroupRepository(client, spaceName);
  const groupList = await groups.list({ partialName: "Default" });
  assertCollection(groupList, NAMED, "projectgroups");
  state.projectGroup = groupList.Items.find((item) => item.Name === "Default Project Group");
  assert.ok(state.projectGroup, "no Default Project Group");
  const groupById = await groups.list({ ids: [state.projectGroup.Id] });
  assert.deepEqual(groupById.Items.map((item) => item.Id), [state.projectGroup.Id]);
});

/** Creates a project with the client and gives it `steps` through its deployment process. */
async function createProject(client, name, steps) {
  const projects = new ProjectRepository(client, spaceName);
  const project = await projects.create(NewProject(name, state.projectGroup, state.lifecycle));
  assertShape(project, { ...NAMED, SpaceId: "string", LifecycleId: "string" }, "created project");
  const processes = new DeploymentProcessRepository(client, spaceName);
  const process = await processes.get(project);
  assertShape(process, { Id: "string", ProjectId: "string", Steps: "array", Version: "number" }, "process");
  process.Steps = steps;
  const saved = await processes.update(project, process);
  assert.deepEqual(
    saved.Steps.map((step) => step.Name),
    steps.map((step) => step.Name),
  );
  return project;
}

function packageStep() {
  return {
    Name: "Deploy web",
    Properties: { "Octopus.Action.TargetRoles": "web" },
    Condition: "Success",
    StartTrigger: "StartAfterPrevious",
    PackageRequirement: "LetOctopusDecide",
    Actions: [
      {
        Name: "Deploy web",
        ActionType: "Octopus.TentaclePackage",
        IsDisabled: false,
        IsRequired: false,
        Environments: [],
        ExcludedEnvironments: [],
        Channels: [],
        TenantTags: [],
        Packages: [
          {
            Name: "",
            PackageId: "hello-web",
            FeedId: "feeds-builtin",
            AcquisitionLocation: "Server",
            Properties: {},
          },
        ],
        Properties: {
          "Octopus.Action.Package.PackageId": "hello-web",
          "Octopus.Action.Package.FeedId": "feeds-builtin",
          "Octopus.Action.CustomScripts.PostDeploy.sh":
            'echo "PostDeploy in #{Octopus.Environment.Name} on #{Octopus.Machine.Name}"',
        },
      },
    ],
  };
}

function sleepStep() {
  return {
    Name: "Sleep",
    Properties: { "Octopus.Action.TargetRoles": "web" },
    Condition: "Success",
    StartTrigger: "StartAfterPrevious",
    Actions: [
      {
        Name: "Sleep",
        ActionType: "Octopus.Script",
        Properties: {
          "Octopus.Action.Script.ScriptSource": "Inline",
          "Octopus.Action.Script.Syntax": "Bash",
          "Octopus.Action.Script.ScriptBody": 'echo "going to sleep"\nsleep 300\necho "woke up"',
        },
      },
    ],
  };
}

test("projects are created, and listed by name and by ids", async () => {
  const client = await connect(USER_AGENTS.createRelease);
  state.project = await createProject(client, "Hello Web", [packageStep()]);
  state.sleeper = await createProject(client, "Sleeper", [sleepStep()]);
  const projects = new ProjectRepository(client, spaceName);
  const byName = await projects.list({ partialName: "hello web" });
  assertCollection(byName, { ...NAMED, SpaceId: "string", LifecycleId: "string" }, "projects?partialName");
  assert.deepEqual(byName.Items.map((item) => item.Name), ["Hello Web"]);
  const ids = [state.project.Id, state.sleeper.Id];
  const byIds = await projects.list({ ids });
  assertCollection(byIds, NAMED, "projects?ids");
  assert.deepEqual(byIds.Items.map((item) => item.Id).sort(), [...ids].sort());
  assert.equal((await projects.get(state.project.Id)).Name, "Hello Web");
});

test("push-package: FailIfExists, then 409 on a duplicate, OverwriteExisting, IgnoreIfExists", async () => {
  const client = await connect(USER_AGENTS.push);
  const packages = new PackageRepository(client, spaceName);
  const first = path.join(packagesDirectory, "first", "hello-web.1.0.0.zip");
  const rebuilt = path.join(packagesDirectory, "rebuilt", "hello-web.1.0.0.zip");
  const hashOfStored = async () => {
    const stored = await packages.get("packages-hello-web.1.0.0");
    assertShape(stored, { PackageId: "string", Version: "string" }, "package");
    assert.equal(stored.PackageId, "hello-web");
    assert.equal(stored.Version, "1.0.0");
    return stored.Hash;
  };

  await packages.push([first], OverwriteMode.FailIfExists);
  const firstHash = await hashOfStored();

  // push() joins the server's messages into a plain Error; the status shows in the error
  // callback the client offers.
  const statuses = [];
  client.subscribeToErrors("statuses", (details) => statuses.push(details.statusCode));
  await assert.rejects(packages.push([rebuilt], OverwriteMode.FailIfExists), (error) => {
    assert.ok(!error.message.includes("undefined"), error.message);
    assert.match(error.message, /already exists/i);
    return true;
  });
  assert.deepEqual(statuses, [409]);
  assert.equal(await hashOfStored(), firstHash, "FailIfExists must keep the stored file");

  await packages.push([rebuilt], OverwriteMode.OverwriteExisting);
  const rebuiltHash = await hashOfStored();
  assert.notEqual(rebuiltHash, firstHash, "OverwriteExisting must replace the stored file");

  await packages.push([first], OverwriteMode.IgnoreIfExists);
  assert.equal(await hashOfStored(), rebuiltHash, "IgnoreIfExists must keep the stored file");
  assert.deepEqual(statuses, [409]);

  const listed = await packages.list({ filter: "hello-web", skip: 0, take: 30 });
  assertCollection(listed, { Id: "string", PackageId: "string", Version: "string" }, "packages");
  assert.deepEqual(
    listed.Items.map((item) => [item.Id, item.PackageId, item.Version]),
    [["packages-hello-web.1.0.0", "hello-web", "1.0.0"]],
  );
});

test("push-build-information: FailIfExists refuses a duplicate, OverwriteExisting replaces it", async () => {
  const client = await connect(USER_AGENTS.buildInformation);
  const repository = new BuildInformationRepository(client, spaceName);
  const command = (buildNumber) => ({
    spaceName,
    BuildEnvironment: "GitHub Actions",
    BuildNumber: buildNumber,
    BuildUrl: `https://github.com/acme/hello-web/actions/runs/${buildNumber}`,
    Branch: "main",
    VcsType: "Git",
    VcsRoot: "https://github.com/acme/hello-web",
    VcsCommitNumber: "0123456789abcdef0123456789abcdef01234567",
    Packages: [{ Id: "hello-web", Version: "1.0.0" }],
    Commits: [{ Id: "0123456789abcdef0123456789abcdef01234567", Comment: "Say hello" }],
  });
  const statuses = [];
  client.subscribeToErrors("statuses", (details) => statuses.push(details.statusCode));
  await repository.push(command("41"), OverwriteMode.FailIfExists);
  await assert.rejects(repository.push(command("42"), OverwriteMode.FailIfExists), (error) => {
    assert.ok(!error.message.startsWith("undefined"), error.message);
    return true;
  });
  assert.equal(statuses.length, 1);
  assert.ok(statuses[0] >= 400 && statuses[0] < 500, `duplicate build information gave ${statuses[0]}`);
  await repository.push(command("42"), OverwriteMode.OverwriteExisting);
  const stored = await new PackageRepository(client, spaceName).get("packages-hello-web.1.0.0");
  assert.equal(stored.PackageVersionBuildInformation?.BuildNumber, "42", JSON.stringify(stored));
});

test("create-release: the v1 command pins the pushed package", async () => {
  const client = await connect(USER_AGENTS.createRelease);
  const releases = new ReleaseRepository(client, spaceName);
  // Exactly what create-release-action sends for `release_number: 1.0.0`.
  const command = {
    spaceName,
    ProjectName: "Hello Web",
    ReleaseVersion: "1.0.0",
    Packages: [],
    GitResources: [],
    IgnoreChannelRules: false,
    CustomFields: {},
  };
  const created = await releases.create(command);
  assertShape(created, { ReleaseId: "string", ReleaseVersion: "string" }, "create release response");
  assert.equal(created.ReleaseVersion, "1.0.0");
  state.releaseId = created.ReleaseId;

  const release = await releases.get(created.ReleaseId);
  assertShape(
    release,
    { Id: "string", Version: "string", ProjectId: "string", ChannelId: "string", SelectedPackages: "array" },
    "release",
  );
  assertShape(
    release,
    {
      SpaceId: "string",
      IgnoreChannelRules: "boolean",
      Assembled: "string",
      ProjectDeploymentProcessSnapshotId: "string",
      ProjectVariableSetSnapshotId: "string",
      LibraryVariableSetSnapshotIds: "array",
      BuildInformation: "array",
      CustomFields: "object",
      SelectedGitResources: "array",
    },
    "release (typed fields)",
  );
  assert.equal(release.ProjectId, state.project.Id);
  assert.deepEqual(
    release.SelectedPackages.map((selected) => [selected.ActionName, selected.Version]),
    [["Deploy web", "1.0.0"]],
  );

  // Re-running the action with IgnoreIfAlreadyExists returns the same release.
  const again = await releases.create({ ...command, IgnoreIfAlreadyExists: true });
  assert.deepEqual([again.ReleaseId, again.ReleaseVersion], [created.ReleaseId, "1.0.0"]);

  // A second release, so that the searches below have something to leave out.
  const newer = await releases.create({ ...command, ReleaseVersion: "1.1.0" });
  assert.equal(newer.ReleaseVersion, "1.1.0");
  const forProject = await releases.listForProject(state.project.Id, { searchByVersion: "1.0.0" });
  assertCollection(forProject, { Id: "string", Version: "string" }, "project releases");
  assert.deepEqual(forProject.Items.map((item) => item.Id), [created.ReleaseId]);
  const allForProject = await releases.listForProject(state.project.Id, { skip: 0, take: 30 });
  assert.deepEqual(allForProject.Items.map((item) => item.Version), ["1.1.0", "1.0.0"], "newest first");
  const all = await releases.list({ skip: 0, take: 30 });
  assertCollection(all, { Id: "string", Version: "string" }, "releases");
  assert.ok(all.Items.some((item) => item.Id === created.ReleaseId));

  // Package versions chosen the ways the action's `packages` input allows.
  await assertClientError(
    releases.create({ ...command, ReleaseVersion: "1.2.0", Packages: ["hello-web:9.9.9"] }),
    400,
    "9.9.9",
  );
  const byStep = await releases.create({ ...command, ReleaseVersion: "1.2.0", Packages: ["Deploy web:1.0.0"] });
  const byStepRelease = await releases.get(byStep.ReleaseId);
  assert.deepEqual(byStepRelease.SelectedPackages.map((selected) => selected.Version), ["1.0.0"]);
  const byPackageVersion = await releases.create({ ...command, ReleaseVersion: "1.3.0", PackageVersion: "1.0.0" });
  assert.equal(byPackageVersion.ReleaseVersion, "1.3.0");

  // The sleeper's release: no ReleaseVersion, so the server allocates one.
  const sleeper = await releases.create({
    spaceName,
    ProjectName: "Sleeper",
    Packages: [],
    GitResources: [],
    IgnoreChannelRules: false,
    CustomFields: {},
  });
  assertShape(sleeper, { ReleaseId: "string", ReleaseVersion: "string" }, "allocated release");
  state.sleeperVersion = sleeper.ReleaseVersion;
});

test("errors: 400 for a deployment the lifecycle does not allow yet, and for an unknown project", async () => {
  const client = await connect(USER_AGENTS.deploy);
  const command = {
    spaceName,
    ProjectName: "Hello Web",
    ReleaseVersion: "1.0.0",
    EnvironmentNames: ["Test"],
    Variables: {},
  };
  await assertClientError(new DeploymentRepository(client, spaceName).create(command), 400, "Test", {
    method: "POST",
    path: `/api/${state.spaceId}/deployments/create/untenanted/v1`,
    body: { spaceId: state.spaceId, spaceIdOrName: spaceName, ...command },
  });
  const release = { spaceName, ProjectName: "No Such Project", ReleaseVersion: "1.0.0", Packages: [] };
  await assertClientError(new ReleaseRepository(client, spaceName).create(release), 400, "No Such Project", {
    method: "POST",
    path: `/api/${state.spaceId}/releases/create/v1`,
    body: { spaceId: state.spaceId, spaceIdOrName: spaceName, ...release },
  });
});

test("deploy-release to Development, then Test; await-task sees Success", async () => {
  for (const environment of ["Development", "Test"]) {
    const deployed = await deployRelease("Hello Web", "1.0.0", [environment]);
    const [{ taskId }] = deployed;
    const task = await waitForTask(taskId);
    const log = await rawLog(taskId);
    assert.equal(task.State, "Success", log);
    assert.equal(task.FinishedSuccessfully, true);
    // The rebuilt package (OverwriteExisting won, IgnoreIfExists kept it) ran on the agent.
    assert.ok(log.includes(`rebuilt Deploy.sh ran on ${targetName}`), log);
    assert.ok(log.includes(`PostDeploy in ${environment} on ${targetName}`), log);
    assert.ok(!log.includes("first Deploy.sh"), log);

    const [{ deploymentId }] = deployed;
    const deployment = await new DeploymentRepository(await connect(USER_AGENTS.deploy), spaceName).get(deploymentId);
    assertShape(deployment, { Id: "string", TaskId: "string", EnvironmentId: "string", ReleaseId: "string" }, "deployment");
    // Beyond REQ: the client's Deployment type (Execution fields).
    assertShape(
      deployment,
      {
        SpaceId: "string",
        ProjectId: "string",
        ChannelId: "string",
        Name: "string",
        Created: "string",
        ExcludedMachineIds: "array",
        SpecificMachineIds: "array",
        SkipActions: "array",
        FormValues: "object",
        ForcePackageDownload: "boolean",
        ForcePackageRedeployment: "boolean",
        UseGuidedFailure: "boolean",
      },
      "deployment (typed fields)",
    );
    assert.deepEqual(
      [deployment.TaskId, deployment.EnvironmentId, deployment.ReleaseId],
      [taskId, state.environments[environment].Id, state.releaseId],
    );

    const tasks = new SpaceServerTaskRepository(await connect(USER_AGENTS.awaitTask), spaceName);
    const byId = await tasks.getById(taskId);
    assertTask(byId, "task by id");
    const [byIds] = await tasks.getByIds([taskId]);
    assertTask(byIds, "task by ids");
    assert.equal(byIds.Id, taskId);
    // Beyond REQ: the fields the client's TypeScript types declare as always present.
    assertShape(
      byId,
      {
        Name: "string",
        Description: "string",
        HasPendingInterruptions: "boolean",
        HasWarningsOrErrors: "boolean",
        FinishedSuccessfully: "boolean",
        Arguments: "object",
        QueueTime: "string",
        StartTime: "string",
        CompletedTime: "string",
      },
      "task (typed fields)",
    );
    const details = await tasks.getDetails(taskId);
    assertShape(details, { Task: "object", Progress: "object", PhysicalLogSize: "number", ActivityLogs: "array" }, "task details");
    assertShape(details.Progress, { ProgressPercentage: "number", EstimatedTimeRemaining: "string?" }, "details.Progress");
    assertTask(details.Task, "details.Task");
    assert.equal(details.Task.State, "Success");
    const activities = [...details.ActivityLogs];
    assert.ok(activities.length > 0, "no activities");
    while (activities.length > 0) {
      const activity = activities.pop();
      assertShape(
        activity,
        {
          Id: "string",
          Name: "string",
          Status: "string",
          Children: "array",
          ShowAtSummaryLevel: "boolean",
          LogElements: "array",
          ProgressPercentage: "number",
        },
        "activity",
      );
      assert.ok(
        ["Pending", "Running", "Success", "Failed", "Skipped", "SuccessWithWarning", "Canceled"].includes(activity.Status),
        `activity status ${activity.Status}`,
      );
      activity.LogElements.forEach((element) =>
        assertShape(element, { Category: "string", OccurredAt: "string", MessageText: "string?" }, "log element"),
      );
      activities.push(...activity.Children);
    }
    state[`task${environment}`] = taskId;
  }
  // Unknown ids are absent, with a 200, as the waiter needs.
  const tasks = new SpaceServerTaskRepository(await connect(USER_AGENTS.awaitTask), spaceName);
  const mixed = await tasks.getByIds([state.taskDevelopment, "ServerTasks-999999"]);
  assert.deepEqual(mixed.map((task) => task.Id), [state.taskDevelopment]);
});

test("a sleeping script is canceled through the client and ends Canceled", async () => {
  const [{ taskId }] = await deployRelease("Sleeper", state.sleeperVersion, ["Development"]);
  const client = await connect(USER_AGENTS.awaitTask);
  const tasks = new SpaceServerTaskRepository(client, spaceName);
  // Wait until the script runs on the agent, so the cancel has a process to stop.
  const deadline = Date.now() + 60_000;
  while (!(await tasks.getRaw(taskId)).includes("going to sleep")) {
    assert.ok(Date.now() < deadline, `the sleep script did not start: ${await tasks.getRaw(taskId)}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  const running = await tasks.getById(taskId);
  assertTask(running, "running task");
  assert.equal(running.State, "Executing");

  const started = Date.now();
  await new ServerTaskRepository(client).cancel(taskId);
  const task = await waitForTask(taskId, (polled) =>
    assert.ok(["Executing", "Cancelling", "Canceled"].includes(polled.State), polled.State),
  );
  assert.equal(task.State, "Canceled", await rawLog(taskId));
  assert.equal(task.FinishedSuccessfully, false);
  assert.ok(Date.now() - started < 30_000, "cancel took longer than 30 s");
  assert.ok(!(await rawLog(taskId)).includes("woke up"));
});

test("a deployment scheduled with RunAt waits Queued, and is canceled before it starts", async () => {
  const client = await connect(USER_AGENTS.deploy);
  // deploy_at / deploy_at_expiry, as the action sends them (Dates, JSON with milliseconds).
  const runAt = new Date(Date.now() + 3_600_000);
  const response = await new DeploymentRepository(client, spaceName).create({
    spaceName,
    ProjectName: "Hello Web",
    ReleaseVersion: "1.1.0",
    EnvironmentNames: ["Development"],
    UseGuidedFailure: true,
    RunAt: runAt,
    NoRunAfter: new Date(runAt.getTime() + 3_600_000),
    Variables: {},
  });
  assertShape(response, { DeploymentServerTasks: "array" }, "scheduled deploy response");
  const [{ ServerTaskId: taskId }] = response.DeploymentServerTasks;
  const tasks = new SpaceServerTaskRepository(await connect(USER_AGENTS.awaitTask), spaceName);
  const queued = await tasks.getById(taskId);
  assertTask(queued, "scheduled task");
  assert.equal(queued.State, "Queued");
  await new ServerTaskRepository(client).cancel(taskId);
  const task = await waitForTask(taskId);
  assert.equal(task.State, "Canceled");
});

test("errors: 401 for a wrong API key, 404 for an unknown task", async () => {
  const wrongKey = "API-WRONGKEY0000000000000000000000";
  // The root document answers anonymously; the first protected call is the space lookup.
  let denied;
  try {
    denied = await connect(USER_AGENTS.createRelease, wrongKey);
  } catch (error) {
    assert.equal(error.StatusCode, 401, error.message);
  }
  if (denied) {
    await assertClientError(new ProjectRepository(denied, spaceName).list(), 401, "", {
      path: `/api/spaces?partialName=${encodeURIComponent(spaceName)}&skip=0&take=2147483647`,
      apiKey: wrongKey,
    });
  }
  const client = await connect(USER_AGENTS.awaitTask);
  await assertClientError(new SpaceServerTaskRepository(client, spaceName).getById("ServerTasks-999999"), 404, "", {
    path: `/api/${state.spaceId}/tasks/ServerTasks-999999`,
  });
  await assertClientError(new ProjectRepository(client, spaceName).get("Projects-999999"), 404, "", {
    path: `/api/${state.spaceId}/projects/Projects-999999`,
  });
});
