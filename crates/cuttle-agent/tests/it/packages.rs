//! The package cache calls in both modes: a package goes in by SHA-256 and is listed; a delta
//! from it, signed by the agent, patches a new version into the cache; a lying upload or delta
//! is refused and leaves nothing.

use bytes::Bytes;
use cuttle_agent::files::sha256_hex;
use cuttle_exec::CachedPackage;

use crate::helpers::{Fixture, Mode, within};

fn package(version: &str, content: &[u8]) -> CachedPackage {
    CachedPackage {
        package_id: "Acme.Web".to_owned(),
        version: version.to_owned(),
        file_extension: ".zip".to_owned(),
        sha256: sha256_hex(content),
        length: content.len() as u64,
    }
}

in_both_modes!(packages_are_cached_by_hash_and_patched_by_delta);
async fn packages_are_cached_by_hash_and_patched_by_delta(mode: Mode) {
    let fixture = Fixture::start(mode).await;
    let connection = &fixture.connection;
    let old_content: Vec<u8> = (0..200_000_u32).flat_map(u32::to_le_bytes).collect();
    let mut new_content = old_content.clone();
    new_content[5_000..5_200].fill(9);
    let old_file = fixture.home.path().join("Acme.Web.1.0.0.zip");
    let new_file = fixture.home.path().join("Acme.Web.1.0.1.zip");
    std::fs::write(&old_file, &old_content).expect("write");
    std::fs::write(&new_file, &new_content).expect("write");
    let old = package("1.0.0", &old_content);
    let new = package("1.0.1", &new_content);

    assert!(
        within(connection.cached_packages("Acme.Web"))
            .await
            .expect("listed")
            .is_empty()
    );
    // A file whose bytes are not the named package's is refused.
    let mut lying = old.clone();
    lying.sha256 = new.sha256.clone();
    let error = within(connection.upload_package(&lying, &old_file))
        .await
        .expect_err("a mismatch");
    assert_eq!(
        error.status().map(|status| status.as_u16()),
        Some(400),
        "{error}"
    );
    assert_eq!(
        within(connection.upload_package(&old, &old_file))
            .await
            .expect("cached"),
        old
    );
    assert_eq!(
        within(connection.cached_packages("acme.web"))
            .await
            .expect("listed"),
        vec![old.clone()]
    );

    let signature = within(connection.package_signature(&old.sha256))
        .await
        .expect("signed");
    let cuttle_delta::DeltaPlan::SendDelta(delta) =
        cuttle_delta::plan_delta(&signature, &new_file).expect("planned")
    else {
        panic!("a 200-byte change is sent as a delta");
    };
    assert!(delta.bytes.len() < new_content.len() / 10);
    // A delta applied as the wrong package fails verification and stores nothing.
    let mut wrong = new.clone();
    wrong.sha256 = "0".repeat(64);
    within(connection.apply_package_delta(&old.sha256, Bytes::from(delta.bytes.clone()), &wrong))
        .await
        .expect_err("the patched file is not the claimed one");
    let patched =
        within(connection.apply_package_delta(&old.sha256, Bytes::from(delta.bytes), &new))
            .await
            .expect("patched");
    assert_eq!(patched, new);
    let mut listed = within(connection.cached_packages("Acme.Web"))
        .await
        .expect("listed");
    listed.sort_by(|left, right| left.version.cmp(&right.version));
    assert_eq!(listed, vec![old, new.clone()]);
    assert_eq!(
        std::fs::read(fixture.home.path().join("packages").join(new.file_name())).expect("read"),
        new_content
    );
    // The used delta files are gone from the file store.
    let files: Vec<String> = std::fs::read_dir(fixture.home.path().join("files"))
        .expect("list")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.is_empty(), "{files:?}");
    let missing = within(connection.package_signature(&"a".repeat(64)))
        .await
        .expect_err("not cached");
    assert_eq!(missing.status().map(|status| status.as_u16()), Some(404));
}
