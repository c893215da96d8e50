//! Validation and extraction of real archive files built by each test: formats, modes, the
//! safety rules (traversal, links, bombs, entry counts) and "nothing left behind".

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cuttle_packages::archive::{
    ArchiveError, ArchiveFormat, ExtractionLimits, ExtractionSummary, extract, validate,
};
use zip::write::SimpleFileOptions;

/// A scratch directory with the archive in `archives/` and destinations under `out/`, so a
/// test can check that `out/` holds nothing after a refusal.
struct Scratch {
    directory: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let directory = tempfile::tempdir().expect("create a temporary directory");
        fs::create_dir(directory.path().join("archives")).expect("create archives/");
        fs::create_dir(directory.path().join("out")).expect("create out/");
        Scratch { directory }
    }

    fn archive(&self, name: &str) -> PathBuf {
        self.directory.path().join("archives").join(name)
    }

    fn destination(&self) -> PathBuf {
        self.directory.path().join("out").join("package")
    }

    fn out_listing(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.directory.path().join("out"))
            .expect("list out/")
            .map(|entry| {
                entry
                    .expect("read out/ entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }
}

/// One tar entry, written with raw header fields so that tests can build the hostile archives
/// `tar::Builder`'s own checks would refuse to write.
enum TarEntry<'a> {
    File(&'a str, &'a [u8], u32),
    Directory(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    Fifo(&'a str),
}

fn tar_bytes(entries: &[TarEntry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let (name, link, data, mode, entry_type): (&str, &str, &[u8], u32, tar::EntryType) =
            match entry {
                TarEntry::File(name, data, mode) => {
                    (name, "", data, *mode, tar::EntryType::Regular)
                }
                TarEntry::Directory(name) => (name, "", b"", 0o755, tar::EntryType::Directory),
                TarEntry::Symlink(name, target) => {
                    (name, target, b"", 0o777, tar::EntryType::Symlink)
                }
                TarEntry::HardLink(name, target) => {
                    (name, target, b"", 0o644, tar::EntryType::Link)
                }
                TarEntry::Fifo(name) => (name, "", b"", 0o644, tar::EntryType::Fifo),
            };
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(entry_type);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).expect("append a tar entry");
    }
    builder.into_inner().expect("finish the tar")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("finish gzip")
}

fn bzip2(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    encoder.write_all(bytes).expect("bzip2");
    encoder.finish().expect("finish bzip2")
}

enum ZipEntry<'a> {
    File(&'a str, &'a [u8], Option<u32>),
    Directory(&'a str),
    Symlink(&'a str, &'a str),
}

fn zip_bytes(entries: &[ZipEntry<'_>]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for entry in entries {
        match entry {
            ZipEntry::File(name, data, mode) => {
                let mut options = SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated);
                if let Some(mode) = mode {
                    options = options.unix_permissions(*mode);
                }
                writer.start_file(*name, options).expect("start a zip file");
                writer.write_all(data).expect("write a zip file");
            }
            ZipEntry::Directory(name) => writer
                .add_directory(*name, SimpleFileOptions::default())
                .expect("add a zip directory"),
            ZipEntry::Symlink(name, target) => writer
                .add_symlink(*name, *target, SimpleFileOptions::default())
                .expect("add a zip symlink"),
        }
    }
    writer.finish().expect("finish the zip").into_inner()
}

fn write_archive(scratch: &Scratch, name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch.archive(name);
    fs::write(&path, bytes).expect("write the archive");
    path
}

fn read_text(path: &Path) -> String {
    let mut text = String::new();
    File::open(path)
        .and_then(|mut file| file.read_to_string(&mut text))
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    text
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

/// Extracts an archive that must be refused, checks that validation refuses it too, that the
/// refusal is the expected kind and that nothing is left in `out/`.
fn assert_refused(
    scratch: &Scratch,
    archive: &Path,
    format: ArchiveFormat,
    limits: &ExtractionLimits,
    expected: fn(&ArchiveError) -> bool,
) -> String {
    let validation = validate(archive, format, limits);
    match &validation {
        Err(error) if expected(error) => {}
        other => panic!("validate: unexpected {other:?}"),
    }
    let extraction = extract(archive, format, &scratch.destination(), limits);
    let message = match &extraction {
        Err(error) if expected(error) => error.to_string(),
        other => panic!("extract: unexpected {other:?}"),
    };
    assert_eq!(scratch.out_listing(), Vec::<String>::new(), "left behind");
    message
}

fn is_unsafe_entry(error: &ArchiveError) -> bool {
    matches!(error, ArchiveError::UnsafeEntry { .. })
}

fn sample_tar() -> Vec<u8> {
    tar_bytes(&[
        TarEntry::Directory("app/"),
        TarEntry::File("app/run.sh", b"#!/bin/sh\necho hello\n", 0o755),
        TarEntry::File("app/config.json", b"{\"a\":1}", 0o644),
        TarEntry::Directory("app/lib/"),
        TarEntry::File("app/lib/libthing.so.1", b"binary", 0o644),
        TarEntry::Symlink("app/lib/libthing.so", "libthing.so.1"),
        TarEntry::Symlink("app/current-config", "./config.json"),
        TarEntry::Symlink("app/lib/up-config", "../config.json"),
        TarEntry::HardLink("app/run-again.sh", "app/run.sh"),
        TarEntry::File("./top.txt", b"top", 0o600),
    ])
}

fn check_sample_tar_extracted(destination: &Path, summary: ExtractionSummary) {
    assert_eq!(
        summary,
        ExtractionSummary {
            files: 8,
            directories: 2,
            bytes: 21 + 7 + 6 + 3
        }
    );
    assert_eq!(
        read_text(&destination.join("app/run.sh")),
        "#!/bin/sh\necho hello\n"
    );
    assert_eq!(mode_of(&destination.join("app/run.sh")), 0o755);
    assert_eq!(mode_of(&destination.join("app/config.json")), 0o644);
    assert_eq!(mode_of(&destination.join("top.txt")), 0o600);
    assert_eq!(
        read_text(&destination.join("app/lib/libthing.so")),
        "binary"
    );
    assert_eq!(
        fs::read_link(destination.join("app/lib/libthing.so")).expect("read link"),
        PathBuf::from("libthing.so.1")
    );
    assert_eq!(
        read_text(&destination.join("app/lib/up-config")),
        "{\"a\":1}"
    );
    assert_eq!(
        read_text(&destination.join("app/current-config")),
        "{\"a\":1}"
    );
    assert_eq!(
        read_text(&destination.join("app/run-again.sh")),
        "#!/bin/sh\necho hello\n"
    );
}

#[test]
fn tar_formats_extract_files_directories_links_and_modes() {
    let tar = sample_tar();
    for (name, bytes, format) in [
        ("app.1.0.0.tar", tar.clone(), ArchiveFormat::Tar),
        ("app.1.0.0.tar.gz", gzip(&tar), ArchiveFormat::TarGz),
        ("app.1.0.0.tar.bz2", bzip2(&tar), ArchiveFormat::TarBz2),
    ] {
        let scratch = Scratch::new();
        let archive = write_archive(&scratch, name, &bytes);
        let limits = ExtractionLimits::default();
        let validated = validate(&archive, format, &limits).expect("validate");
        let summary = extract(&archive, format, &scratch.destination(), &limits).expect("extract");
        assert_eq!(validated, summary, "{name}");
        check_sample_tar_extracted(&scratch.destination(), summary);
        assert_eq!(scratch.out_listing(), vec!["package".to_owned()], "{name}");
    }
}

#[test]
fn zip_extracts_files_directories_modes_and_inside_symlinks() {
    let scratch = Scratch::new();
    let archive = write_archive(
        &scratch,
        "web.2.0.0.zip",
        &zip_bytes(&[
            ZipEntry::Directory("site/"),
            ZipEntry::File("site/index.html", b"<h1>hi</h1>", Some(0o644)),
            ZipEntry::File("site/start.sh", b"#!/bin/sh\n", Some(0o755)),
            ZipEntry::File("no-mode.txt", b"plain", None),
            ZipEntry::File("windows\\style.txt", b"backslash", None),
            ZipEntry::Symlink("site/home.html", "index.html"),
        ]),
    );
    let summary = extract(
        &archive,
        ArchiveFormat::Zip,
        &scratch.destination(),
        &ExtractionLimits::default(),
    )
    .expect("extract");
    let destination = scratch.destination();
    assert_eq!(
        summary,
        ExtractionSummary {
            files: 5,
            directories: 1,
            bytes: 11 + 10 + 5 + 9
        }
    );
    assert_eq!(
        read_text(&destination.join("site/index.html")),
        "<h1>hi</h1>"
    );
    assert_eq!(mode_of(&destination.join("site/start.sh")), 0o755);
    assert_eq!(mode_of(&destination.join("site/index.html")), 0o644);
    assert_eq!(
        read_text(&destination.join("windows/style.txt")),
        "backslash"
    );
    assert_eq!(
        read_text(&destination.join("site/home.html")),
        "<h1>hi</h1>"
    );
    assert_eq!(mode_of(&destination), 0o755);
}

#[test]
fn nupkg_skips_nuget_metadata_and_decodes_names() {
    let scratch = Scratch::new();
    let archive = write_archive(
        &scratch,
        "Acme.Web.1.0.0.nupkg",
        &zip_bytes(&[
            ZipEntry::File("[Content_Types].xml", b"<Types/>", None),
            ZipEntry::File("_rels/.rels", b"<Relationships/>", None),
            ZipEntry::File(
                "package/services/metadata/core-properties/abc.psmdcp",
                b"<x/>",
                None,
            ),
            ZipEntry::File("Acme.Web.nuspec", b"<package/>", None),
            ZipEntry::File("content/My%20File.txt", b"spaced", None),
        ]),
    );
    let summary = extract(
        &archive,
        ArchiveFormat::Nupkg,
        &scratch.destination(),
        &ExtractionLimits::default(),
    )
    .expect("extract");
    assert_eq!(summary.files, 2);
    let destination = scratch.destination();
    assert_eq!(
        read_text(&destination.join("content/My File.txt")),
        "spaced"
    );
    assert!(destination.join("Acme.Web.nuspec").is_file());
    assert!(!destination.join("[Content_Types].xml").exists());
    assert!(!destination.join("_rels").exists());
    assert!(!destination.join("package").exists());
}

#[test]
fn parent_components_are_refused_in_tar_and_zip() {
    let scratch = Scratch::new();
    let tar = write_archive(
        &scratch,
        "evil.1.0.0.tar",
        &tar_bytes(&[
            TarEntry::File("fine.txt", b"ok", 0o644),
            TarEntry::File("sub/../../escaped.txt", b"evil", 0o644),
        ]),
    );
    let message = assert_refused(
        &scratch,
        &tar,
        ArchiveFormat::Tar,
        &ExtractionLimits::default(),
        is_unsafe_entry,
    );
    assert!(message.contains("evil.1.0.0.tar"), "{message}");
    assert!(message.contains("'..'"), "{message}");
    assert!(!scratch.directory.path().join("escaped.txt").exists());

    let zip = write_archive(
        &scratch,
        "evil.1.0.0.zip",
        &zip_bytes(&[ZipEntry::File("../escaped.txt", b"evil", None)]),
    );
    assert_refused(
        &scratch,
        &zip,
        ArchiveFormat::Zip,
        &ExtractionLimits::default(),
        is_unsafe_entry,
    );
    // Percent-encoded `..` in a nupkg is decoded before the check, not after.
    let nupkg = write_archive(
        &scratch,
        "evil.1.0.0.nupkg",
        &zip_bytes(&[ZipEntry::File("%2E%2E/escaped.txt", b"evil", None)]),
    );
    assert_refused(
        &scratch,
        &nupkg,
        ArchiveFormat::Nupkg,
        &ExtractionLimits::default(),
        is_unsafe_entry,
    );
    assert!(!scratch.directory.path().join("escaped.txt").exists());
}

#[test]
fn absolute_paths_are_refused() {
    let scratch = Scratch::new();
    let tar = write_archive(
        &scratch,
        "abs.1.0.0.tar",
        &tar_bytes(&[TarEntry::File("/tmp/cuttle-absolute.txt", b"evil", 0o644)]),
    );
    let message = assert_refused(
        &scratch,
        &tar,
        ArchiveFormat::Tar,
        &ExtractionLimits::default(),
        is_unsafe_entry,
    );
    assert!(message.contains("absolute"), "{message}");
    let zip = write_archive(
        &scratch,
        "abs.1.0.0.zip",
        &zip_bytes(&[ZipEntry::File("/tmp/cuttle-absolute.txt", b"evil", None)]),
    );
    assert_refused(
        &scratch,
        &zip,
        ArchiveFormat::Zip,
        &ExtractionLimits::default(),
        is_unsafe_entry,
    );
}

#[test]
fn symlinks_pointing_outside_are_refused() {
    let cases: [(&str, Vec<TarEntry<'_>>); 5] = [
        ("absolute", vec![TarEntry::Symlink("etc", "/etc")]),
        ("climbing", vec![TarEntry::Symlink("a/up", "../../outside")]),
        ("empty", vec![TarEntry::Symlink("nothing", "")]),
        // `l -> .` is inside, but `l/..` is the destination's parent: `..` after a name is
        // refused because it may cross a link.
        (
            "through another link",
            vec![
                TarEntry::Symlink("l", "."),
                TarEntry::Symlink("m", "l/../outside"),
            ],
        ),
        // An entry written through a link that points inside is refused too: the link could
        // have pointed anywhere a later check would have to follow.
        (
            "written through a link",
            vec![
                TarEntry::Directory("real/"),
                TarEntry::Symlink("alias", "real"),
                TarEntry::File("alias/file.txt", b"x", 0o644),
            ],
        ),
    ];
    for (label, entries) in cases {
        let scratch = Scratch::new();
        let archive = write_archive(&scratch, "links.1.0.0.tar", &tar_bytes(&entries));
        let message = assert_refused(
            &scratch,
            &archive,
            ArchiveFormat::Tar,
            &ExtractionLimits::default(),
            is_unsafe_entry,
        );
        assert!(message.contains("links.1.0.0.tar"), "{label}: {message}");
    }

    let scratch = Scratch::new();
    let zip = write_archive(
        &scratch,
        "links.1.0.0.zip",
        &zip_bytes(&[ZipEntry::Symlink("passwd", "../../../../etc/passwd")]),
    );
    assert_refused(
        &scratch,
        &zip,
        ArchiveFormat::Zip,
        &ExtractionLimits::default(),
        is_unsafe_entry,
    );
}

#[test]
fn hard_links_outside_or_to_missing_files_are_refused() {
    for entries in [
        vec![TarEntry::HardLink("passwd", "/etc/passwd")],
        vec![TarEntry::HardLink("passwd", "../../etc/passwd")],
    ] {
        let scratch = Scratch::new();
        let archive = write_archive(&scratch, "hard.1.0.0.tar", &tar_bytes(&entries));
        assert_refused(
            &scratch,
            &archive,
            ArchiveFormat::Tar,
            &ExtractionLimits::default(),
            is_unsafe_entry,
        );
    }
    // A target that was never unpacked can only be seen when extracting.
    let scratch = Scratch::new();
    let archive = write_archive(
        &scratch,
        "hard.1.0.0.tar",
        &tar_bytes(&[TarEntry::HardLink("copy", "missing.txt")]),
    );
    let error = extract(
        &archive,
        ArchiveFormat::Tar,
        &scratch.destination(),
        &ExtractionLimits::default(),
    )
    .map(|_| ());
    assert!(
        matches!(error, Err(ArchiveError::UnsafeEntry { .. })),
        "{error:?}"
    );
    assert_eq!(scratch.out_listing(), Vec::<String>::new());
}

#[test]
fn devices_and_fifos_are_refused() {
    let scratch = Scratch::new();
    let archive = write_archive(
        &scratch,
        "fifo.1.0.0.tar",
        &tar_bytes(&[TarEntry::Fifo("pipe")]),
    );
    assert_refused(
        &scratch,
        &archive,
        ArchiveFormat::Tar,
        &ExtractionLimits::default(),
        is_unsafe_entry,
    );
}

#[test]
fn decompression_bombs_are_refused_by_ratio() {
    // 64 MiB of zeros compress to about 64 KiB: a ratio near 1000.
    let zeros = vec![0_u8; 64 * 1024 * 1024];
    let scratch = Scratch::new();
    let archive = write_archive(
        &scratch,
        "bomb.1.0.0.tar.gz",
        &gzip(&tar_bytes(&[TarEntry::File("zeros.bin", &zeros, 0o644)])),
    );
    let message = assert_refused(
        &scratch,
        &archive,
        ArchiveFormat::TarGz,
        &ExtractionLimits::default(),
        |error| matches!(error, ArchiveError::CompressionRatioExceeded { .. }),
    );
    assert!(message.contains("decompression bomb"), "{message}");

    let zip = write_archive(
        &scratch,
        "bomb.1.0.0.zip",
        &zip_bytes(&[ZipEntry::File("zeros.bin", &zeros, None)]),
    );
    assert_refused(
        &scratch,
        &zip,
        ArchiveFormat::Zip,
        &ExtractionLimits::default(),
        |error| matches!(error, ArchiveError::CompressionRatioExceeded { .. }),
    );
}

#[test]
fn archives_unpacking_past_the_total_limit_are_refused() {
    let scratch = Scratch::new();
    let content = vec![7_u8; 10_000];
    let archive = write_archive(
        &scratch,
        "big.1.0.0.tar",
        &tar_bytes(&[
            TarEntry::File("one.bin", &content, 0o644),
            TarEntry::File("two.bin", &content, 0o644),
        ]),
    );
    let limits = ExtractionLimits {
        max_total_bytes: 15_000,
        ..ExtractionLimits::default()
    };
    let message = assert_refused(&scratch, &archive, ArchiveFormat::Tar, &limits, |error| {
        matches!(error, ArchiveError::TooLarge { limit: 15_000, .. })
    });
    assert!(message.contains("more than 15000 bytes"), "{message}");
}

#[test]
fn archives_with_too_many_entries_are_refused() {
    let scratch = Scratch::new();
    let names: Vec<String> = (0..20).map(|index| format!("file-{index}.txt")).collect();
    let tar_entries: Vec<TarEntry<'_>> = names
        .iter()
        .map(|name| TarEntry::File(name, b"x", 0o644))
        .collect();
    let zip_entries: Vec<ZipEntry<'_>> = names
        .iter()
        .map(|name| ZipEntry::File(name, b"x", None))
        .collect();
    let limits = ExtractionLimits {
        max_entries: 10,
        ..ExtractionLimits::default()
    };
    let too_many =
        |error: &ArchiveError| matches!(error, ArchiveError::TooManyEntries { limit: 10, .. });
    let tar = write_archive(&scratch, "many.1.0.0.tar", &tar_bytes(&tar_entries));
    assert_refused(&scratch, &tar, ArchiveFormat::Tar, &limits, too_many);
    let zip = write_archive(&scratch, "many.1.0.0.zip", &zip_bytes(&zip_entries));
    assert_refused(&scratch, &zip, ArchiveFormat::Zip, &limits, too_many);
}

#[test]
fn corrupt_and_unrecognised_archives_name_the_file_and_the_problem() {
    let scratch = Scratch::new();
    let text = write_archive(
        &scratch,
        "notes.1.0.0.zip",
        b"these are not the bytes of a zip",
    );
    let tar_of_text = write_archive(
        &scratch,
        "notes.1.0.0.tar",
        &[b"plain text, not a tar header ".as_slice(); 40].concat(),
    );
    let empty = write_archive(&scratch, "empty.1.0.0.tar.gz", b"");
    let good_gz = gzip(&sample_tar());
    let truncated = write_archive(
        &scratch,
        "truncated.1.0.0.tar.gz",
        &good_gz[..good_gz.len() / 2],
    );
    let not_bzip2 = write_archive(&scratch, "wrong.1.0.0.tar.bz2", &good_gz);
    for (archive, format) in [
        (&text, ArchiveFormat::Zip),
        (&tar_of_text, ArchiveFormat::Tar),
        (&empty, ArchiveFormat::TarGz),
        (&truncated, ArchiveFormat::TarGz),
        (&not_bzip2, ArchiveFormat::TarBz2),
    ] {
        let message = assert_refused(
            &scratch,
            archive,
            format,
            &ExtractionLimits::default(),
            |error| matches!(error, ArchiveError::Corrupt { .. }),
        );
        let file_name = archive
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        assert!(message.contains(&file_name), "{message}");
        assert!(
            message.contains(&format!("not a valid {} archive", &format.extension()[1..])),
            "{message}"
        );
    }
}

#[test]
fn an_existing_destination_is_refused_and_left_alone() {
    let scratch = Scratch::new();
    let archive = write_archive(&scratch, "app.1.0.0.tar", &sample_tar());
    fs::create_dir(scratch.destination()).expect("create the destination");
    fs::write(scratch.destination().join("keep.txt"), "mine").expect("write keep.txt");
    let error = extract(
        &archive,
        ArchiveFormat::Tar,
        &scratch.destination(),
        &ExtractionLimits::default(),
    )
    .map(|_| ());
    assert!(
        matches!(error, Err(ArchiveError::DestinationExists { .. })),
        "{error:?}"
    );
    assert_eq!(read_text(&scratch.destination().join("keep.txt")), "mine");
    assert_eq!(scratch.out_listing(), vec!["package".to_owned()]);
}

#[test]
fn validation_writes_nothing() {
    let scratch = Scratch::new();
    let archive = write_archive(&scratch, "app.1.0.0.tar.gz", &gzip(&sample_tar()));
    let summary =
        validate(&archive, ArchiveFormat::TarGz, &ExtractionLimits::default()).expect("validate");
    assert_eq!(summary.directories, 2);
    assert_eq!(scratch.out_listing(), Vec::<String>::new());
    let mut archives: Vec<_> = fs::read_dir(scratch.directory.path().join("archives"))
        .expect("list archives/")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    archives.sort();
    assert_eq!(archives, vec![std::ffi::OsString::from("app.1.0.0.tar.gz")]);
}

#[test]
fn a_later_entry_of_the_same_name_wins_as_in_tar() {
    let scratch = Scratch::new();
    let archive = write_archive(
        &scratch,
        "dup.1.0.0.tar",
        &tar_bytes(&[
            TarEntry::File("same.txt", b"first", 0o644),
            TarEntry::Symlink("same.txt", "other.txt"),
            TarEntry::File("same.txt", b"second", 0o644),
        ]),
    );
    extract(
        &archive,
        ArchiveFormat::Tar,
        &scratch.destination(),
        &ExtractionLimits::default(),
    )
    .expect("extract");
    let path = scratch.destination().join("same.txt");
    assert!(fs::symlink_metadata(&path).expect("stat").is_file());
    assert_eq!(read_text(&path), "second");
}

#[test]
fn formats_are_recognised_from_file_names() {
    for (name, format, extension) in [
        ("a.1.0.zip", Some(ArchiveFormat::Zip), ".zip"),
        ("a.1.0.ZIP", Some(ArchiveFormat::Zip), ".zip"),
        ("a.1.0.tar.gz", Some(ArchiveFormat::TarGz), ".tar.gz"),
        ("a.1.0.TGZ", Some(ArchiveFormat::TarGz), ".tar.gz"),
        ("a.1.0.tar", Some(ArchiveFormat::Tar), ".tar"),
        ("a.1.0.tar.bz2", Some(ArchiveFormat::TarBz2), ".tar.bz2"),
        ("a.1.0.nupkg", Some(ArchiveFormat::Nupkg), ".nupkg"),
    ] {
        assert_eq!(ArchiveFormat::from_file_name(name), format, "{name}");
        assert_eq!(
            format.map(ArchiveFormat::extension),
            Some(extension),
            "{name}"
        );
    }
    for name in [
        "a.1.0.gz",
        "a.1.0.bz2",
        "a.1.0.rar",
        "zip",
        ".zip",
        "a.1.0.zip.txt",
    ] {
        assert_eq!(ArchiveFormat::from_file_name(name), None, "{name}");
    }
}

/// A small deterministic generator (xorshift64*), so a failure replays with the same inputs.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

#[test]
fn corrupted_archives_never_panic_and_failed_extractions_leave_nothing() {
    let tar = sample_tar();
    let zip = zip_bytes(&[
        ZipEntry::Directory("site/"),
        ZipEntry::File(
            "site/index.html",
            b"<h1>hello, hello, hello</h1>",
            Some(0o644),
        ),
        ZipEntry::File("site/start.sh", b"#!/bin/sh\necho start\n", Some(0o755)),
        ZipEntry::Symlink("site/home.html", "index.html"),
    ]);
    let originals = [
        (ArchiveFormat::Tar, tar.clone()),
        (ArchiveFormat::TarGz, gzip(&tar)),
        (ArchiveFormat::TarBz2, bzip2(&tar)),
        (ArchiveFormat::Zip, zip.clone()),
        (ArchiveFormat::Nupkg, zip),
    ];
    let mut random = Xorshift(0x5eed_cafe_f00d_0001);
    let (mut n_refused, mut n_accepted) = (0_u32, 0_u32);
    for (format, original) in &originals {
        for round in 0..150 {
            let mut bytes = original.clone();
            // Flip a few bytes, or cut the archive short.
            if round % 10 == 9 {
                bytes.truncate(random.below(bytes.len()));
            } else {
                for _ in 0..=random.below(4) {
                    let index = random.below(bytes.len());
                    bytes[index] ^= 1 << random.below(8);
                }
            }
            let scratch = Scratch::new();
            let archive = write_archive(&scratch, &format!("fuzzed{}", format.extension()), &bytes);
            let limits = ExtractionLimits::default();
            let validation = validate(&archive, *format, &limits);
            match extract(&archive, *format, &scratch.destination(), &limits) {
                Ok(summary) => {
                    n_accepted += 1;
                    // An archive that extracts validates the same way.
                    assert_eq!(validation.ok(), Some(summary), "{format:?} round {round}");
                }
                Err(_) => {
                    n_refused += 1;
                    assert_eq!(
                        scratch.out_listing(),
                        Vec::<String>::new(),
                        "{format:?} round {round}"
                    );
                }
            }
        }
    }
    // Both outcomes happen, so the loop exercised more than one path.
    assert!(
        n_refused > 0 && n_accepted > 0,
        "refused {n_refused}, accepted {n_accepted}"
    );
}
