//! SSH targets end to end: each test starts a real OpenSSH `sshd` on 127.0.0.1 (its own
//! host key, authorized key and config in a temporary directory), and `SshTransport` uploads
//! this test build's `cuttle` binary over SFTP and runs `cuttle exec` there.
//!
//! With `CI=true` a test that cannot start sshd fails (install `openssh-server` and
//! `openssh-client`); elsewhere it is skipped with a note on stderr. The password login test
//! also creates a user with a password (`useradd`, `chpasswd`: root only), under the same
//! rule. The `cuttle exec` tests at the end need no sshd.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cuttle_domain::Endpoint;
use cuttle_exec::package_deployment::{JournalIdentity, PackageDeployment};
use cuttle_exec::{
    CachedPackage, Isolation, LogLine, ScriptRequest, ScriptState, ScriptStatus, ScriptSyntax,
    ScriptVariable, StartOutcome,
};
use cuttle_orchestrator::{PackageFile, TargetAddress, Transport, TransportError};
use cuttle_ssh::protocol::{ExecFailureKind, ExecRecord};
use cuttle_ssh::{
    HostKeyFingerprint, SshAccount, SshAuth, SshTransport, SshTransportOptions, StaticCredentials,
};
use tempfile::TempDir;

const CUTTLE: &str = env!("CARGO_BIN_EXE_cuttle");
const SSHD: &str = "/usr/sbin/sshd";
const SPACE: &str = "Spaces-1";
const ACCOUNT: &str = "Accounts-1";

// ---------------------------------------------------------------------------------------
// The sshd harness

/// How the test's sshd is configured.
#[derive(Clone, Copy)]
struct SshdConfig {
    max_sessions: u32,
    password_authentication: bool,
}

impl Default for SshdConfig {
    fn default() -> SshdConfig {
        SshdConfig {
            max_sessions: 10,
            password_authentication: false,
        }
    }
}

/// A running sshd and the keys that go with it; killed when dropped.
struct Sshd {
    child: Child,
    port: u16,
    directory: TempDir,
    /// `SHA256:…` of the host key, as `ssh-keygen -lf` prints it.
    host_fingerprint: String,
    /// The authorized client key (OpenSSH private key format).
    client_key: String,
    username: String,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _killed = self.child.kill();
        let _waited = self.child.wait();
    }
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("run a helper program");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

fn generate_key(path: &Path) {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "cuttle-test", "-f"])
        .arg(path));
}

/// The `SHA256:…` fingerprint of a public key file, from `ssh-keygen -lf`.
fn fingerprint_of(public_key: &Path) -> String {
    let printed = run(Command::new("ssh-keygen").arg("-lf").arg(public_key));
    printed
        .split_whitespace()
        .nth(1)
        .expect("ssh-keygen -lf prints bits, fingerprint, comment")
        .to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Starts sshd, or returns `None` (outside CI) when this machine cannot run one.
#[expect(clippy::print_stderr, reason = "a skipped test says why")]
fn start_sshd(config: SshdConfig) -> Option<Sshd> {
    let missing = [SSHD, "/usr/bin/ssh-keygen"]
        .into_iter()
        .find(|program| !Path::new(program).exists());
    if let Some(program) = missing {
        let message = format!(
            "{program} is missing: install openssh-server and openssh-client to run the SSH tests"
        );
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
        eprintln!("skipped: {message}");
        return None;
    }
    let directory = tempfile::tempdir().expect("a temporary directory");
    let root = directory.path();
    generate_key(&root.join("host_key"));
    generate_key(&root.join("client_key"));
    std::fs::copy(root.join("client_key.pub"), root.join("authorized_keys"))
        .expect("authorize the client key");
    // sshd refuses to start without its privilege separation directory (when run as root).
    let _created = std::fs::create_dir_all("/run/sshd");
    let username = run(Command::new("id").arg("-un")).trim().to_owned();

    for _attempt in 0..5 {
        let port = free_port();
        let config_path = root.join("sshd_config");
        std::fs::write(
            &config_path,
            format!(
                "Port {port}\n\
                 ListenAddress 127.0.0.1\n\
                 HostKey {root}/host_key\n\
                 PidFile {root}/sshd.pid\n\
                 AuthorizedKeysFile {root}/authorized_keys\n\
                 StrictModes no\n\
                 UsePAM no\n\
                 PermitRootLogin yes\n\
                 PubkeyAuthentication yes\n\
                 PasswordAuthentication {password}\n\
                 KbdInteractiveAuthentication no\n\
                 MaxSessions {max_sessions}\n\
                 MaxStartups 100\n\
                 Subsystem sftp internal-sftp\n\
                 LogLevel INFO\n",
                root = root.display(),
                password = if config.password_authentication {
                    "yes"
                } else {
                    "no"
                },
                max_sessions = config.max_sessions,
            ),
        )
        .expect("write sshd_config");
        let log = std::fs::File::create(root.join("sshd.log")).expect("create sshd.log");
        let mut child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut ready = false;
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                ready = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if ready {
            return Some(Sshd {
                child,
                port,
                host_fingerprint: fingerprint_of(&root.join("host_key.pub")),
                client_key: std::fs::read_to_string(root.join("client_key"))
                    .expect("read the client key"),
                username,
                directory,
            });
        }
        let _killed = child.kill();
        let _waited = child.wait();
    }
    let log = std::fs::read_to_string(root.join("sshd.log")).unwrap_or_default();
    panic!("sshd did not start: {log}");
}

impl Sshd {
    fn target(&self, name: &str, fingerprint: &str) -> TargetAddress {
        TargetAddress {
            machine_id: format!("Machines-{name}"),
            name: name.to_owned(),
            space_id: SPACE.to_owned(),
            endpoint: Endpoint::Ssh {
                host: "127.0.0.1".to_owned(),
                port: i64::from(self.port),
                account_id: ACCOUNT.to_owned(),
                fingerprint: fingerprint.to_owned(),
            },
        }
    }

    /// The target, pinned to the right host key.
    fn pinned_target(&self) -> TargetAddress {
        self.target("ssh-target", &self.host_fingerprint)
    }

    fn key_account(&self) -> SshAccount {
        SshAccount {
            username: self.username.clone(),
            auth: SshAuth::PrivateKey {
                pem: self.client_key.clone(),
                passphrase: None,
            },
        }
    }

    /// A transport with this sshd's authorized key, the shared binary directory and a work
    /// directory of this test's own.
    fn transport(&self) -> SshTransport {
        self.transport_with(self.key_account(), |_| {})
    }

    fn transport_with(
        &self,
        account: SshAccount,
        adjust: impl FnOnce(&mut SshTransportOptions),
    ) -> SshTransport {
        let mut options = SshTransportOptions {
            local_binary: Some(PathBuf::from(CUTTLE)),
            remote_binary_directory: shared_binary_directory().display().to_string(),
            remote_work_directory: self.directory.path().join("work").display().to_string(),
            remote_upload_directory: self.directory.path().join("uploads").display().to_string(),
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(30),
            ..SshTransportOptions::default()
        };
        adjust(&mut options);
        let credentials = StaticCredentials::new().with_account(SPACE, ACCOUNT, account);
        SshTransport::new(Arc::new(credentials), options)
    }
}

/// Where most tests keep the uploaded binary: in the target directory, so it is uploaded once
/// per build rather than once per test. Uploads of older builds are removed.
fn shared_binary_directory() -> &'static Path {
    static DIRECTORY: OnceLock<PathBuf> = OnceLock::new();
    DIRECTORY.get_or_init(|| {
        let directory = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ssh-test-binaries");
        std::fs::create_dir_all(&directory).expect("create the binary directory");
        let built = std::fs::metadata(CUTTLE)
            .and_then(|metadata| metadata.modified())
            .expect("the cuttle binary's age");
        for entry in std::fs::read_dir(&directory)
            .into_iter()
            .flatten()
            .flatten()
        {
            let stale = entry
                .metadata()
                .and_then(|metadata| metadata.modified())
                .is_ok_and(|modified| modified < built);
            if stale {
                let _removed = std::fs::remove_file(entry.path());
            }
        }
        directory
    })
}

/// Uploads the binary to the shared directory once, however many tests start at once.
async fn prepare(transport: &SshTransport, target: &TargetAddress) {
    static PREPARING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one_at_a_time = PREPARING.lock().await;
    transport.prepare(target).await.expect("upload cuttle");
}

// ---------------------------------------------------------------------------------------
// Scripts

fn bash(ticket: &str, body: &str) -> ScriptRequest {
    ScriptRequest {
        ticket: ticket.to_owned(),
        syntax: ScriptSyntax::Bash,
        body: body.to_owned(),
        arguments: Vec::new(),
        variables: Vec::new(),
        isolation: Isolation::None,
        isolation_mutex_name: None,
        isolation_mutex_timeout: None,
        timeout: None,
        files: Vec::new(),
        package_deployment: None,
    }
}

/// Polls the ticket until it is finished; returns the last status and every line.
async fn wait_until_finished(
    transport: &SshTransport,
    target: &TargetAddress,
    ticket: &str,
    mut after_sequence: u64,
) -> (ScriptStatus, Vec<LogLine>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lines = Vec::new();
    loop {
        let status = transport
            .script_status(target, ticket, after_sequence)
            .await
            .expect("status");
        after_sequence = status.next_sequence;
        lines.extend(status.lines.iter().cloned());
        if status.state.is_finished() && status.lines.is_empty() {
            return (status, lines);
        }
        assert!(
            Instant::now() < deadline,
            "{ticket} did not finish: {lines:#?}"
        );
        if status.lines.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Polls until a line containing `text` arrives; returns the sequence to continue after.
async fn wait_for_line(
    transport: &SshTransport,
    target: &TargetAddress,
    ticket: &str,
    text: &str,
) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut after_sequence = 0;
    loop {
        let status = transport
            .script_status(target, ticket, after_sequence)
            .await
            .expect("status");
        after_sequence = status.next_sequence;
        if status.lines.iter().any(|line| line.text.contains(text)) {
            return after_sequence;
        }
        assert!(
            !status.state.is_finished(),
            "{ticket} finished before printing {text:?}"
        );
        assert!(Instant::now() < deadline, "no line {text:?} from {ticket}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn texts(lines: &[LogLine]) -> Vec<&str> {
    lines.iter().map(|line| line.text.as_str()).collect()
}

fn unusable_message(error: TransportError) -> String {
    match error {
        TransportError::Unusable { message, .. } => message,
        other @ TransportError::Unreachable { .. } => panic!("expected Unusable, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Connecting

#[tokio::test]
async fn a_health_check_reports_the_system_and_reuses_the_connection() {
    let Some(sshd) = start_sshd(SshdConfig::default()) else {
        return;
    };
    let transport = sshd.transport();
    let target = sshd.pinned_target();
    let report = transport.check_health(&target).await.expect("healthy");
    assert!(report.summary.contains("Linux"), "{report:?}");
    assert!(report.summary.contains("bash"), "{report:?}");
    assert!(report.warnings.is_empty(), "{report:?}");
    transport
        .check_health(&target)
        .await
        .expect("healthy again");
    assert_eq!(transport.open_connections().await, 1);

    // What an operator is shown to pin: the same fingerprint ssh-keygen prints.
    let scanned = cuttle_ssh::scan_host_key("127.0.0.1", sshd.port, Duration::from_secs(10))
        .await
        .expect("scan");
    assert_eq!(scanned.to_string(), sshd.host_fingerprint);

    // The fingerprint in hex (as some tools print it) is the same pin.
    let digest = HostKeyFingerprint::parse(&sshd.host_fingerprint).expect("parse");
    let hex: String = digest
        .as_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    transport
        .check_health(&sshd.target("hex-pinned", &hex))
        .await
        .expect("healthy with a hex fingerprint");
}

#[tokio::test]
async fn a_changed_host_key_is_refused_naming_both_fingerprints() {
    let Some(sshd) = start_sshd(SshdConfig::default()) else {
        return;
    };
    // Pinned to another key: as if the host had been replaced, or someone sits in between.
    let other_key = sshd.directory.path().join("other_host_key");
    generate_key(&other_key);
    let pinned = fingerprint_of(&other_key.with_extension("pub"));
    let target = sshd.target("moved-target", &pinned);
    let transport = sshd.transport();

    let message = unusable_message(transport.check_health(&target).await.expect_err("refused"));
    assert_eq!(
        message,
        format!(
            "the host key of 127.0.0.1:{} changed: expected {pinned}, got {}; if the change is expected, update the target's fingerprint",
            sshd.port, sshd.host_fingerprint
        )
    );
    let started = transport
        .start_script(&target, &bash("never-runs", "touch should-not-exist"))
        .await;
    assert!(started.is_err(), "{started:?}");
    assert!(!sshd.directory.path().join("work").exists());
    assert_eq!(transport.open_connections().await, 0);
}

#[tokio::test]
async fn an_unknown_key_or_a_wrong_password_is_refused() {
    let Some(sshd) = start_sshd(SshdConfig {
        password_authentication: true,
        ..SshdConfig::default()
    }) else {
        return;
    };
    let target = sshd.pinned_target();
    let stranger_key = sshd.directory.path().join("stranger_key");
    generate_key(&stranger_key);
    let stranger = SshAccount {
        username: sshd.username.clone(),
        auth: SshAuth::PrivateKey {
            pem: std::fs::read_to_string(&stranger_key).expect("read the key"),
            passphrase: None,
        },
    };
    let message = unusable_message(
        sshd.transport_with(stranger, |_| {})
            .check_health(&target)
            .await
            .expect_err("refused"),
    );
    assert!(
        message.contains(&format!("refused to authenticate {}", sshd.username)),
        "{message}"
    );

    let wrong_password = SshAccount {
        username: sshd.username.clone(),
        auth: SshAuth::Password("not-the-password-0f9a".to_owned()),
    };
    let message = unusable_message(
        sshd.transport_with(wrong_password, |_| {})
            .check_health(&target)
            .await
            .expect_err("refused"),
    );
    assert!(message.contains("refused to authenticate"), "{message}");
    assert!(!message.contains("not-the-password"), "{message}");
}

/// A local account whose password the test sets, for password logins; removed when dropped.
struct PasswordUser {
    name: String,
    password: String,
    /// Its home, so a login has somewhere to start.
    _home: TempDir,
}

impl Drop for PasswordUser {
    fn drop(&mut self) {
        // `--force`: sshd's session process for the user may not have exited yet.
        let _removed = Command::new("userdel")
            .arg("--force")
            .arg(&self.name)
            .output();
    }
}

/// Creates a system user with a password (`useradd`, `chpasswd`: this needs root), or
/// returns `None` (outside CI) when it cannot.
#[expect(clippy::print_stderr, reason = "a skipped test says why")]
fn create_password_user() -> Option<PasswordUser> {
    let skip = |message: String| {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
        eprintln!("skipped: {message}");
    };
    let uid = run(Command::new("id").arg("-u"));
    if uid.trim() != "0" {
        skip(
            "password logins need a user with a known password: run the SSH tests as root"
                .to_owned(),
        );
        return None;
    }
    // Unique per test process, and short: user names have at most 32 characters.
    let name = format!("cuttlepw{}", std::process::id());
    let password = format!("pw-{}-{}", std::process::id(), rand_suffix());
    let home = tempfile::tempdir().expect("a temporary directory");
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755))
            .expect("open the home to its user");
    }
    // Left over by an earlier run of a process with the same id.
    let _removed = Command::new("userdel").arg("--force").arg(&name).output();
    let created = Command::new("useradd")
        .args(["--system", "-M", "-s", "/bin/sh", "-d"])
        .arg(home.path())
        .arg(&name)
        .output();
    match created {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            skip(format!(
                "useradd {name} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
            return None;
        }
        Err(error) => {
            skip(format!("useradd is not available: {error}"));
            return None;
        }
    }
    let user = PasswordUser {
        name,
        password,
        _home: home,
    };
    let mut chpasswd = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chpasswd");
    chpasswd
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{}:{}\n", user.name, user.password).as_bytes())
        .expect("send the password");
    let output = chpasswd.wait_with_output().expect("chpasswd");
    assert!(
        output.status.success(),
        "chpasswd failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(user)
}

/// A few characters that differ between runs, without a random number generator.
fn rand_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    format!("{nanos:x}")
}

#[tokio::test]
async fn a_username_and_password_account_logs_in() {
    let Some(sshd) = start_sshd(SshdConfig {
        password_authentication: true,
        ..SshdConfig::default()
    }) else {
        return;
    };
    let Some(user) = create_password_user() else {
        return;
    };
    let target = sshd.pinned_target();
    let account = SshAccount {
        username: user.name.clone(),
        auth: SshAuth::Password(user.password.clone()),
    };
    let transport = sshd.transport_with(account, |_| {});
    let report = transport
        .check_health(&target)
        .await
        .unwrap_or_else(|error| {
            let log =
                std::fs::read_to_string(sshd.directory.path().join("sshd.log")).unwrap_or_default();
            panic!("the password login failed: {error:?}\nsshd's log:\n{log}")
        });
    assert!(report.summary.contains("Linux"), "{report:?}");
    // The health check ran as that user, who logged in with the password.
    assert_eq!(transport.open_connections().await, 1);
    let log =
        std::fs::read_to_string(sshd.directory.path().join("sshd.log")).expect("read sshd.log");
    assert!(
        log.contains(&format!("Accepted password for {}", user.name)),
        "{log}"
    );

    // The same user with another password is refused.
    let wrong = SshAccount {
        username: user.name.clone(),
        auth: SshAuth::Password(format!("{}-not", user.password)),
    };
    let message = unusable_message(
        sshd.transport_with(wrong, |_| {})
            .check_health(&target)
            .await
            .expect_err("refused"),
    );
    assert!(
        message.contains(&format!("refused to authenticate {}", user.name)),
        "{message}"
    );
}

#[tokio::test]
async fn a_passphrase_protected_key_logs_in() {
    let Some(sshd) = start_sshd(SshdConfig::default()) else {
        return;
    };
    let key = sshd.directory.path().join("locked_key");
    // One KDF round keeps the unoptimized test build quick.
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-a", "1", "-N", "open sesame", "-f"])
        .arg(&key));
    let public_key = std::fs::read_to_string(key.with_extension("pub")).expect("read");
    std::fs::OpenOptions::new()
        .append(true)
        .open(sshd.directory.path().join("authorized_keys"))
        .and_then(|mut file| file.write_all(public_key.as_bytes()))
        .expect("authorize the key");
    let account = |passphrase: &str| SshAccount {
        username: sshd.username.clone(),
        auth: SshAuth::PrivateKey {
            pem: std::fs::read_to_string(&key).expect("read the key"),
            passphrase: Some(passphrase.to_owned()),
        },
    };
    let target = sshd.pinned_target();
    sshd.transport_with(account("open sesame"), |_| {})
        .check_health(&target)
        .await
        .expect("healthy");
    let message = unusable_message(
        sshd.transport_with(account("not-it-4d2"), |_| {})
            .check_health(&target)
            .await
            .expect_err("a wrong passphrase"),
    );
    assert!(
        message.contains("the private key of account Accounts-1 cannot be used"),
        "{message}"
    );
    assert!(!message.contains("not-it-4d2"), "{message}");
}

#[tokio::test]
async fn a_target_nobody_listens_on_is_unreachable() {
    // No sshd needed: the port is closed.
    let port = free_port();
    let target = TargetAddress {
        machine_id: "Machines-9".to_owned(),
        name: "gone".to_owned(),
        space_id: SPACE.to_owned(),
        endpoint: Endpoint::Ssh {
            host: "127.0.0.1".to_owned(),
            port: i64::from(port),
            account_id: ACCOUNT.to_owned(),
            fingerprint: "SHA256:u7zKTGdZbGJB8wLYjS9TNPRqkXILDi0NG3l6J1nMJ+A".to_owned(),
        },
    };
    let credentials = StaticCredentials::new().with_account(
        SPACE,
        ACCOUNT,
        SshAccount {
            username: "nobody".to_owned(),
            auth: SshAuth::Password("x".to_owned()),
        },
    );
    let transport = SshTransport::new(Arc::new(credentials), SshTransportOptions::default());
    let error = transport
        .check_health(&target)
        .await
        .expect_err("unreachable");
    assert!(
        matches!(&error, TransportError::Unreachable { target, .. } if target == "gone"),
        "{error:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Running scripts

#[tokio::test]
async fn a_script_runs_with_its_lines_masked_values_and_exit_code() {
    let Some(sshd) = start_sshd(SshdConfig::default()) else {
        return;
    };
    let transport = sshd.transport();
    let target = sshd.pinned_target();
    prepare(&transport, &target).await;
    let mut request = bash(
        "runs-1",
        "echo \"hello from $(uname -s)\"\n\
         echo \"the password is $(get_octopusvariable Password)\"\n\
         set_octopusvariable Answer 42\n\
         exit 3\n",
    );
    request.variables = vec![ScriptVariable::sensitive("Password", "hunter2-secret")];

    let started = transport
        .start_script(&target, &request)
        .await
        .expect("start");
    assert_eq!(started, StartOutcome::Started);
    let (status, lines) = wait_until_finished(&transport, &target, "runs-1", 0).await;
    let texts = texts(&lines);
    assert!(texts.contains(&"hello from Linux"), "{texts:#?}");
    assert!(texts.contains(&"the password is ********"), "{texts:#?}");
    assert!(
        !texts.iter().any(|text| text.contains("hunter2")),
        "{texts:#?}"
    );
    assert_eq!(status.state, ScriptState::Complete { exit_code: 3 });
    let answer = status
        .output_variables
        .iter()
        .find(|variable| variable.name == "Answer")
        .expect("the output variable");
    assert_eq!(answer.value, "42");
    let sequences: Vec<u64> = lines.iter().map(|line| line.sequence).collect();
    assert!(
        sequences.windows(2).all(|pair| pair[0] < pair[1]),
        "{sequences:?}"
    );

    transport
        .complete_script(&target, "runs-1")
        .await
        .expect("complete");
    let message = unusable_message(
        transport
            .script_status(&target, "runs-1", 0)
            .await
            .expect_err("completed tickets are gone"),
    );
    assert!(message.contains("no ticket \"runs-1\""), "{message}");
}

#[tokio::test]
async fn starting_a_ticket_twice_runs_it_once() {
    let Some(sshd) = start_sshd(SshdConfig::default()) else {
        return;
    };
    let transport = sshd.transport();
    let target = sshd.pinned_target();
    prepare(&transport, &target).await;
    let runs = sshd.directory.path().join("runs.txt");
    let request = bash(
        "once-1",
        &format!("echo ran >> '{}'\nsleep 0.3\necho done", runs.display()),
    );
    assert_eq!(
        transport
            .start_script(&target, &request)
            .await
            .expect("start"),
        StartOutcome::Started
    );
    assert_eq!(
        transport
            .start_script(&target, &request)
            .await
            .expect("start"),
        StartOutcome::AlreadyStarted
    );
    wait_until_finished(&transport, &target, "once-1", 0).await;

    // A new transport (a restarted server) asks the target, which refuses to run it again.
    let restarted = sshd.transport();
    assert_eq!(
        restarted
            .start_script(&target, &request)
            .await
            .expect("start"),
        StartOutcome::AlreadyStarted
    );
    let (status, lines) = wait_until_finished(&restarted, &target, "once-1", 0).await;
    assert_eq!(status.state, ScriptState::Complete { exit_code: 0 });
    assert!(texts(&lines).contains(&"done"), "{lines:#?}");
    assert_eq!(std::fs::read_to_string(&runs).expect("runs"), "ran\n");
}

#[tokio::test]
async fn cancel_stops_a_sleeping_script() {
    let Some(sshd) = start_sshd(SshdConfig::default()) else {
        return;
    };
    let transport = sshd.transport();
    let target = sshd.pinned_target();
    prepare(&transport, &target).await;
    let request = bash("cancel-1", "echo started\nsleep 60\necho never");
    transport
        .start_script(&target, &request)
        .await
        .expect("start");
    let after = wait_for_line(&transport, &target, "cancel-1", "started").await;
    let cancelled_at = Instant::now();
    transport
        .cancel_script(&target, "cancel-1")
        .await
        .expect("cancel");
    let (status, lines) = wait_until_finished(&transport, &target, "cancel-1", after).await;
    assert_eq!(status.state, ScriptState::Cancelled);
    assert!(!texts(&lines).contains(&"never"), "{lines:#?}");
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(20),
        "cancelling took {:?}",
        cancelled_at.elapsed()
    );
}

#[tokio::test]
async fn a_new_transport_reattaches_by_ticket_while_the_script_runs_on() {
    let Some(sshd) = start_sshd(SshdConfig::default()) else {
        return;
    };
    let target = sshd.pinned_target();
    let first = sshd.transport();
    prepare(&first, &target).await;
    let request = bash("reattach-1", "echo one\nsleep 2\necho two\nexit 7");
    first.start_script(&target, &request).await.expect("start");
    let after = wait_for_line(&first, &target, "reattach-1", "one").await;
    // The server goes away: its connections close with it.
    drop(first);

    let second = sshd.transport();
    let (status, lines) = wait_until_finished(&second, &target, "reattach-1", after).await;
    assert_eq!(texts(&lines), ["two"]);
    // The script went on running on the target: it finished, it was not lost.
    assert_eq!(status.state, ScriptState::Complete { exit_code: 7 });
    let (replayed, all_lines) = wait_until_finished(&second, &target, "reattach-1", 0).await;
    assert_eq!(replayed.state, status.state);
    assert_eq!(texts(&all_lines), ["one", "two"]);
    second
        .complete_script(&target, "reattach-1")
        .await
        .expect("complete");
}

#[tokio::test]
async fn the_binary_is_uploaded_once() {
    let Some(sshd) = start_sshd(SshdConfig::default()) else {
        return;
    };
    let target = sshd.pinned_target();
    let binaries = sshd.directory.path().join("binaries");
    let with_own_directory = |options: &mut SshTransportOptions| {
        options.remote_binary_directory = binaries.display().to_string();
    };
    let first = sshd.transport_with(sshd.key_account(), with_own_directory);
    first.prepare(&target).await.expect("upload");
    let uploaded: Vec<PathBuf> = std::fs::read_dir(&binaries)
        .expect("the binary directory exists")
        .map(|entry| entry.expect("an entry").path())
        .collect();
    assert_eq!(uploaded.len(), 1, "{uploaded:?}");
    let binary = &uploaded[0];
    let name = binary
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    assert!(
        name.starts_with("cuttle-") && name.len() == "cuttle-".len() + 16,
        "{name}"
    );
    let before = std::fs::metadata(binary).expect("metadata");
    assert_eq!(
        before.len(),
        std::fs::metadata(CUTTLE).expect("metadata").len()
    );
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(before.permissions().mode() & 0o777, 0o755);
    }

    let second = sshd.transport_with(sshd.key_account(), with_own_directory);
    second
        .start_script(&target, &bash("upload-once-1", "echo hi"))
        .await
        .expect("start");
    let (status, _lines) = wait_until_finished(&second, &target, "upload-once-1", 0).await;
    assert_eq!(status.state, ScriptState::Complete { exit_code: 0 });
    let after = std::fs::metadata(binary).expect("metadata");
    {
        use std::os::unix::fs::MetadataExt as _;
        assert_eq!((after.ino(), after.mtime()), (before.ino(), before.mtime()));
    }
    let files = std::fs::read_dir(&binaries).expect("read").count();
    assert_eq!(files, 1, "no temporary upload is left behind");
}

#[tokio::test]
async fn twenty_concurrent_status_calls_share_one_connection() {
    let Some(sshd) = start_sshd(SshdConfig {
        max_sessions: 30,
        ..SshdConfig::default()
    }) else {
        return;
    };
    let target = sshd.pinned_target();
    let starter = sshd.transport();
    prepare(&starter, &target).await;
    starter
        .start_script(&target, &bash("shared-1", "echo a\necho b"))
        .await
        .expect("start");
    wait_until_finished(&starter, &target, "shared-1", 0).await;

    // A fresh transport has no journal: every call is `cuttle exec status` on the target.
    let transport = sshd.transport_with(sshd.key_account(), |options| {
        options.channels_per_connection = 20;
    });
    let calls = (0..20).map(|_| transport.script_status(&target, "shared-1", 0));
    let answers = futures::future::join_all(calls).await;
    for answer in answers {
        let status = answer.expect("status");
        assert_eq!(status.state, ScriptState::Complete { exit_code: 0 });
        assert_eq!(texts(&status.lines), ["a", "b"]);
    }
    assert_eq!(transport.open_connections().await, 1);
}

#[tokio::test]
async fn calls_beyond_sshd_max_sessions_still_succeed() {
    let Some(sshd) = start_sshd(SshdConfig {
        max_sessions: 4,
        ..SshdConfig::default()
    }) else {
        return;
    };
    let target = sshd.pinned_target();
    let transport = sshd.transport_with(sshd.key_account(), |options| {
        options.channels_per_connection = 10;
    });
    prepare(&transport, &target).await;
    let calls = (0..12).map(|_| transport.check_health(&target));
    for answer in futures::future::join_all(calls).await {
        answer.expect("healthy");
    }
    let connections = transport.open_connections().await;
    assert!((2..=4).contains(&connections), "{connections} connections");
}

// ---------------------------------------------------------------------------------------
// `cuttle exec` on its own

fn exec(root: &Path, arguments: &[&str], stdin: &[u8]) -> (Vec<ExecRecord>, Option<i32>) {
    let mut child = Command::new(CUTTLE)
        .arg("exec")
        .arg("--root")
        .arg(root)
        .args(arguments)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cuttle exec");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write the request");
    let output = child.wait_with_output().expect("cuttle exec");
    let records = String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{line}: {error}")))
        .collect();
    (records, output.status.code())
}

#[test]
fn cuttle_exec_runs_a_request_from_stdin_and_reattaches() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let mut request = bash(
        "cli-1",
        "echo \"value $(get_octopusvariable Token)\"\nexit 5",
    );
    request.variables = vec![ScriptVariable::sensitive("Token", "tok-secret-77")];
    let body = serde_json::to_vec(&request).expect("json");

    let (records, code) = exec(root.path(), &[], &body);
    assert_eq!(code, Some(0));
    assert_eq!(records[0], ExecRecord::Start(StartOutcome::Started));
    let ExecRecord::Line(line) = &records[1] else {
        panic!("{records:#?}");
    };
    assert_eq!(line.text, "value ********");
    let Some(ExecRecord::Result(result)) = records.last() else {
        panic!("{records:#?}");
    };
    assert_eq!(result.exit_code, 5);

    // Again: nothing runs, the log is replayed.
    let (again, code) = exec(root.path(), &[], &body);
    assert_eq!(code, Some(0));
    assert_eq!(again[0], ExecRecord::Start(StartOutcome::AlreadyStarted));
    assert_eq!(again[1..], records[1..]);

    let (status, code) = exec(
        root.path(),
        &["status", "--ticket", "cli-1", "--after", "0"],
        b"",
    );
    assert_eq!(code, Some(0));
    let [ExecRecord::Status(status)] = &status[..] else {
        panic!("{status:#?}");
    };
    assert_eq!(status.state, ScriptState::Complete { exit_code: 5 });
    assert_eq!(status.lines.len(), 1);

    let (done, code) = exec(root.path(), &["complete", "--ticket", "cli-1"], b"");
    assert_eq!(
        (done, code),
        (vec![ExecRecord::Done("complete".into())], Some(0))
    );
    let (gone, code) = exec(root.path(), &["status", "--ticket", "cli-1"], b"");
    assert_eq!(code, Some(1));
    let [ExecRecord::Error(failure)] = &gone[..] else {
        panic!("{gone:#?}");
    };
    assert_eq!(failure.kind, ExecFailureKind::UnknownTicket);
}

#[test]
fn cuttle_exec_completes_the_ticket_when_asked_after_the_result() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let mut input = serde_json::to_vec(&bash("cli-2", "echo done")).expect("json");
    input.extend_from_slice(b"\ncomplete\n");
    let (records, code) = exec(root.path(), &[], &input);
    assert_eq!(code, Some(0));
    let [
        ExecRecord::Start(StartOutcome::Started),
        ExecRecord::Line(line),
        ExecRecord::Result(result),
        ExecRecord::Done(done),
    ] = &records[..]
    else {
        panic!("{records:#?}");
    };
    assert_eq!(line.text, "done");
    assert_eq!(result.exit_code, 0);
    assert_eq!(done, "complete");
    let (gone, code) = exec(root.path(), &["status", "--ticket", "cli-2"], b"");
    assert_eq!(code, Some(1), "{gone:#?}");
}

#[test]
fn cuttle_exec_refuses_a_bad_request_without_echoing_it() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let (records, code) = exec(
        root.path(),
        &[],
        br#"{"Ticket": "t", "Syntax": "Bash", "Body": 42, "Secret": "leak-me-9"}"#,
    );
    assert_eq!(code, Some(1));
    let [ExecRecord::Error(failure)] = &records[..] else {
        panic!("{records:#?}");
    };
    assert_eq!(failure.kind, ExecFailureKind::InvalidRequest);
    assert!(!failure.message.contains("leak-me"), "{}", failure.message);

    let (records, code) = exec(root.path(), &["cancel", "--ticket", "../escape"], b"");
    assert_eq!(code, Some(1));
    assert!(
        matches!(&records[..], [ExecRecord::Error(failure)] if failure.kind == ExecFailureKind::InvalidRequest),
        "{records:#?}"
    );
}

/// Polls a task through the API until it completes.
async fn wait_for_server_task(
    server: &cuttle_test_support::TestServer,
    id: &str,
) -> serde_json::Value {
    for _ in 0..600 {
        let task: serde_json::Value = server
            .client
            .get(&format!("/api/tasks/{id}"))
            .await
            .expect("poll the task");
        if task["IsCompleted"] == true {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("task {id} did not complete");
}

#[tokio::test]
async fn an_ssh_target_is_checked_and_runs_scripts_through_the_server() {
    let Some(sshd) = start_sshd(SshdConfig::default()) else {
        return;
    };
    let remote = sshd.directory.path().join("remote");
    let server = cuttle_test_support::TestServer::start_with(
        Path::new(CUTTLE),
        cuttle_test_support::ServerOptions {
            environment: vec![(
                "CUTTLE_SSH_REMOTE_DIRECTORY".to_owned(),
                remote.display().to_string(),
            )],
            ..cuttle_test_support::ServerOptions::default()
        },
    )
    .await
    .expect("start the server");
    let client = &server.client;
    let environment: serde_json::Value = client
        .post(
            "/api/Spaces-1/environments",
            &serde_json::json!({"Name": "Production"}),
        )
        .await
        .expect("create an environment");
    let account: serde_json::Value = client
        .post(
            "/api/Spaces-1/accounts",
            &serde_json::json!({"Name": "deploy key", "AccountType": "SshKeyPair", "Username": sshd.username,
                "PrivateKeyFile": {"NewValue": sshd.client_key}}),
        )
        .await
        .expect("create the account");
    let target: serde_json::Value = client
        .post(
            "/api/Spaces-1/machines",
            &serde_json::json!({"Name": "ssh01", "EnvironmentIds": [environment["Id"]], "Roles": ["db"],
                "Endpoint": {"CommunicationStyle": "Ssh", "Host": "127.0.0.1", "Port": sshd.port,
                    "AccountId": account["Id"], "Fingerprint": sshd.host_fingerprint}}),
        )
        .await
        .expect("create the target");
    let target_id = target["Id"].as_str().expect("an id").to_owned();

    let health: serde_json::Value = client
        .post(
            "/api/Spaces-1/tasks",
            &serde_json::json!({"Name": "Health", "Arguments": {"MachineIds": [target_id]}}),
        )
        .await
        .expect("start a health check");
    let health_id = health["Id"].as_str().expect("id").to_owned();
    let health = wait_for_server_task(&server, &health_id).await;
    let health_log = client
        .raw(
            reqwest::Method::GET,
            &format!("/api/Spaces-1/tasks/{health_id}/raw"),
            None,
        )
        .await
        .expect("read the log")
        .body;
    assert_eq!(health["State"], "Success", "{health_log}");
    let checked: serde_json::Value = client
        .get(&format!("/api/Spaces-1/machines/{target_id}"))
        .await
        .expect("read the target");
    assert_eq!(checked["HealthStatus"], "Healthy", "{checked}");

    let script: serde_json::Value = client
        .post(
            "/api/Spaces-1/tasks",
            &serde_json::json!({"Name": "AdHocScript", "Arguments": {"ScriptBody": "echo \"hello from $(get_octopusvariable Octopus.Machine.Name)\"", "TargetRoles": ["db"]}}),
        )
        .await
        .expect("start a script");
    let id = script["Id"].as_str().expect("id").to_owned();
    let script = wait_for_server_task(&server, &id).await;
    let log = client
        .raw(
            reqwest::Method::GET,
            &format!("/api/Spaces-1/tasks/{id}/raw"),
            None,
        )
        .await
        .expect("read the log")
        .body;
    assert_eq!(script["State"], "Success", "{log}");
    assert!(log.contains("hello from ssh01"), "{log}");

    // A host key that is not the pinned one fails the target clearly.
    let mut pinned_wrong = checked.clone();
    pinned_wrong["Endpoint"]["Fingerprint"] =
        serde_json::json!("SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let _: serde_json::Value = client
        .put(
            &format!("/api/Spaces-1/machines/{target_id}"),
            &pinned_wrong,
        )
        .await
        .expect("pin another key");
    let health: serde_json::Value = client
        .post(
            "/api/Spaces-1/tasks",
            &serde_json::json!({"Name": "Health", "Arguments": {"MachineIds": [target_id]}}),
        )
        .await
        .expect("start a health check");
    let health = wait_for_server_task(&server, health["Id"].as_str().expect("id")).await;
    assert_eq!(health["State"], "Failed", "{health}");
    let refused: serde_json::Value = client
        .get(&format!("/api/Spaces-1/machines/{target_id}"))
        .await
        .expect("read the target");
    assert_eq!(refused["HealthStatus"], "Unhealthy");
    assert!(
        refused["StatusSummary"]
            .as_str()
            .unwrap_or_default()
            .contains("changed"),
        "{refused}"
    );
}

// ---------------------------------------------------------------------------------------
// Packages

/// A zip holding `version.txt` and 256 KiB of content that changes little between versions,
/// so a delta between two versions is small.
fn web_package(directory: &Path, version: &str) -> (PathBuf, CachedPackage) {
    let path = directory.join(format!("web.{version}.zip"));
    let mut writer = zip::ZipWriter::new(std::fs::File::create(&path).expect("create the zip"));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    writer
        .start_file("version.txt", stored)
        .expect("start an entry");
    writer.write_all(version.as_bytes()).expect("write");
    writer
        .start_file("data.bin", stored)
        .expect("start an entry");
    let data: Vec<u8> = (0..256 * 1024u32)
        .map(|index| (index.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    writer.write_all(&data).expect("write");
    writer.finish().expect("finish the zip");
    let bytes = std::fs::read(&path).expect("read the zip");
    let package = CachedPackage {
        package_id: "web".to_owned(),
        version: version.to_owned(),
        file_extension: ".zip".to_owned(),
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
        length: bytes.len() as u64,
    };
    (path, package)
}

#[tokio::test]
async fn packages_reach_the_target_cache_in_full_and_as_deltas_and_deploy_there() {
    let Some(sshd) = start_sshd(SshdConfig::default()) else {
        return;
    };
    let transport = sshd.transport();
    let target = sshd.pinned_target();
    prepare(&transport, &target).await;
    let local = tempfile::tempdir().expect("temporary directory");

    let support = transport.package_support(&target).await.expect("support");
    assert!(support.deploy && support.cache, "{support:?}");
    assert_eq!(
        transport
            .cached_packages(&target, "web")
            .await
            .expect("list"),
        []
    );

    // The first version goes whole, over SFTP, and is checked on the target.
    let (first_path, first) = web_package(local.path(), "1.0.0");
    let stored = transport
        .upload_package(
            &target,
            &PackageFile {
                package: first.clone(),
                path: first_path,
            },
        )
        .await
        .expect("upload the package");
    assert_eq!(stored, first);
    assert_eq!(
        transport
            .cached_packages(&target, "web")
            .await
            .expect("list"),
        std::slice::from_ref(&first)
    );
    let cache = sshd.directory.path().join("packages");
    assert!(cache.join(first.file_name()).is_file());
    // Nothing is left in the upload directory.
    let uploads: Vec<_> = std::fs::read_dir(sshd.directory.path().join("uploads"))
        .expect("the upload directory")
        .collect();
    assert!(uploads.is_empty(), "{uploads:?}");

    // A file whose content does not match its record is refused and removed.
    let (wrong_path, mut wrong) = web_package(local.path(), "1.0.5");
    wrong.sha256 = "0".repeat(64);
    let refused = transport
        .upload_package(
            &target,
            &PackageFile {
                package: wrong,
                path: wrong_path,
            },
        )
        .await
        .expect_err("a checksum mismatch");
    let message = refused.to_string();
    assert!(message.contains("0000000000"), "{message}");

    // The next version goes as a delta against the cached one.
    let (second_path, second) = web_package(local.path(), "1.0.1");
    let signature = transport
        .package_signature(&target, &first.sha256)
        .await
        .expect("the signature");
    let delta = match cuttle_delta::plan_delta(&signature, &second_path).expect("plan") {
        cuttle_delta::DeltaPlan::SendDelta(delta) => delta,
        cuttle_delta::DeltaPlan::SendFull { .. } => panic!("the versions differ by a few bytes"),
    };
    assert!(
        (delta.bytes.len() as u64) < second.length / 10,
        "{} bytes of delta for {} bytes",
        delta.bytes.len(),
        second.length
    );
    let patched = transport
        .apply_package_delta(&target, &first.sha256, delta.bytes, &second)
        .await
        .expect("apply the delta");
    assert_eq!(patched, second);

    // A package deployment names the cached file; `cuttle exec` finds it in its cache.
    let applications = sshd.directory.path().join("Applications");
    let mut request = ScriptRequest::new("package-1", ScriptSyntax::Bash, "");
    request.package_deployment = Some(PackageDeployment {
        package_id: "web".into(),
        version: "1.0.1".into(),
        package_path: second.file_name().into(),
        package_sha256: Some(second.sha256.clone()),
        applications_directory: Some(applications.clone()),
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
            deployment_id: "Deployments-1".into(),
            environment_id: "Environments-1".into(),
            project_id: "Projects-1".into(),
            step_name: "Deploy web".into(),
            machine_id: "Machines-1".into(),
            tenant_id: None,
        },
    });
    transport
        .start_script(&target, &request)
        .await
        .expect("start the package deployment");
    let (status, lines) = wait_until_finished(&transport, &target, "package-1", 0).await;
    assert_eq!(
        status.state,
        ScriptState::Complete { exit_code: 0 },
        "{:#?}",
        texts(&lines)
    );
    let installed = applications.join("Production/web/1.0.1/version.txt");
    assert_eq!(
        std::fs::read_to_string(&installed).expect("the installed file"),
        "1.0.1"
    );
}
