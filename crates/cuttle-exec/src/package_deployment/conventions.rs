//! The conventions runner: the process `cuttle exec-package` runs for a package deployment
//! ticket. It reads the deployment and the variables from standard input (never a file or an
//! argument: they hold secrets in clear), carries out the conventions in Calamari's order, and
//! speaks to the executor only through its standard output and error: plain lines are the
//! log, `##octopus[…]` service messages set levels and output variables, exactly as a
//! script's output. Scripts run as its children in the same process group, so the executor's
//! cancel reaches them too; their standard error goes straight to the executor, their standard
//! output through this process (which forwards every line unchanged and watches for
//! `setVariable`, so later conventions see the variables earlier scripts set).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::Utc;
use cuttle_packages::{ArchiveFormat, ExtractionLimits};
use cuttle_structured::{
    EvaluatedVariables, StructuredOptions, replace_structured_detecting_format,
};
use cuttle_template::{EvaluationOptions, VariableDictionary, evaluate};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::deployment_journal::{DeploymentJournal, JournalEntry, journal_path_for_executor_root};
use super::files;
use super::{
    CUSTOM_INSTALLATION_DIRECTORY_VARIABLE, DeploymentStage, INSTALLATION_DIRECTORY_PATH_VARIABLE,
    PackageDeployment, SKIP_REMAINING_CONVENTIONS_VARIABLE,
};
use crate::bootstrap;
use crate::error::ExecError;
use crate::request::{ScriptSyntax, ScriptVariable};
use crate::service_message::{Segment, encode_value, parse_line};
use crate::variables::PlainVariables;

/// What the executor writes to the runner's standard input.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RunnerInput {
    pub(crate) deployment: PackageDeployment,
    /// Name/value pairs, as the request's variables (deduplicated).
    pub(crate) variables: Vec<(String, String)>,
}

/// The input for a deployment, as the executor sends it (wiped from memory when dropped).
pub(crate) fn runner_input(
    deployment: &PackageDeployment,
    variables: &PlainVariables,
) -> Zeroizing<String> {
    let input = RunnerInput {
        deployment: deployment.clone(),
        variables: variables.pairs().to_vec(),
    };
    Zeroizing::new(serde_json::to_string(&input).unwrap_or_default())
}

/// Packaged script extensions in order of preference on Unix (Calamari: bash > python).
const PACKAGED_SCRIPT_KINDS: [(&str, ScriptSyntax); 2] =
    [("sh", ScriptSyntax::Bash), ("py", ScriptSyntax::Python)];

/// Why the deployment failed.
struct Failure {
    message: String,
    exit_code: i32,
}

impl From<ExecError> for Failure {
    fn from(error: ExecError) -> Failure {
        Failure {
            message: error.to_string(),
            exit_code: 1,
        }
    }
}

/// Runs the conventions for the deployment on standard input; returns the process's exit code.
pub fn run_conventions_process(executor_root: &Path, ticket_directory: &Path) -> i32 {
    let mut input = Zeroizing::new(String::new());
    if let Err(error) = std::io::stdin().read_to_string(&mut input) {
        log_error(&format!(
            "The package deployment could not be read: {error}"
        ));
        return 1;
    }
    let parsed: RunnerInput = match serde_json::from_str(&input) {
        Ok(parsed) => parsed,
        Err(error) => {
            log_error(&format!("The package deployment is not valid: {error}"));
            return 1;
        }
    };
    drop(input);
    let mut runner = Runner {
        applications_directory: parsed
            .deployment
            .applications_directory
            .clone()
            .unwrap_or_else(|| {
                executor_root
                    .parent()
                    .unwrap_or(executor_root)
                    .join("Applications")
            }),
        journal: DeploymentJournal::new(journal_path_for_executor_root(executor_root)),
        scripts_directory: ticket_directory.join("conventions"),
        ticket_name: ticket_directory
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        deployment: parsed.deployment,
        variables: parsed.variables,
        current_directory: PathBuf::new(),
        script_count: 0,
    };
    runner.run()
}

struct Runner {
    deployment: PackageDeployment,
    variables: Vec<(String, String)>,
    applications_directory: PathBuf,
    journal: DeploymentJournal,
    scripts_directory: PathBuf,
    ticket_name: String,
    /// Where scripts run and packaged scripts are looked for.
    current_directory: PathBuf,
    script_count: u32,
}

impl Runner {
    fn run(&mut self) -> i32 {
        if let Err(error) = self.deployment.validate() {
            log_error(&error.to_string());
            return 1;
        }
        let policy_set = self.deployment.journal.retention_policy_set();
        if self.deployment.skip_if_already_installed {
            match self.already_installed(&policy_set) {
                Ok(Some(directory)) => {
                    log_info(&format!(
                        "The package {} version {} has already been installed to {} and SkipIfAlreadyInstalled is set: skipping the deployment",
                        self.deployment.package_id,
                        self.deployment.version,
                        directory.display()
                    ));
                    set_output_variable(
                        INSTALLATION_DIRECTORY_PATH_VARIABLE,
                        &directory.to_string_lossy(),
                    );
                    return 0;
                }
                Ok(None) => {}
                Err(error) => {
                    log_error(&error.to_string());
                    return 1;
                }
            }
        }

        log_info(&format!(
            "Convention: extract package {} version {}",
            self.deployment.package_id, self.deployment.version
        ));
        let extracted_to = match self.extract() {
            Ok(directory) => directory,
            Err(error) => {
                log_error(&format!("The package could not be extracted: {error}"));
                return 1;
            }
        };
        self.current_directory = extracted_to.clone();
        self.set_variable(
            INSTALLATION_DIRECTORY_PATH_VARIABLE,
            &extracted_to.to_string_lossy(),
        );
        self.set_variable(
            "OctopusOriginalPackageDirectoryPath",
            &extracted_to.to_string_lossy(),
        );
        set_output_variable(
            INSTALLATION_DIRECTORY_PATH_VARIABLE,
            &extracted_to.to_string_lossy(),
        );

        let outcome = self.conventions();
        let exit_code = match &outcome {
            Ok(()) => 0,
            Err(failure) => {
                log_error(&failure.message);
                log_info("Convention: DeployFailed scripts");
                // Their own failures are logged, not raised: the deployment has failed already.
                for result in [
                    self.packaged_script(DeploymentStage::DeployFailed),
                    self.configured_scripts(DeploymentStage::DeployFailed),
                ] {
                    if let Err(deploy_failed) = result {
                        log_error(&deploy_failed.message);
                    }
                }
                failure.exit_code
            }
        };

        if let Err(error) = self.record(&policy_set, &extracted_to, outcome.is_ok()) {
            log_error(&format!(
                "The deployment journal could not be updated: {error}"
            ));
            return if exit_code == 0 { 1 } else { exit_code };
        }
        exit_code
    }

    /// Everything after extraction, stopping early when a script asks to skip the rest.
    fn conventions(&mut self) -> Result<(), Failure> {
        type Convention = fn(&mut Runner) -> Result<(), Failure>;
        let conventions: [(&str, Convention); 6] = [
            ("PreDeploy scripts", |runner| {
                runner.configured_scripts(DeploymentStage::PreDeploy)?;
                runner.packaged_script(DeploymentStage::PreDeploy)
            }),
            ("substitute variables in files", Runner::substitute_in_files),
            (
                "structured configuration variables",
                Runner::structured_variables,
            ),
            (
                "custom installation directory",
                Runner::custom_installation_directory,
            ),
            ("Deploy scripts", |runner| {
                runner.packaged_script(DeploymentStage::Deploy)?;
                runner.configured_scripts(DeploymentStage::Deploy)
            }),
            ("PostDeploy scripts", |runner| {
                runner.packaged_script(DeploymentStage::PostDeploy)?;
                runner.configured_scripts(DeploymentStage::PostDeploy)
            }),
        ];
        for (name, convention) in conventions {
            if self.skip_remaining() {
                log_info(&format!(
                    "{SKIP_REMAINING_CONVENTIONS_VARIABLE} is set: skipping the remaining conventions"
                ));
                return Ok(());
            }
            log_info(&format!("Convention: {name}"));
            convention(self)?;
        }
        Ok(())
    }

    fn skip_remaining(&self) -> bool {
        self.variable(SKIP_REMAINING_CONVENTIONS_VARIABLE)
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
    }

    fn variable(&self, name: &str) -> Option<&str> {
        self.variables
            .iter()
            .rev()
            .find(|(candidate, _)| candidate == name)
            .map(|(_, value)| value.as_str())
    }

    fn set_variable(&mut self, name: &str, value: &str) {
        self.variables.retain(|(candidate, _)| candidate != name);
        self.variables.push((name.to_owned(), value.to_owned()));
    }

    fn already_installed(&self, policy_set: &str) -> Result<Option<PathBuf>, ExecError> {
        let journal = self.journal.lock()?;
        Ok(journal
            .successful_install(
                policy_set,
                &self.deployment.package_id,
                &self.deployment.version,
            )
            .map(|entry| {
                entry
                    .custom_installation_directory
                    .clone()
                    .unwrap_or_else(|| entry.extracted_to.clone())
            }))
    }

    /// Extracts into a hidden directory beside the destination, then, under the journal's
    /// lock, renames it to the first free name of `<Version>`, `<Version>_1`, `<Version>_2`…
    fn extract(&mut self) -> Result<PathBuf, ExecError> {
        let deployment = &self.deployment;
        if let Some(expected) = &deployment.package_sha256 {
            let actual = sha256_of_file(&deployment.package_path)?;
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(ExecError::InvalidRequest(format!(
                    "the package {} has SHA-256 {actual}, not {expected}",
                    deployment.package_path.display()
                )));
            }
        }
        let mut parent = self.applications_directory.clone();
        if let Some(tenant) = &deployment.tenant_name {
            parent.push(tenant);
        }
        parent.push(&deployment.environment_name);
        parent.push(&deployment.package_id);
        std::fs::create_dir_all(&parent).map_err(ExecError::io("create", &parent))?;
        let staging = parent.join(format!(
            ".{}.extracting-{:016x}",
            deployment.version,
            rand::random::<u64>()
        ));
        let extracted = extract_package(&deployment.package_path, &staging);
        if let Err(error) = extracted {
            let _removed = std::fs::remove_dir_all(&staging);
            return Err(error);
        }
        let _journal_lock = self.journal.lock()?;
        let mut suffix = 0u32;
        loop {
            let candidate = if suffix == 0 {
                parent.join(&deployment.version)
            } else {
                parent.join(format!("{}_{suffix}", deployment.version))
            };
            if std::fs::symlink_metadata(&candidate).is_err() {
                std::fs::rename(&staging, &candidate)
                    .map_err(ExecError::io("move into place", &candidate))?;
                log_info(&format!(
                    "Extracted {} to {}",
                    deployment.package_path.display(),
                    candidate.display()
                ));
                return Ok(candidate);
            }
            suffix += 1;
        }
    }

    fn configured_scripts(&mut self, stage: DeploymentStage) -> Result<(), Failure> {
        let scripts: Vec<(ScriptSyntax, String)> = self
            .deployment
            .configured_scripts
            .iter()
            .filter(|script| script.stage == stage)
            .map(|script| (script.syntax, script.body.clone()))
            .collect();
        for (syntax, body) in scripts {
            log_info(&format!("Running the configured {} script", stage.name()));
            self.run_script(stage, syntax, &body)?;
        }
        Ok(())
    }

    /// Runs `<Stage>.sh`, else `<Stage>.py`, from the current directory (only one runs).
    fn packaged_script(&mut self, stage: DeploymentStage) -> Result<(), Failure> {
        if !self.deployment.run_packaged_scripts {
            return Ok(());
        }
        for (extension, syntax) in PACKAGED_SCRIPT_KINDS {
            let path = self
                .current_directory
                .join(format!("{}.{extension}", stage.name()));
            if !path.is_file() {
                continue;
            }
            let body = std::fs::read_to_string(&path)
                .map_err(ExecError::io("read the packaged script", &path))?;
            log_info(&format!("Running the packaged script {}", path.display()));
            return self.run_script(stage, syntax, &body);
        }
        Ok(())
    }

    fn run_script(
        &mut self,
        stage: DeploymentStage,
        syntax: ScriptSyntax,
        body: &str,
    ) -> Result<(), Failure> {
        self.script_count += 1;
        let directory =
            self.scripts_directory
                .join(format!("{:02}-{}", self.script_count, stage.name()));
        std::fs::create_dir_all(&directory).map_err(ExecError::io("create", &directory))?;
        let launch = bootstrap::prepare(&directory, &directory, syntax, body, &[])?;
        let mut child = Command::new(&launch.program)
            .args(&launch.arguments)
            .current_dir(&self.current_directory)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| Failure {
                message: format!(
                    "Could not start {} for the {} script: {error}",
                    launch.program.to_string_lossy(),
                    stage.name()
                ),
                exit_code: 1,
            })?;
        let variables: Vec<ScriptVariable> = self
            .variables
            .iter()
            .map(|(name, value)| ScriptVariable::new(name, value))
            .collect();
        let preamble = PlainVariables::from_request(&variables).preamble(syntax);
        drop(variables);
        let writer = child.stdin.take().map(|mut stdin| {
            std::thread::spawn(move || {
                // A script that exits before reading its variables closes the pipe.
                let _written = stdin.write_all(preamble.as_bytes());
            })
        });
        if let Some(stdout) = child.stdout.take() {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']);
                forward_line(text);
                self.watch_service_messages(text);
            }
        }
        if let Some(writer) = writer {
            let _joined = writer.join();
        }
        let status = child.wait().map_err(|error| Failure {
            message: format!(
                "The {} script's exit status could not be read: {error}",
                stage.name()
            ),
            exit_code: 1,
        })?;
        if status.success() {
            return Ok(());
        }
        let exit_code = status.code().unwrap_or(1);
        Err(Failure {
            message: format!(
                "The {} script returned a non-zero exit code: {exit_code}",
                stage.name()
            ),
            exit_code: if exit_code == 0 { 1 } else { exit_code },
        })
    }

    /// Applies `setVariable` messages to the variables later conventions and scripts see.
    fn watch_service_messages(&mut self, line: &str) {
        for segment in parse_line(line) {
            if let Segment::Message(message) = segment
                && message.name.eq_ignore_ascii_case("setVariable")
                && let Some(name) = message.attribute("name")
            {
                let value = message.attribute("value").unwrap_or_default().to_owned();
                let name = name.to_owned();
                self.set_variable(&name, &value);
            }
        }
    }

    fn substitute_in_files(&mut self) -> Result<(), Failure> {
        if self.deployment.substitute_in_files.is_empty() {
            return Ok(());
        }
        let patterns = files::compile_globs(&self.deployment.substitute_in_files)?;
        let targets = files::matching_files(&self.current_directory, &patterns)?;
        if targets.is_empty() {
            log_warning(&format!(
                "No files were found that match the substitution target patterns {}",
                self.deployment.substitute_in_files.join(", ")
            ));
        }
        let mut dictionary = VariableDictionary::new();
        for (name, value) in &self.variables {
            dictionary.set(name.clone(), value.clone());
        }
        let options = EvaluationOptions {
            halt_on_error: false,
            now_utc: Some(Utc::now()),
            ..EvaluationOptions::default()
        };
        for relative in targets {
            let path = self.current_directory.join(&relative);
            let bytes = std::fs::read(&path).map_err(ExecError::io("read", &path))?;
            let (bom, text) = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
                Some(rest) => (&bytes[..3], rest),
                None => (&bytes[..0], &bytes[..]),
            };
            let Ok(text) = std::str::from_utf8(text) else {
                log_warning(&format!(
                    "Skipping variable substitution in {}: it is not UTF-8 text",
                    path.display()
                ));
                continue;
            };
            log_info(&format!(
                "Performing variable substitution on {}",
                path.display()
            ));
            let evaluation = evaluate(text, &dictionary, &options);
            let Some(output) = evaluation.output else {
                return Err(Failure {
                    message: format!(
                        "Variable substitution in {} failed: {}",
                        path.display(),
                        evaluation
                            .diagnostics
                            .first()
                            .map(|diagnostic| diagnostic.message.clone())
                            .unwrap_or_default()
                    ),
                    exit_code: 1,
                });
            };
            if output != text {
                let mut new_bytes = bom.to_vec();
                new_bytes.extend_from_slice(output.as_bytes());
                std::fs::write(&path, new_bytes).map_err(ExecError::io("write", &path))?;
            }
        }
        Ok(())
    }

    fn structured_variables(&mut self) -> Result<(), Failure> {
        if self.deployment.structured_variable_files.is_empty() {
            return Ok(());
        }
        let patterns = files::compile_globs(&self.deployment.structured_variable_files)?;
        let targets = files::matching_files(&self.current_directory, &patterns)?;
        if targets.is_empty() {
            log_warning(&format!(
                "No files were found that match the structured configuration patterns {}",
                self.deployment.structured_variable_files.join(", ")
            ));
        }
        let variables = EvaluatedVariables::new(
            self.variables
                .iter()
                .map(|(name, value)| (name.clone(), Some(value.clone())))
                .collect(),
        );
        for relative in targets {
            let path = self.current_directory.join(&relative);
            let text = std::fs::read_to_string(&path).map_err(ExecError::io("read", &path))?;
            let file_name = relative.to_string_lossy();
            let output = replace_structured_detecting_format(
                &file_name,
                false,
                &text,
                &variables,
                &StructuredOptions::default(),
            )
            .map_err(|error| Failure {
                message: format!(
                    "Structured variable replacement failed on {}: {error}",
                    path.display()
                ),
                exit_code: 1,
            })?;
            for warning in &output.output.warnings {
                log_warning(&warning.message);
            }
            std::fs::write(&path, output.output.text.as_bytes())
                .map_err(ExecError::io("write", &path))?;
            log_info(&format!(
                "Structured variable replacement succeeded on {} with format {} ({} variables applied)",
                path.display(),
                output.format,
                output.output.replaced_variable_names.len()
            ));
        }
        Ok(())
    }

    fn custom_installation_directory(&mut self) -> Result<(), Failure> {
        let Some(custom) = self.deployment.custom_installation_directory.clone() else {
            return Ok(());
        };
        let extracted = self.current_directory.clone();
        let target = custom.path;
        if target.starts_with(&extracted) || extracted.starts_with(&target) {
            return Err(Failure {
                message: format!(
                    "The custom installation directory {} must not be the extraction directory {} or inside it or around it",
                    target.display(),
                    extracted.display()
                ),
                exit_code: 1,
            });
        }
        std::fs::create_dir_all(&target).map_err(ExecError::io("create", &target))?;
        if custom.purge_before_deployment {
            let exclusions = files::compile_globs(&custom.purge_exclusions)?;
            log_info(&format!(
                "Purging the custom installation directory {}",
                target.display()
            ));
            files::purge(&target, &exclusions)?;
        }
        let copied = files::copy_tree(&extracted, &target)?;
        log_info(&format!(
            "Copied {copied} files to the custom installation directory {}",
            target.display()
        ));
        self.current_directory = target.clone();
        let text = target.to_string_lossy().into_owned();
        self.set_variable(CUSTOM_INSTALLATION_DIRECTORY_VARIABLE, &text);
        self.set_variable(INSTALLATION_DIRECTORY_PATH_VARIABLE, &text);
        set_output_variable(CUSTOM_INSTALLATION_DIRECTORY_VARIABLE, &text);
        set_output_variable(INSTALLATION_DIRECTORY_PATH_VARIABLE, &text);
        Ok(())
    }

    /// Adds the journal entry and applies retention, under one lock.
    fn record(
        &mut self,
        policy_set: &str,
        extracted_to: &Path,
        was_successful: bool,
    ) -> Result<(), ExecError> {
        let identity = &self.deployment.journal;
        let mut journal = self.journal.lock()?;
        journal.add(JournalEntry {
            id: if identity.deployment_id.is_empty() {
                self.ticket_name.clone()
            } else {
                identity.deployment_id.clone()
            },
            environment_id: identity.environment_id.clone(),
            tenant_id: identity.tenant_id.clone(),
            project_id: identity.project_id.clone(),
            package_id: self.deployment.package_id.clone(),
            package_version: self.deployment.version.clone(),
            installed_on: Utc::now(),
            extracted_from: self.deployment.package_path.clone(),
            extracted_to: extracted_to.to_owned(),
            retention_policy_set: policy_set.to_owned(),
            custom_installation_directory: self
                .deployment
                .custom_installation_directory
                .as_ref()
                .map(|custom| custom.path.clone()),
            was_successful,
        });
        let deleted = match self.deployment.retention_keep_count {
            Some(keep_count) => {
                log_info(&format!(
                    "Convention: retention (keep the current install and {keep_count} earlier successful ones)"
                ));
                journal.apply_retention(policy_set, extracted_to, keep_count)
            }
            None => Vec::new(),
        };
        journal.save()?;
        drop(journal);
        for directory in deleted {
            match std::fs::remove_dir_all(&directory) {
                Ok(()) => log_info(&format!("Retention deleted {}", directory.display())),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => log_warning(&format!(
                    "Retention could not delete {}: {error}",
                    directory.display()
                )),
            }
        }
        Ok(())
    }
}

/// Extracts (or, for a directory, copies) the package into `destination`, which must not exist.
fn extract_package(package: &Path, destination: &Path) -> Result<(), ExecError> {
    let metadata =
        std::fs::metadata(package).map_err(ExecError::io("open the package", package))?;
    if metadata.is_dir() {
        files::copy_tree(package, destination)?;
        return Ok(());
    }
    let file_name = package
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let format = ArchiveFormat::from_file_name(&file_name).ok_or_else(|| {
        ExecError::InvalidRequest(format!(
            "{} is not a package format this version can extract (zip, nupkg, tar, tar.gz, tar.bz2)",
            package.display()
        ))
    })?;
    // The same limits the server applies when a package is pushed: a package that passed
    // there extracts here, and a hostile archive cannot fill the target's disk.
    let summary =
        cuttle_packages::extract(package, format, destination, &ExtractionLimits::default())
            .map_err(|error| {
                ExecError::InvalidRequest(format!(
                    "the package {} could not be extracted: {error}",
                    package.display()
                ))
            })?;
    log_info(&format!(
        "Extracted {} files ({} bytes) from the {} package",
        summary.files,
        summary.bytes,
        format.extension()
    ));
    Ok(())
}

fn sha256_of_file(path: &Path) -> Result<String, ExecError> {
    use sha2::{Digest as _, Sha256};
    let mut file = std::fs::File::open(path).map_err(ExecError::io("open", path))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(ExecError::io("read", path))?;
    Ok(hex::encode(hasher.finalize()))
}

fn write_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    // If the executor stopped reading, there is nobody to tell.
    let _written = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
}

fn forward_line(text: &str) {
    write_stdout(text);
}

fn log_info(text: &str) {
    write_stdout(text);
}

fn log_warning(text: &str) {
    write_stdout(&format!(
        "##octopus[stdout-warning]\n{text}\n##octopus[stdout-default]"
    ));
}

fn log_error(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _written = writeln!(stderr, "{text}").and_then(|()| stderr.flush());
}

fn set_output_variable(name: &str, value: &str) {
    write_stdout(&format!(
        "##octopus[setVariable name='{}' value='{}']",
        encode_value(name),
        encode_value(value)
    ));
}
