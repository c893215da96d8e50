//! An executor opened on a relative root (the server's default data directory is
//! `./cuttle-data`) still runs scripts: every path it hands a script is absolute. Its own test
//! binary, because it changes the process's working directory.

use cuttle_exec::{ForegroundFormat, ScriptRequest, ScriptState, ScriptSyntax, run_foreground};

#[tokio::test]
async fn a_relative_root_runs_scripts() {
    let directory = tempfile::tempdir().expect("temporary directory");
    std::env::set_current_dir(directory.path()).expect("enter the temporary directory");
    let request = ScriptRequest::new(
        "relative-1",
        ScriptSyntax::Bash,
        "echo from a relative root",
    );
    let mut output = Vec::new();
    let result = run_foreground(
        std::path::Path::new("./cuttle-data/worker"),
        request,
        ForegroundFormat::Text,
        &mut output,
        std::future::pending(),
    )
    .await
    .expect("run the script");
    let text = String::from_utf8_lossy(&output);
    assert_eq!(
        result.state,
        ScriptState::Complete { exit_code: 0 },
        "{text}"
    );
    assert!(text.contains("from a relative root"), "{text}");
}
