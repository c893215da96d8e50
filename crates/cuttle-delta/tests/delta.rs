//! Signature, delta and patch over real files: the savings Octopus's rule needs, the fallback
//! to a full transfer, and that a bad delta never leaves a file behind.

use std::path::{Path, PathBuf};

use cuttle_delta::{DeltaError, DeltaPlan, apply, file_sha256_hex, plan_delta, signature};
use rand::{Rng as _, RngCore as _, SeedableRng as _};

const TEN_MIB: usize = 10 << 20;

fn random_bytes(seed: u64, length: usize) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut bytes = vec![0u8; length];
    rng.fill_bytes(&mut bytes);
    bytes
}

/// Rewrites `share_percent` % of `bytes` in ten scattered runs, and inserts a few bytes near
/// the start so most blocks move (as a rebuilt package's entries do).
fn change_percent(bytes: &[u8], share_percent: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut changed = bytes.to_vec();
    let run_length = bytes.len() * share_percent / 100 / 10;
    for run in 0..10 {
        let start = run * (bytes.len() / 10) + rng.gen_range(0..bytes.len() / 20);
        rng.fill_bytes(&mut changed[start..start + run_length]);
    }
    let inserted = random_bytes(seed + 1, 37);
    changed.splice(1000..1000, inserted);
    changed
}

fn write(directory: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = directory.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

fn file_names(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(directory)
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn a_one_percent_change_of_ten_mib_sends_under_three_percent_and_patches_exactly() {
    let directory = tempfile::tempdir().expect("tempdir");
    let old = random_bytes(1, TEN_MIB);
    let new = change_percent(&old, 1, 2);
    let basis = write(directory.path(), "App.1.0.0.zip", &old);
    let new_file = write(directory.path(), "server-App.1.0.1.zip", &new);

    let basis_signature = signature(&basis).expect("signature");
    assert!(
        basis_signature.len() < TEN_MIB / 50,
        "signature is {} bytes",
        basis_signature.len()
    );
    let DeltaPlan::SendDelta(delta) = plan_delta(&basis_signature, &new_file).expect("plan") else {
        panic!("a 1 % change should be sent as a delta");
    };
    let share = delta.bytes.len() as f64 / new.len() as f64;
    assert!(
        share < 0.03,
        "the delta is {:.2} % of the file",
        share * 100.0
    );
    assert_eq!(delta.new_file_length, new.len() as u64);
    assert_eq!(
        delta.new_file_sha256,
        file_sha256_hex(&new_file).expect("hash")
    );
    assert_eq!(delta.basis_sha256, file_sha256_hex(&basis).expect("hash"));

    let delta_file = write(directory.path(), "App.1.0.1.cuttledelta", &delta.bytes);
    let output = directory.path().join("App.1.0.1.zip");
    let applied = apply(&basis, &delta_file, &delta.new_file_sha256, &output).expect("apply");
    assert_eq!(applied.length, new.len() as u64);
    assert_eq!(std::fs::read(&output).expect("read"), new);
    assert_eq!(
        file_names(directory.path()),
        [
            "App.1.0.0.zip",
            "App.1.0.1.cuttledelta",
            "App.1.0.1.zip",
            "server-App.1.0.1.zip"
        ]
    );
}

#[test]
fn an_unrelated_file_is_sent_whole() {
    let directory = tempfile::tempdir().expect("tempdir");
    let basis = write(directory.path(), "basis", &random_bytes(3, 1 << 20));
    let new_file = write(directory.path(), "new", &random_bytes(4, 1 << 20));
    let plan = plan_delta(&signature(&basis).expect("signature"), &new_file).expect("plan");
    match plan {
        DeltaPlan::SendFull {
            delta_length_at_least,
            new_file_length,
            new_file_sha256,
        } => {
            assert!(delta_length_at_least >= new_file_length * 80 / 100);
            assert_eq!(new_file_length, 1 << 20);
            assert_eq!(new_file_sha256, file_sha256_hex(&new_file).expect("hash"));
        }
        DeltaPlan::SendDelta(delta) => panic!("expected a full transfer, got {delta:?}"),
    }
}

#[test]
fn a_corrupted_delta_fails_verification_and_leaves_nothing_behind() {
    let directory = tempfile::tempdir().expect("tempdir");
    let old = random_bytes(5, 2 << 20);
    let new = change_percent(&old, 2, 6);
    let basis = write(directory.path(), "basis", &old);
    let new_file = write(directory.path(), "new", &new);
    let DeltaPlan::SendDelta(delta) =
        plan_delta(&signature(&basis).expect("signature"), &new_file).expect("plan")
    else {
        panic!("expected a delta");
    };
    // Flip a byte inside the literal data near the end: the commands still parse, the
    // output is wrong, and only the SHA-256 can tell.
    let mut corrupted = delta.bytes.clone();
    let position = corrupted.len() - 100;
    corrupted[position] ^= 0xff;
    let delta_file = write(directory.path(), "delta", &corrupted);
    // An output that exists already must stay as it was.
    let output = write(directory.path(), "output", b"previous contents");
    let before = file_names(directory.path());

    let error = apply(&basis, &delta_file, &delta.new_file_sha256, &output)
        .expect_err("a corrupted delta must not apply");
    assert!(
        matches!(
            error,
            DeltaError::VerificationFailed { .. } | DeltaError::InvalidDelta(_)
        ),
        "{error}"
    );
    assert_eq!(file_names(directory.path()), before);
    assert_eq!(std::fs::read(&output).expect("read"), b"previous contents");

    // Cut short: the same.
    let truncated = write(
        directory.path(),
        "truncated",
        &delta.bytes[..delta.bytes.len() / 2],
    );
    let error = apply(&basis, &truncated, &delta.new_file_sha256, &output)
        .expect_err("a truncated delta must not apply");
    assert!(
        matches!(
            error,
            DeltaError::InvalidDelta(_) | DeltaError::VerificationFailed { .. }
        ),
        "{error}"
    );

    // A good delta against another basis, or with another expected hash, is refused before
    // anything is written.
    let good = write(directory.path(), "good", &delta.bytes);
    let other_basis = write(directory.path(), "other-basis", &random_bytes(7, 1000));
    assert!(matches!(
        apply(&other_basis, &good, &delta.new_file_sha256, &output),
        Err(DeltaError::BasisMismatch { .. })
    ));
    assert!(matches!(
        apply(&basis, &good, &"0".repeat(64), &output),
        Err(DeltaError::VerificationFailed { .. })
    ));
    assert_eq!(
        file_names(directory.path()),
        [
            "basis",
            "delta",
            "good",
            "new",
            "other-basis",
            "output",
            "truncated"
        ]
    );
    assert_eq!(std::fs::read(&output).expect("read"), b"previous contents");
}

#[test]
fn a_signature_that_is_not_one_is_an_error() {
    let directory = tempfile::tempdir().expect("tempdir");
    let new_file = write(directory.path(), "new", b"some bytes");
    assert!(matches!(
        plan_delta(b"CUTTLESIG1\nshort", &new_file),
        Err(DeltaError::InvalidSignature(_))
    ));
}
