//! Measures delta transfer of one large package: `bash bench/delta.sh` runs it in release mode.
//!
//! Builds a package of random bytes (default 100 MiB; first argument in MiB), changes 1 % of
//! it in ten scattered runs and inserts 37 bytes near the start (so almost every block moves),
//! then times signature, delta and patch, and prints a Markdown table: delta bytes as a share
//! of the full package (target ≤ 3 %) and the time of each stage. Figures only; nothing is
//! asserted here.

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::time::Instant;

use cuttle_delta::{DeltaPlan, apply, file_sha256_hex, plan_delta, signature};
use rand::{Rng as _, RngCore as _, SeedableRng as _};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mebibytes: usize = std::env::args()
        .nth(1)
        .map(|text| text.parse())
        .transpose()?
        .unwrap_or(100);
    let length = mebibytes << 20;
    let directory = tempfile::tempdir()?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut old = vec![0u8; length];
    rng.fill_bytes(&mut old);
    let mut new = old.clone();
    let run_length = length / 100 / 10;
    for run in 0..10 {
        let start = run * (length / 10) + rng.gen_range(0..length / 20);
        rng.fill_bytes(&mut new[start..start + run_length]);
    }
    new.splice(1000..1000, [0x5a; 37]);
    let basis = directory.path().join("App.1.0.0.zip");
    let new_file = directory.path().join("App.1.0.1.zip");
    std::fs::write(&basis, &old)?;
    std::fs::write(&new_file, &new)?;
    drop(old);
    drop(new);

    let started = Instant::now();
    let basis_signature = signature(&basis)?;
    let signature_time = started.elapsed();

    let started = Instant::now();
    let plan = plan_delta(&basis_signature, &new_file)?;
    let delta_time = started.elapsed();
    let DeltaPlan::SendDelta(delta) = plan else {
        return Err("the plan was a full transfer".into());
    };

    let delta_file = directory.path().join("App.1.0.1.cuttledelta");
    std::fs::write(&delta_file, &delta.bytes)?;
    let output = directory.path().join("patched.zip");
    let started = Instant::now();
    apply(&basis, &delta_file, &delta.new_file_sha256, &output)?;
    let patch_time = started.elapsed();
    if file_sha256_hex(&output)? != file_sha256_hex(&new_file)? {
        return Err("the patched file differs".into());
    }

    let full = delta.new_file_length as f64;
    println!("| Figure | Value |");
    println!("| --- | --- |");
    println!(
        "| package | {mebibytes} MiB ({} bytes) |",
        delta.new_file_length
    );
    println!(
        "| signature | {} bytes ({:.2} % of the basis), {:.2} s |",
        basis_signature.len(),
        basis_signature.len() as f64 / full * 100.0,
        signature_time.as_secs_f64()
    );
    println!(
        "| delta | {} bytes (**{:.2} %** of the full package), {:.2} s to compute |",
        delta.bytes.len(),
        delta.bytes.len() as f64 / full * 100.0,
        delta_time.as_secs_f64()
    );
    println!(
        "| patch | {:.2} s (apply, SHA-256 check, fsync, rename) |",
        patch_time.as_secs_f64()
    );
    Ok(())
}
