//! Identity files: created once, reused, private, and refused when damaged or exposed.

use cuttle_pki::{
    CERTIFICATE_FILE_NAME, Identity, PRIVATE_KEY_FILE_NAME, PkiError, normalize_thumbprint,
    thumbprint_of_der,
};

#[test]
fn identity_files_are_created_once_and_reused() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("pki");
    let (created, was_created) = Identity::load_or_create(&path, "agent-1").unwrap();
    assert!(was_created);
    let (loaded, was_created) = Identity::load_or_create(&path, "other-name").unwrap();
    assert!(!was_created);
    assert_eq!(loaded.thumbprint(), created.thumbprint());
    assert_eq!(loaded.certificate_der(), created.certificate_der());
    assert_eq!(
        loaded.private_key_der().secret_der(),
        created.private_key_der().secret_der()
    );
    assert_eq!(loaded.certificate_pem(), created.certificate_pem());
    let on_disk = std::fs::read_to_string(path.join(CERTIFICATE_FILE_NAME)).unwrap();
    assert_eq!(on_disk, created.certificate_pem());
    assert!(on_disk.starts_with("-----BEGIN CERTIFICATE-----"));
    let leftovers: Vec<_> = std::fs::read_dir(&path)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_thumbprint_is_sha256_of_the_der_certificate() {
    let identity = Identity::generate("agent-1").unwrap();
    let thumbprint = identity.thumbprint();
    assert_eq!(thumbprint, thumbprint_of_der(identity.certificate_der()));
    assert_eq!(thumbprint.len(), 64);
    assert_eq!(
        normalize_thumbprint(thumbprint).as_deref(),
        Some(thumbprint)
    );
    assert_ne!(
        thumbprint,
        Identity::generate("agent-1").unwrap().thumbprint()
    );
}

#[cfg(unix)]
#[test]
fn the_key_file_is_private_and_refused_when_others_can_read_it() {
    use std::os::unix::fs::PermissionsExt as _;
    let directory = tempfile::tempdir().unwrap();
    Identity::load_or_create(directory.path(), "agent-1").unwrap();
    let key_path = directory.path().join(PRIVATE_KEY_FILE_NAME);
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&key_path), 0o600);
    assert_eq!(
        mode(&directory.path().join(CERTIFICATE_FILE_NAME)) & 0o022,
        0
    );
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let error = Identity::load_or_create(directory.path(), "agent-1").unwrap_err();
    assert!(
        matches!(error, PkiError::KeyFileTooOpen { mode: 0o640, .. }),
        "{error}"
    );
}

#[test]
fn one_file_without_the_other_is_an_error_not_a_new_identity() {
    let directory = tempfile::tempdir().unwrap();
    Identity::load_or_create(directory.path(), "agent-1").unwrap();
    let key_path = directory.path().join(PRIVATE_KEY_FILE_NAME);
    std::fs::remove_file(&key_path).unwrap();
    let error = Identity::load_or_create(directory.path(), "agent-1").unwrap_err();
    assert!(
        matches!(&error, PkiError::IncompleteIdentity { missing, .. } if *missing == key_path),
        "{error}"
    );
    assert!(!key_path.exists());
}

#[test]
fn damaged_or_mismatched_files_are_refused() {
    let (_first_directory, first, first_key) = stored_identity("one");
    let second = Identity::generate("two").unwrap();
    assert!(matches!(
        Identity::from_pem(second.certificate_pem(), &first_key),
        Err(PkiError::KeyMismatch)
    ));
    assert!(matches!(
        Identity::from_pem("not a certificate", &first_key),
        Err(PkiError::InvalidCertificate { .. })
    ));
    let error = Identity::from_pem(first.certificate_pem(), "not a key").unwrap_err();
    assert!(
        matches!(error, PkiError::InvalidPrivateKey { .. }),
        "{error}"
    );
    let reloaded = Identity::from_pem(first.certificate_pem(), &first_key).unwrap();
    assert_eq!(reloaded.thumbprint(), first.thumbprint());

    let (directory, _identity, _key) = stored_identity("agent-1");
    std::fs::write(directory.path().join(CERTIFICATE_FILE_NAME), "garbage").unwrap();
    let error = Identity::load_or_create(directory.path(), "agent-1").unwrap_err();
    assert!(
        error.to_string().contains(CERTIFICATE_FILE_NAME),
        "the error names the file: {error}"
    );
}

/// An identity stored in a fresh directory, with its key's PEM text.
fn stored_identity(common_name: &str) -> (tempfile::TempDir, Identity, String) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let (identity, _) =
        Identity::load_or_create(directory.path(), common_name).expect("a stored identity");
    let key_pem = std::fs::read_to_string(directory.path().join(PRIVATE_KEY_FILE_NAME))
        .expect("the stored key");
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    (directory, identity, key_pem)
}
