//! The script isolation mutex: a named reader/writer lock shared by every executor process on
//! the machine (the agent, the built-in worker, a separately started `cuttle exec`).
//!
//! `Full` isolation takes the lock exclusively, `None` shared, as Tentacle's
//! `ScriptIsolationMutex` does. The lock is an advisory `flock` on
//! `<root>/locks/<name>.lock`, so it is enforced across processes and released by the kernel
//! if the holder dies. Files are opened close-on-exec, so a script's children never inherit it.
//!
//! Waiting polls a non-blocking `flock` (every [`POLL_INTERVAL`]), so a waiter can be
//! cancelled or time out at any moment. To keep a stream of shared holders from starving an
//! exclusive waiter, every acquirer first passes a *gate* (`<name>.gate`, taken in the same
//! mode and held only while waiting for the lock): an exclusive waiter holding the gate
//! stops new shared holders from entering until it has had its turn.
//!
//! On platforms without `flock` this module grants every request at once (no isolation).

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::ExecError;
use crate::request::Isolation;

/// How often a waiter retries. `flock` wakes nobody when the lock is freed, so the next
/// script starts at the first retry after the last ended: with many short scripts queued on
/// one machine (an ad-hoc script on many targets that share a host and account) the interval,
/// not the scripts, would set the pace. A retry is one non-blocking `flock` call.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Holds the mutex until dropped.
#[derive(Debug)]
pub(crate) struct MutexGuard {
    _lock: File,
}

/// Why the mutex was not acquired.
#[derive(Debug)]
pub(crate) enum AcquireError {
    Cancelled,
    TimedOut,
    Failed(ExecError),
}

/// Takes the mutex `name` in the mode `isolation` asks for. Calls `on_wait` once, with a
/// sentence for the log, if it has to wait.
pub(crate) async fn acquire(
    locks_directory: &Path,
    name: &str,
    isolation: Isolation,
    timeout: Option<Duration>,
    cancel: &mut watch::Receiver<bool>,
    mut on_wait: impl FnMut(String),
) -> Result<MutexGuard, AcquireError> {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let gate = open_lock_file(&locks_directory.join(format!("{name}.gate")))
        .map_err(AcquireError::Failed)?;
    let lock = open_lock_file(&locks_directory.join(format!("{name}.lock")))
        .map_err(AcquireError::Failed)?;
    let mut announced = false;
    let mut announce = || {
        if !announced {
            announced = true;
            on_wait(match isolation {
                Isolation::Full => format!(
                    "Waiting for the script isolation mutex '{name}' (full isolation): another script holds it"
                ),
                Isolation::None => format!(
                    "Waiting for the script isolation mutex '{name}' (no isolation): a script with full isolation holds it or is waiting for it"
                ),
            });
        }
    };
    for file in [&gate, &lock] {
        loop {
            if *cancel.borrow_and_update() {
                return Err(AcquireError::Cancelled);
            }
            if try_lock(file, isolation).map_err(AcquireError::Failed)? {
                break;
            }
            announce();
            let sleep_until = match deadline {
                Some(deadline) if Instant::now() >= deadline => {
                    return Err(AcquireError::TimedOut);
                }
                Some(deadline) => deadline.min(Instant::now() + POLL_INTERVAL),
                None => Instant::now() + POLL_INTERVAL,
            };
            tokio::select! {
                () = tokio::time::sleep_until(sleep_until) => {}
                () = cancelled(cancel) => return Err(AcquireError::Cancelled),
            }
        }
    }
    drop(gate);
    Ok(MutexGuard { _lock: lock })
}

/// Resolves when `cancel` turns true; never, if its sender is gone.
pub(crate) async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    loop {
        if *cancel.borrow_and_update() {
            return;
        }
        if cancel.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

fn open_lock_file(path: &Path) -> Result<File, ExecError> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(ExecError::io("open the lock file", path))
}

/// Tries to take `file`'s lock without blocking; `Ok(false)` when another holder prevents it.
#[cfg(unix)]
pub(crate) fn try_lock(file: &File, isolation: Isolation) -> Result<bool, ExecError> {
    use rustix::fs::{FlockOperation, flock};
    let operation = match isolation {
        Isolation::Full => FlockOperation::NonBlockingLockExclusive,
        Isolation::None => FlockOperation::NonBlockingLockShared,
    };
    match flock(file, operation) {
        Ok(()) => Ok(true),
        Err(errno) if errno == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(errno) => Err(ExecError::Io {
            action: "lock",
            path: "the isolation mutex".into(),
            source: errno.into(),
        }),
    }
}

#[cfg(not(unix))]
pub(crate) fn try_lock(_file: &File, _isolation: Isolation) -> Result<bool, ExecError> {
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exclusive_excludes_and_shared_shares() {
        let directory = tempfile::tempdir().expect("tempdir");
        let (_sender, mut cancel) = watch::channel(false);
        let short = Some(Duration::from_millis(150));
        let first = acquire(
            directory.path(),
            "m",
            Isolation::None,
            None,
            &mut cancel,
            |_| {},
        )
        .await
        .expect("first shared");
        let second = acquire(
            directory.path(),
            "m",
            Isolation::None,
            short,
            &mut cancel,
            |_| {},
        )
        .await
        .expect("second shared");
        let mut waited = Vec::new();
        let exclusive = acquire(
            directory.path(),
            "m",
            Isolation::Full,
            short,
            &mut cancel,
            |m| {
                waited.push(m);
            },
        )
        .await;
        assert!(matches!(exclusive, Err(AcquireError::TimedOut)));
        assert_eq!(waited.len(), 1, "{waited:?}");
        drop((first, second));
        let exclusive = acquire(
            directory.path(),
            "m",
            Isolation::Full,
            short,
            &mut cancel,
            |_| {},
        )
        .await
        .expect("exclusive once free");
        let shared = acquire(
            directory.path(),
            "m",
            Isolation::None,
            short,
            &mut cancel,
            |_| {},
        )
        .await;
        assert!(matches!(shared, Err(AcquireError::TimedOut)));
        let other_name = acquire(
            directory.path(),
            "other",
            Isolation::Full,
            short,
            &mut cancel,
            |_| {},
        )
        .await;
        assert!(other_name.is_ok());
        drop(exclusive);
    }

    #[tokio::test]
    async fn waiting_can_be_cancelled() {
        let directory = tempfile::tempdir().expect("tempdir");
        let (sender, mut cancel) = watch::channel(false);
        let _held = acquire(
            directory.path(),
            "m",
            Isolation::Full,
            None,
            &mut cancel,
            |_| {},
        )
        .await
        .expect("held");
        let (waiter_sender, mut waiter_cancel) = watch::channel(false);
        let path = directory.path().to_owned();
        let waiter = tokio::spawn(async move {
            acquire(
                &path,
                "m",
                Isolation::Full,
                None,
                &mut waiter_cancel,
                |_| {},
            )
            .await
        });
        tokio::time::sleep(POLL_INTERVAL).await;
        waiter_sender.send(true).expect("send");
        let result = waiter.await.expect("join");
        assert!(matches!(result, Err(AcquireError::Cancelled)));
        drop(sender);
    }
}
