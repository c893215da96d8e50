//! The isolation mutex: full isolation serializes, none overlaps, other processes count too.

use std::path::Path;
use std::time::Duration;

use cuttle_exec::{Isolation, ScriptState, ScriptStatus, ScriptSyntax, exit_codes};

use crate::support::{assert_exit, fixture, request, texts, wait_for_line};

/// A script that prints `start <ns>` and `end <ns>` around a pause.
const TIMED_BODY: &str = "echo \"start $(date +%s%N)\"\nsleep 0.4\necho \"end $(date +%s%N)\"";

fn interval(status: &ScriptStatus) -> (u128, u128) {
    let value = |prefix: &str| -> u128 {
        texts(status)
            .iter()
            .find_map(|text| text.strip_prefix(prefix))
            .expect("timestamp line")
            .parse()
            .expect("nanoseconds")
    };
    (value("start "), value("end "))
}

async fn run_two(isolation: Isolation, body_a: &str, body_b: &str) -> (ScriptStatus, ScriptStatus) {
    let fixture = fixture();
    for (ticket, body) in [("a", body_a), ("b", body_b)] {
        let mut script = request(ticket, ScriptSyntax::Bash, body);
        script.isolation = isolation;
        script.isolation_mutex_name = Some("Deploy.Web".into());
        fixture.executor.start(script).await.expect("start");
    }
    for ticket in ["a", "b"] {
        tokio::time::timeout(Duration::from_secs(60), fixture.executor.wait(ticket))
            .await
            .expect("in time")
            .expect("wait");
    }
    (
        fixture.executor.status("a", 0).await.expect("status"),
        fixture.executor.status("b", 0).await.expect("status"),
    )
}

#[tokio::test]
async fn full_isolation_serializes_scripts() {
    let (a, b) = run_two(Isolation::Full, TIMED_BODY, TIMED_BODY).await;
    assert_exit(&a, 0);
    assert_exit(&b, 0);
    let (first, second) = {
        let (a, b) = (interval(&a), interval(&b));
        if a.0 <= b.0 { (a, b) } else { (b, a) }
    };
    assert!(
        first.1 <= second.0,
        "the scripts overlapped: {first:?} and {second:?}"
    );
    // The second one said it waited.
    let waited = [&a, &b]
        .iter()
        .filter(|status| {
            texts(status)
                .iter()
                .any(|text| text.starts_with("Waiting for the script isolation mutex 'Deploy.Web'"))
        })
        .count();
    assert_eq!(waited, 1);
}

#[tokio::test]
async fn no_isolation_lets_scripts_overlap() {
    let marks = tempfile::tempdir().expect("marks");
    // Each script announces itself and waits for the other: only possible if both run at once.
    let body = |me: &str, other: &str| {
        format!(
            "echo \"start $(date +%s%N)\"\ntouch '{dir}/{me}'\nfor i in $(seq 1 200); do [ -e '{dir}/{other}' ] && break; sleep 0.05; done\n[ -e '{dir}/{other}' ] || exit 9\necho \"end $(date +%s%N)\"",
            dir = marks.path().display()
        )
    };
    let (a, b) = run_two(Isolation::None, &body("a", "b"), &body("b", "a")).await;
    assert_exit(&a, 0);
    assert_exit(&b, 0);
    let (a, b) = (interval(&a), interval(&b));
    assert!(a.0 < b.1 && b.0 < a.1, "no overlap: {a:?} {b:?}");
}

#[tokio::test]
async fn a_lock_held_by_another_process_is_respected() {
    if !crate::support::command_exists("flock") {
        println!("note: flock(1) is not installed; the cross-process isolation test is skipped");
        return;
    }
    let fixture = fixture();
    let lock_file = fixture.root.path().join("locks/RunningScript.lock");
    let marks = tempfile::tempdir().expect("marks");
    let released = marks.path().join("released");
    // Another process (as a separately started `cuttle exec` would) holds the mutex for a while.
    let mut holder = std::process::Command::new("flock")
        .arg(&lock_file)
        .args(["-c", &format!("sleep 1; touch '{}'", released.display())])
        .spawn()
        .expect("start flock");
    wait_until_locked(&lock_file).await;
    let body = format!("[ -e '{}' ] && echo after-release", released.display());
    fixture
        .executor
        .start(request("respects", ScriptSyntax::Bash, &body))
        .await
        .expect("start");
    wait_for_line(
        &fixture.executor,
        "respects",
        "Waiting for the script isolation mutex",
    )
    .await;
    assert_eq!(
        fixture.executor.wait("respects").await.expect("wait"),
        ScriptState::Complete { exit_code: 0 }
    );
    let status = fixture
        .executor
        .status("respects", 0)
        .await
        .expect("status");
    assert_eq!(texts(&status).last(), Some(&"after-release"));
    holder.wait().expect("flock exits");
}

async fn wait_until_locked(lock_file: &Path) {
    for _ in 0..200 {
        let free = std::process::Command::new("flock")
            .args(["-n", "-s"])
            .arg(lock_file)
            .arg("true")
            .status()
            .expect("probe")
            .success();
        if !free {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the other process never took the lock");
}

#[tokio::test]
async fn waiting_for_the_mutex_can_time_out() {
    let fixture = fixture();
    fixture
        .executor
        .start(request(
            "long",
            ScriptSyntax::Bash,
            "echo holding\nsleep 1000",
        ))
        .await
        .expect("start");
    wait_for_line(&fixture.executor, "long", "holding").await;
    let mut impatient = request("impatient", ScriptSyntax::Bash, "echo never");
    impatient.isolation_mutex_timeout = Some(Duration::from_millis(300));
    fixture.executor.start(impatient).await.expect("start");
    let state = fixture.executor.wait("impatient").await.expect("wait");
    assert_eq!(
        state,
        ScriptState::Complete {
            exit_code: exit_codes::ISOLATION_MUTEX_TIMEOUT
        }
    );
    let status = fixture
        .executor
        .status("impatient", 0)
        .await
        .expect("status");
    assert!(!texts(&status).contains(&"never"));
    fixture.executor.cancel("long").await.expect("cancel");
    fixture.executor.wait("long").await.expect("wait");
}
