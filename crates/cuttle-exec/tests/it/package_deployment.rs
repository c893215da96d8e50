//! Package deployments end to end: the executor starts the real conventions runner
//! (`cuttle-exec-package`), which runs real bash and python3 scripts over real files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cuttle_exec::package_deployment::{
    ConfiguredScript, CustomInstallationDirectory, DeploymentJournal, DeploymentStage,
    JournalIdentity, PackageDeployment, journal_path_for_executor_root,
};
use cuttle_exec::{
    Executor, ExecutorOptions, PackageRunner, ScriptRequest, ScriptState, ScriptStatus,
    ScriptSyntax, ScriptVariable,
};

use crate::support::{assert_exit, run, texts, wait_for_line};

struct Deployment {
    home: tempfile::TempDir,
    executor: Executor,
}

impl Deployment {
    fn new() -> Deployment {
        let home = tempfile::tempdir().expect("home");
        let options = ExecutorOptions {
            package_runner: Some(PackageRunner {
                program: env!("CARGO_BIN_EXE_cuttle-exec-package").into(),
                arguments: Vec::new(),
            }),
            kill_grace: Duration::from_millis(500),
            ..ExecutorOptions::default()
        };
        let executor =
            Executor::open_with(&home.path().join("work"), options).expect("open the executor");
        Deployment { home, executor }
    }

    fn home(&self) -> PathBuf {
        std::fs::canonicalize(self.home.path()).expect("canonical home")
    }

    fn order_log(&self) -> PathBuf {
        self.home().join("order.log")
    }

    fn order(&self) -> Vec<String> {
        std::fs::read_to_string(self.order_log())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// A package directory with these files (relative path, contents).
    fn package(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let directory = self.home().join("packages").join(name);
        for (relative, contents) in files {
            let path = directory.join(relative);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, contents).expect("write");
        }
        std::fs::create_dir_all(&directory).expect("mkdir");
        directory
    }

    fn request(&self, ticket: &str, package: &Path, version: &str) -> ScriptRequest {
        let mut request = ScriptRequest::new(ticket, ScriptSyntax::Bash, "");
        request.variables = vec![
            ScriptVariable::new("OrderLog", self.order_log().to_string_lossy()),
            ScriptVariable::new("Octopus.Environment.Name", "Production"),
        ];
        request.package_deployment = Some(PackageDeployment {
            package_id: "Acme.Web".into(),
            version: version.into(),
            package_path: package.to_owned(),
            package_sha256: None,
            applications_directory: None,
            environment_name: "Production".into(),
            tenant_name: None,
            configured_scripts: Vec::new(),
            run_packaged_scripts: true,
            substitute_in_files: Vec::new(),
            structured_variable_files: Vec::new(),
            custom_installation_directory: None,
            skip_if_already_installed: false,
            retention_keep_count: None,
            journal: JournalIdentity {
                deployment_id: format!("Deployments-{ticket}"),
                environment_id: "Environments-1".into(),
                project_id: "Projects-1".into(),
                step_name: "Deploy web".into(),
                machine_id: "Machines-1".into(),
                tenant_id: None,
            },
        });
        request
    }

    fn applications(&self) -> PathBuf {
        self.home().join("Applications/Production/Acme.Web")
    }

    fn journal(&self) -> DeploymentJournal {
        DeploymentJournal::new(journal_path_for_executor_root(&self.home().join("work")))
    }
}

fn deployment_of(request: &mut ScriptRequest) -> &mut PackageDeployment {
    request
        .package_deployment
        .as_mut()
        .expect("a package deployment")
}

fn configured(stage: DeploymentStage, syntax: ScriptSyntax, body: &str) -> ConfiguredScript {
    ConfiguredScript {
        stage,
        syntax,
        body: body.to_owned(),
    }
}

fn output_variable<'status>(status: &'status ScriptStatus, name: &str) -> Option<&'status str> {
    status
        .output_variables
        .iter()
        .find(|variable| variable.name == name)
        .map(|variable| variable.value.as_str())
}

/// A bash line that appends `entry` to the order log.
fn record(entry: &str) -> String {
    format!("echo '{entry}' >> \"$(get_octopusvariable OrderLog)\"\n")
}

#[tokio::test]
async fn conventions_run_in_order_with_the_packaged_script_preference() {
    let deployment = Deployment::new();
    let package = deployment.package(
        "order",
        &[
            ("PreDeploy.sh", &record("packaged PreDeploy.sh")),
            ("PreDeploy.py", "raise SystemExit('the python PreDeploy must not run')"),
            (
                "Deploy.py",
                "with open(get_octopusvariable('OrderLog'), 'a') as log:\n    log.write('packaged Deploy.py ' + get_octopusvariable('FromPreDeploy') + '\\n')\n",
            ),
            ("PostDeploy.sh", &record("packaged PostDeploy.sh")),
            ("DeployFailed.sh", &record("packaged DeployFailed.sh")),
        ],
    );
    let mut request = deployment.request("order-1", &package, "1.0.0");
    deployment_of(&mut request).configured_scripts = vec![
        configured(
            DeploymentStage::PostDeploy,
            ScriptSyntax::Bash,
            &record("configured PostDeploy"),
        ),
        configured(
            DeploymentStage::PreDeploy,
            ScriptSyntax::Bash,
            &format!(
                "{}set_octopusvariable FromPreDeploy 'set in PreDeploy'\n",
                record("configured PreDeploy")
            ),
        ),
        configured(
            DeploymentStage::Deploy,
            ScriptSyntax::Bash,
            &format!(
                "{}echo \"cwd=$(pwd) dir=$(get_octopusvariable Octopus.Action.Package.InstallationDirectoryPath)\"\n",
                record("configured Deploy")
            ),
        ),
    ];
    let status = run(&deployment.executor, request).await;
    assert_exit(&status, 0);
    assert_eq!(
        deployment.order(),
        [
            "configured PreDeploy",
            "packaged PreDeploy.sh",
            "packaged Deploy.py set in PreDeploy",
            "configured Deploy",
            "packaged PostDeploy.sh",
            "configured PostDeploy",
        ]
    );
    let installed = deployment.applications().join("1.0.0");
    assert!(installed.join("Deploy.py").is_file());
    assert_eq!(
        output_variable(&status, "Octopus.Action.Package.InstallationDirectoryPath"),
        Some(installed.to_string_lossy().as_ref())
    );
    assert_eq!(
        output_variable(&status, "FromPreDeploy"),
        Some("set in PreDeploy")
    );
    let lines = texts(&status);
    let expected_dir = installed.display().to_string();
    assert!(
        lines.contains(&format!("cwd={expected_dir} dir={expected_dir}").as_str()),
        "{lines:#?}"
    );
    let conventions: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|line| line.starts_with("Convention: "))
        .collect();
    assert_eq!(
        conventions,
        [
            "Convention: extract package Acme.Web version 1.0.0",
            "Convention: PreDeploy scripts",
            "Convention: substitute variables in files",
            "Convention: structured configuration variables",
            "Convention: custom installation directory",
            "Convention: Deploy scripts",
            "Convention: PostDeploy scripts",
        ]
    );
    let entries = deployment.journal().entries().expect("journal");
    assert_eq!(entries.len(), 1);
    assert!(entries[0].was_successful);
    assert_eq!(entries[0].extracted_to, installed);
    assert_eq!(
        entries[0].retention_policy_set,
        "Environments-1/Projects-1/Deploy web/Machines-1/<default>"
    );
}

#[tokio::test]
async fn a_redeployment_never_overwrites_and_skip_if_installed_skips() {
    let deployment = Deployment::new();
    let package = deployment.package("redeploy", &[("Deploy.sh", &record("deployed"))]);
    for ticket in ["redeploy-1", "redeploy-2"] {
        let status = run(
            &deployment.executor,
            deployment.request(ticket, &package, "2.0.0"),
        )
        .await;
        assert_exit(&status, 0);
    }
    assert!(deployment.applications().join("2.0.0").is_dir());
    assert!(deployment.applications().join("2.0.0_1").is_dir());

    let mut request = deployment.request("redeploy-3", &package, "2.0.0");
    deployment_of(&mut request).skip_if_already_installed = true;
    let status = run(&deployment.executor, request).await;
    assert_exit(&status, 0);
    assert_eq!(deployment.order(), ["deployed", "deployed"]);
    assert!(!deployment.applications().join("2.0.0_2").exists());
    assert_eq!(
        output_variable(&status, "Octopus.Action.Package.InstallationDirectoryPath"),
        Some(
            deployment
                .applications()
                .join("2.0.0_1")
                .to_string_lossy()
                .as_ref()
        )
    );
    assert!(
        texts(&status)
            .iter()
            .any(|line| line.contains("has already been installed")),
        "{:#?}",
        status.lines
    );
    assert_eq!(deployment.journal().entries().expect("journal").len(), 2);
}

#[tokio::test]
async fn files_are_substituted_and_structured_variables_replaced() {
    let deployment = Deployment::new();
    let package = deployment.package(
        "config",
        &[
            ("config/app.config", "Server=#{DbServer};User=#{DbUser}\n"),
            ("untouched.txt", "#{DbServer}\n"),
            (
                "appsettings.json",
                "{\n  \"Logging\": { \"Level\": \"Info\" },\n  \"Port\": 80\n}\n",
            ),
        ],
    );
    let mut request = deployment.request("config-1", &package, "1.0.0");
    request.variables.extend([
        ScriptVariable::new("DbServer", "db.#{Octopus.Environment.Name}.local"),
        ScriptVariable::new("DbUser", "deployer"),
        ScriptVariable::new("Logging:Level", "Debug"),
        ScriptVariable::new("Port", "8080"),
    ]);
    deployment_of(&mut request).substitute_in_files = vec!["config\\*.config".into()];
    deployment_of(&mut request).structured_variable_files = vec!["*.json".into()];
    let status = run(&deployment.executor, request).await;
    assert_exit(&status, 0);
    let installed = deployment.applications().join("1.0.0");
    assert_eq!(
        std::fs::read_to_string(installed.join("config/app.config")).expect("read"),
        "Server=db.Production.local;User=deployer\n"
    );
    assert_eq!(
        std::fs::read_to_string(installed.join("untouched.txt")).expect("read"),
        "#{DbServer}\n"
    );
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(installed.join("appsettings.json")).expect("read"),
    )
    .expect("json");
    assert_eq!(
        json,
        serde_json::json!({"Logging": {"Level": "Debug"}, "Port": 8080})
    );
    // The package itself is never modified.
    assert_eq!(
        std::fs::read_to_string(package.join("config/app.config")).expect("read"),
        "Server=#{DbServer};User=#{DbUser}\n"
    );
}

#[tokio::test]
async fn a_custom_installation_directory_is_purged_except_exclusions_and_used() {
    let deployment = Deployment::new();
    let package = deployment.package(
        "custom",
        &[
            ("bin/app", "new build"),
            (
                "Deploy.sh",
                "echo \"deploy ran in $(pwd)\" >> \"$(get_octopusvariable OrderLog)\"\n",
            ),
        ],
    );
    let custom = deployment.home().join("srv/acme");
    for (relative, contents) in [
        ("old.txt", "stale"),
        ("bin/app", "old build"),
        ("logs/today.log", "keep me"),
    ] {
        let path = custom.join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, contents).expect("write");
    }
    let mut request = deployment.request("custom-1", &package, "1.0.0");
    deployment_of(&mut request).custom_installation_directory = Some(CustomInstallationDirectory {
        path: custom.clone(),
        purge_before_deployment: true,
        purge_exclusions: vec!["logs".into()],
    });
    let status = run(&deployment.executor, request).await;
    assert_exit(&status, 0);
    assert!(!custom.join("old.txt").exists());
    assert_eq!(
        std::fs::read_to_string(custom.join("logs/today.log")).expect("read"),
        "keep me"
    );
    assert_eq!(
        std::fs::read_to_string(custom.join("bin/app")).expect("read"),
        "new build"
    );
    assert_eq!(
        deployment.order(),
        [format!("deploy ran in {}", custom.display())]
    );
    let custom_text = custom.to_string_lossy();
    assert_eq!(
        output_variable(
            &status,
            "Octopus.Action.Package.CustomInstallationDirectory"
        ),
        Some(custom_text.as_ref())
    );
    assert_eq!(
        output_variable(&status, "Octopus.Action.Package.InstallationDirectoryPath"),
        Some(custom_text.as_ref())
    );

    // Inside the extraction directory is refused.
    let mut request = deployment.request("custom-2", &package, "1.0.1");
    deployment_of(&mut request).custom_installation_directory = Some(CustomInstallationDirectory {
        path: deployment.applications().join("1.0.1/inner"),
        purge_before_deployment: false,
        purge_exclusions: Vec::new(),
    });
    let status = run(&deployment.executor, request).await;
    assert_exit(&status, 1);
}

#[tokio::test]
async fn a_failing_script_runs_deploy_failed_and_fails_the_deployment() {
    let deployment = Deployment::new();
    let package = deployment.package(
        "failing",
        &[
            ("DeployFailed.sh", &record("packaged DeployFailed.sh")),
            ("PostDeploy.sh", &record("packaged PostDeploy.sh")),
        ],
    );
    let mut request = deployment.request("failing-1", &package, "1.0.0");
    deployment_of(&mut request).configured_scripts = vec![
        configured(
            DeploymentStage::Deploy,
            ScriptSyntax::Bash,
            &format!(
                "{}fail_step 'the database is down'\n",
                record("configured Deploy")
            ),
        ),
        configured(
            DeploymentStage::DeployFailed,
            ScriptSyntax::Python,
            "with open(get_octopusvariable('OrderLog'), 'a') as log:\n    log.write('configured DeployFailed\\n')\n",
        ),
    ];
    let status = run(&deployment.executor, request).await;
    assert_exit(&status, 1);
    assert_eq!(
        deployment.order(),
        [
            "configured Deploy",
            "packaged DeployFailed.sh",
            "configured DeployFailed"
        ]
    );
    assert_eq!(
        status.failed_step_message.as_deref(),
        Some("the database is down")
    );
    let entries = deployment.journal().entries().expect("journal");
    assert_eq!(entries.len(), 1);
    assert!(!entries[0].was_successful);
}

#[tokio::test]
async fn skip_remaining_conventions_stops_after_the_script_that_sets_it() {
    let deployment = Deployment::new();
    let package = deployment.package("skip", &[("Deploy.sh", &record("packaged Deploy.sh"))]);
    let mut request = deployment.request("skip-1", &package, "1.0.0");
    deployment_of(&mut request).configured_scripts = vec![configured(
        DeploymentStage::PreDeploy,
        ScriptSyntax::Bash,
        &format!(
            "{}set_octopusvariable Octopus.Action.SkipRemainingConventions True\n",
            record("configured PreDeploy")
        ),
    )];
    let status = run(&deployment.executor, request).await;
    assert_exit(&status, 0);
    assert_eq!(deployment.order(), ["configured PreDeploy"]);
    assert!(deployment.journal().entries().expect("journal")[0].was_successful);
}

#[tokio::test]
async fn retention_keeps_the_current_and_n_earlier_installs_and_nothing_else_is_touched() {
    let deployment = Deployment::new();
    let package = deployment.package("retained", &[("app.txt", "app")]);
    let unrelated = deployment.applications().join("not-in-the-journal");
    std::fs::create_dir_all(&unrelated).expect("mkdir");
    for (index, version) in ["1.0.0", "1.0.1", "1.0.2", "1.0.3"].into_iter().enumerate() {
        let mut request = deployment.request(&format!("retained-{index}"), &package, version);
        deployment_of(&mut request).retention_keep_count = Some(1);
        assert_exit(&run(&deployment.executor, request).await, 0);
    }
    let applications = deployment.applications();
    assert!(!applications.join("1.0.0").exists());
    assert!(!applications.join("1.0.1").exists());
    assert!(applications.join("1.0.2").is_dir());
    assert!(applications.join("1.0.3").is_dir());
    assert!(unrelated.is_dir());
    let versions: Vec<String> = deployment
        .journal()
        .entries()
        .expect("journal")
        .into_iter()
        .map(|entry| entry.package_version)
        .collect();
    assert_eq!(versions, ["1.0.2", "1.0.3"]);
}

#[tokio::test]
async fn sensitive_values_are_masked_in_convention_output() {
    let deployment = Deployment::new();
    let package = deployment.package(
        "secret",
        &[(
            "Deploy.sh",
            "echo \"packaged sees $(get_octopusvariable Password)\"\n",
        )],
    );
    let mut request = deployment.request("secret-1", &package, "1.0.0");
    request.variables.push(ScriptVariable::sensitive(
        "Password",
        "hunter2-correct-horse",
    ));
    deployment_of(&mut request).configured_scripts = vec![configured(
        DeploymentStage::PreDeploy,
        ScriptSyntax::Python,
        "print('configured sees ' + get_octopusvariable('Password'))\n",
    )];
    let status = run(&deployment.executor, request).await;
    assert_exit(&status, 0);
    let lines = texts(&status);
    assert!(lines.contains(&"configured sees ********"), "{lines:#?}");
    assert!(lines.contains(&"packaged sees ********"), "{lines:#?}");
    assert!(
        !lines.iter().any(|line| line.contains("hunter2")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn cancelling_during_the_deploy_script_kills_it() {
    let deployment = Deployment::new();
    let pid_file = deployment.home().join("deploy.pid");
    let package = deployment.package(
        "cancel",
        &[(
            "Deploy.sh",
            &format!(
                "echo $$ > '{}'\necho deploy-started\nsleep 300\necho deploy-finished\n",
                pid_file.display()
            ),
        )],
    );
    let request = deployment.request("cancel-1", &package, "1.0.0");
    assert_eq!(
        deployment.executor.start(request).await.expect("start"),
        cuttle_exec::StartOutcome::Started
    );
    wait_for_line(&deployment.executor, "cancel-1", "deploy-started").await;
    deployment
        .executor
        .cancel("cancel-1")
        .await
        .expect("cancel");
    let state = tokio::time::timeout(
        Duration::from_secs(60),
        deployment.executor.wait("cancel-1"),
    )
    .await
    .expect("cancelled within a minute")
    .expect("wait");
    assert_eq!(state, ScriptState::Cancelled);
    let pid = std::fs::read_to_string(&pid_file).expect("pid");
    assert!(
        process_is_gone(pid.trim()).await,
        "the Deploy script (pid {}) is still running",
        pid.trim()
    );
    let status = deployment
        .executor
        .status("cancel-1", 0)
        .await
        .expect("status");
    assert!(!texts(&status).contains(&"deploy-finished"));
}

/// Whether the process is gone or a zombie (killed, waiting to be reaped by init), polling a
/// little because reaping an orphan is asynchronous.
async fn process_is_gone(pid: &str) -> bool {
    for _ in 0..100 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat)
                if stat
                    .rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with('Z')) =>
            {
                return true;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    false
}

#[tokio::test]
async fn an_archive_package_is_extracted_and_a_broken_one_leaves_nothing() {
    let deployment = Deployment::new();
    let contents = deployment.package(
        "archive-contents",
        &[
            ("Deploy.sh", &record("deployed from the archive")),
            ("web/index.html", "<h1>hello</h1>"),
        ],
    );
    let archive = deployment.home().join("Acme.Web.3.0.0.tar.gz");
    let tar = std::process::Command::new("tar")
        .arg("czf")
        .arg(&archive)
        .arg("-C")
        .arg(&contents)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(tar.success());
    let status = run(
        &deployment.executor,
        deployment.request("archive-1", &archive, "3.0.0"),
    )
    .await;
    assert_exit(&status, 0);
    let installed = deployment.applications().join("3.0.0");
    assert_eq!(
        std::fs::read_to_string(installed.join("web/index.html")).expect("read"),
        "<h1>hello</h1>"
    );
    assert_eq!(deployment.order(), ["deployed from the archive"]);

    let broken = deployment.home().join("Acme.Web.3.0.1.zip");
    std::fs::write(&broken, b"PK\x03\x04 this is not a zip").expect("write");
    let mut request = deployment.request("archive-2", &broken, "3.0.1");
    deployment_of(&mut request).package_sha256 = None;
    let status = run(&deployment.executor, request).await;
    assert_exit(&status, 1);
    assert!(
        texts(&status)
            .iter()
            .any(|line| line.contains("could not be extracted")),
        "{:#?}",
        status.lines
    );
    let left: Vec<String> = std::fs::read_dir(deployment.applications())
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(left, ["3.0.0"]);
    assert_eq!(deployment.journal().entries().expect("journal").len(), 1);

    // A package whose hash is not the one announced is refused before extraction.
    let mut request = deployment.request("archive-3", &archive, "3.0.2");
    deployment_of(&mut request).package_sha256 = Some("0".repeat(64));
    assert_exit(&run(&deployment.executor, request).await, 1);
    assert!(!deployment.applications().join("3.0.2").exists());
}
