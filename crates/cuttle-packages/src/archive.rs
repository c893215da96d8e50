//! Package archives: recognising their format, checking them ([`validate`]) and unpacking them
//! ([`extract`]) under one set of safety rules.
//!
//! The rules, checked on every entry by both functions:
//! - an entry's path may not be absolute and may not contain `..`; `.` parts are dropped;
//! - no entry is written through a symbolic link that an earlier entry created (that is how
//!   "link to a directory, then a file inside the link" escapes work);
//! - a symbolic link's target must be relative, and any `..` parts must come first and may not
//!   climb above the destination (`../lib/x.so` from `bin/` is fine, `a/../../x` is refused,
//!   because `..` after a name may cross another link and land elsewhere than it reads);
//! - a hard link (tar) must name a path inside the archive, like an entry;
//! - at most [`ExtractionLimits::max_entries`] entries, and the bytes actually unpacked (counted
//!   as they are produced, never taken from headers) may not pass
//!   [`ExtractionLimits::max_total_bytes`] nor the archive's size times
//!   [`ExtractionLimits::max_compression_ratio`] (the ratio applies past
//!   [`RATIO_CHECK_FLOOR_BYTES`], so a tiny archive of very compressible text is not a bomb);
//! - devices and FIFOs are refused; file modes keep their permission bits (setuid, setgid and
//!   sticky are dropped) for tar and for zip entries that carry Unix modes.
//!
//! [`extract`] unpacks into `<destination>.partial-<random>` beside the destination and renames
//! it into place only when every entry succeeded, so a refused or broken archive leaves nothing.
//! `.nupkg` files are zips whose NuGet bookkeeping (`[Content_Types].xml`, `_rels/`,
//! `package/services/metadata/`) is skipped and whose names are percent-decoded, as Octopus's
//! Calamari does. Zip entries may be stored or deflated (what every packaging tool writes).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

/// An archive format Cuttle can unpack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArchiveFormat {
    Zip,
    TarGz,
    Tar,
    TarBz2,
    Nupkg,
}

/// File-name endings and their formats, longest first so `.tar.gz` wins over `.tar`-like
/// prefixes of other names.
const EXTENSIONS: [(&str, ArchiveFormat); 6] = [
    (".tar.bz2", ArchiveFormat::TarBz2),
    (".tar.gz", ArchiveFormat::TarGz),
    (".nupkg", ArchiveFormat::Nupkg),
    (".tgz", ArchiveFormat::TarGz),
    (".tar", ArchiveFormat::Tar),
    (".zip", ArchiveFormat::Zip),
];

impl ArchiveFormat {
    /// The format a file name's ending names (case-insensitive): `.zip`, `.nupkg`, `.tar`,
    /// `.tar.gz`, `.tgz`, `.tar.bz2`.
    pub fn from_file_name(name: &str) -> Option<ArchiveFormat> {
        EXTENSIONS
            .iter()
            .find(|(extension, _)| ends_with_ignore_ascii_case(name, extension))
            .map(|(_, format)| *format)
    }

    /// The canonical extension, with its dot (`.tgz` files answer `.tar.gz`).
    pub fn extension(self) -> &'static str {
        match self {
            ArchiveFormat::Zip => ".zip",
            ArchiveFormat::TarGz => ".tar.gz",
            ArchiveFormat::Tar => ".tar",
            ArchiveFormat::TarBz2 => ".tar.bz2",
            ArchiveFormat::Nupkg => ".nupkg",
        }
    }

    /// How many bytes at the end of `name` are the extension this format was recognised by
    /// (`.tgz` is 4, `.tar.gz` 7); 0 when `name` does not end in one of this format's.
    pub(crate) fn matched_extension_length(self, name: &str) -> usize {
        EXTENSIONS
            .iter()
            .find(|(extension, format)| {
                *format == self && ends_with_ignore_ascii_case(name, extension)
            })
            .map_or(0, |(extension, _)| extension.len())
    }

    fn description(self) -> &'static str {
        match self {
            ArchiveFormat::Zip => "zip",
            ArchiveFormat::TarGz => "tar.gz",
            ArchiveFormat::Tar => "tar",
            ArchiveFormat::TarBz2 => "tar.bz2",
            ArchiveFormat::Nupkg => "nupkg",
        }
    }
}

fn ends_with_ignore_ascii_case(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len()
        && name.is_char_boundary(name.len() - suffix.len())
        && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// Below this many unpacked bytes the compression ratio is not checked: a 2 KiB archive of a
/// repetitive 1 MiB text file is not a bomb.
pub const RATIO_CHECK_FLOOR_BYTES: u64 = 1024 * 1024;

/// How much an archive may unpack to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractionLimits {
    /// Bytes of file content, summed over all entries.
    pub max_total_bytes: u64,
    /// Entries of any kind (files, directories, links, skipped metadata).
    pub max_entries: u64,
    /// Unpacked bytes divided by the archive file's size (past [`RATIO_CHECK_FLOOR_BYTES`]).
    pub max_compression_ratio: u64,
}

impl Default for ExtractionLimits {
    fn default() -> Self {
        ExtractionLimits {
            max_total_bytes: 20 * 1024 * 1024 * 1024,
            max_entries: 1_000_000,
            max_compression_ratio: 200,
        }
    }
}

/// What an archive held (skipped NuGet metadata not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractionSummary {
    /// Regular files, links included.
    pub files: u64,
    pub directories: u64,
    /// Bytes of file content.
    pub bytes: u64,
}

/// Why an archive was not validated or extracted. Every variant names the archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read archive {archive}: {source}")]
    Read {
        archive: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{archive} is not a valid {format} archive: {detail}")]
    Corrupt {
        archive: PathBuf,
        format: &'static str,
        detail: String,
    },
    #[error("{archive}: entry '{entry}' is refused: {reason}")]
    UnsafeEntry {
        archive: PathBuf,
        entry: String,
        reason: String,
    },
    #[error("{archive} unpacks to more than {limit} bytes")]
    TooLarge { archive: PathBuf, limit: u64 },
    #[error(
        "{archive} unpacks to more than {ratio} times its own size ({archive_bytes} bytes); refused as a possible decompression bomb"
    )]
    CompressionRatioExceeded {
        archive: PathBuf,
        ratio: u64,
        archive_bytes: u64,
    },
    #[error("{archive} has more than {limit} entries")]
    TooManyEntries { archive: PathBuf, limit: u64 },
    #[error("cannot extract {archive}: destination {destination} already exists")]
    DestinationExists {
        archive: PathBuf,
        destination: PathBuf,
    },
    #[error("cannot extract {archive}: writing {path} failed: {source}")]
    Write {
        archive: PathBuf,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Reads every entry of `archive` without writing anything, applying the same checks as
/// [`extract`] (paths, links, limits) and the format's own integrity checks (CRCs, gzip and
/// bzip2 checksums).
///
/// What it cannot see without writing: a tar hard link whose target does not exist, which
/// [`extract`] refuses.
pub fn validate(
    archive: &Path,
    format: ArchiveFormat,
    limits: &ExtractionLimits,
) -> Result<ExtractionSummary, ArchiveError> {
    let mut sink = ValidationSink;
    walk_archive(archive, format, limits, &mut sink)
}

/// Unpacks `archive` into `destination`, which must not exist; its parent is created if
/// needed. On any error nothing is left behind.
///
/// The race between the existence check and the final rename is not closed: a destination
/// created by someone else in between, if it is an empty directory, is replaced.
pub fn extract(
    archive: &Path,
    format: ArchiveFormat,
    destination: &Path,
    limits: &ExtractionLimits,
) -> Result<ExtractionSummary, ArchiveError> {
    let write_error = |path: &Path, source: io::Error| ArchiveError::Write {
        archive: archive.to_owned(),
        path: path.to_owned(),
        source,
    };
    if fs::symlink_metadata(destination).is_ok() {
        return Err(ArchiveError::DestinationExists {
            archive: archive.to_owned(),
            destination: destination.to_owned(),
        });
    }
    let (parent, destination_name) = match (destination.parent(), destination.file_name()) {
        (Some(parent), Some(name)) => (parent, name),
        _ => {
            return Err(write_error(
                destination,
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the destination has no parent directory or no name",
                ),
            ));
        }
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    fs::create_dir_all(parent).map_err(|source| write_error(parent, source))?;

    // Dropping the TempDir on any early return removes everything unpacked so far.
    let mut staging_prefix = destination_name.to_owned();
    staging_prefix.push(".partial-");
    let staging = tempfile::Builder::new()
        .prefix(&staging_prefix)
        .rand_bytes(10)
        .tempdir_in(parent)
        .map_err(|source| write_error(parent, source))?;

    let mut sink = ExtractionSink {
        root: staging.path().to_owned(),
        archive: archive.to_owned(),
    };
    let summary = walk_archive(archive, format, limits, &mut sink)?;

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The temporary directory is created 0700; an unpacked package is readable like any
        // directory made with the usual umask.
        fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o755))
            .map_err(|source| write_error(staging.path(), source))?;
    }
    if fs::symlink_metadata(destination).is_ok() {
        return Err(ArchiveError::DestinationExists {
            archive: archive.to_owned(),
            destination: destination.to_owned(),
        });
    }
    fs::rename(staging.path(), destination).map_err(|source| write_error(destination, source))?;
    // The directory now lives at `destination`; keep the TempDir from deleting its old name.
    let _ = staging.keep();
    Ok(summary)
}

/// Where the entries of an archive go: nowhere ([`ValidationSink`]) or a directory
/// ([`ExtractionSink`]). Paths are relative, already checked, and never empty.
trait EntrySink {
    fn directory(&mut self, path: &Path, mode: Option<u32>) -> Result<(), ArchiveError>;
    fn file(
        &mut self,
        path: &Path,
        mode: Option<u32>,
        content: &mut dyn Read,
        budget: &mut Budget,
    ) -> Result<(), ArchiveError>;
    fn symlink(&mut self, path: &Path, target: &Path) -> Result<(), ArchiveError>;
    fn hard_link(&mut self, path: &Path, target: &Path) -> Result<(), ArchiveError>;
}

struct ValidationSink;

impl EntrySink for ValidationSink {
    fn directory(&mut self, _path: &Path, _mode: Option<u32>) -> Result<(), ArchiveError> {
        Ok(())
    }

    fn file(
        &mut self,
        _path: &Path,
        _mode: Option<u32>,
        content: &mut dyn Read,
        budget: &mut Budget,
    ) -> Result<(), ArchiveError> {
        budget.copy(content, &mut io::sink(), Path::new(""))
    }

    fn symlink(&mut self, _path: &Path, _target: &Path) -> Result<(), ArchiveError> {
        Ok(())
    }

    fn hard_link(&mut self, _path: &Path, _target: &Path) -> Result<(), ArchiveError> {
        Ok(())
    }
}

struct ExtractionSink {
    root: PathBuf,
    archive: PathBuf,
}

impl ExtractionSink {
    fn write_error(&self, path: &Path, source: io::Error) -> ArchiveError {
        ArchiveError::Write {
            archive: self.archive.clone(),
            path: path.to_owned(),
            source,
        }
    }

    /// Makes room for a non-directory entry at `full_path`: creates its parent and removes a
    /// file or link a previous entry of the same name left (the later entry wins, as tar does).
    fn prepare_leaf(&self, full_path: &Path) -> Result<(), ArchiveError> {
        if let Some(parent) = full_path.parent() {
            fs::create_dir_all(parent).map_err(|source| self.write_error(parent, source))?;
        }
        match fs::symlink_metadata(full_path) {
            Ok(metadata) if metadata.is_dir() => Err(self.write_error(
                full_path,
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a directory of the same name was unpacked before",
                ),
            )),
            Ok(_) => {
                fs::remove_file(full_path).map_err(|source| self.write_error(full_path, source))
            }
            Err(_) => Ok(()),
        }
    }
}

/// Keeps setuid, setgid and sticky bits out of unpacked files.
const PERMISSION_BITS: u32 = 0o777;

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode & PERMISSION_BITS))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

impl EntrySink for ExtractionSink {
    fn directory(&mut self, path: &Path, mode: Option<u32>) -> Result<(), ArchiveError> {
        let full_path = self.root.join(path);
        fs::create_dir_all(&full_path).map_err(|source| self.write_error(&full_path, source))?;
        if let Some(mode) = mode {
            // The owner keeps write and search rights so later entries can go inside.
            set_mode(&full_path, mode | 0o700)
                .map_err(|source| self.write_error(&full_path, source))?;
        }
        Ok(())
    }

    fn file(
        &mut self,
        path: &Path,
        mode: Option<u32>,
        content: &mut dyn Read,
        budget: &mut Budget,
    ) -> Result<(), ArchiveError> {
        let full_path = self.root.join(path);
        self.prepare_leaf(&full_path)?;
        let mut file =
            File::create_new(&full_path).map_err(|source| self.write_error(&full_path, source))?;
        budget.copy(content, &mut file, &full_path)?;
        file.flush()
            .map_err(|source| self.write_error(&full_path, source))?;
        drop(file);
        if let Some(mode) = mode {
            set_mode(&full_path, mode).map_err(|source| self.write_error(&full_path, source))?;
        }
        Ok(())
    }

    fn symlink(&mut self, path: &Path, target: &Path) -> Result<(), ArchiveError> {
        let full_path = self.root.join(path);
        self.prepare_leaf(&full_path)?;
        create_symlink(target, &full_path).map_err(|source| self.write_error(&full_path, source))
    }

    fn hard_link(&mut self, path: &Path, target: &Path) -> Result<(), ArchiveError> {
        let full_path = self.root.join(path);
        let full_target = self.root.join(target);
        match fs::symlink_metadata(&full_target) {
            Ok(metadata) if metadata.is_file() => {}
            _ => {
                return Err(ArchiveError::UnsafeEntry {
                    archive: self.archive.clone(),
                    entry: path.display().to_string(),
                    reason: format!(
                        "it is a hard link to '{}', which is not a file unpacked before it",
                        target.display()
                    ),
                });
            }
        }
        self.prepare_leaf(&full_path)?;
        fs::hard_link(&full_target, &full_path)
            .map_err(|source| self.write_error(&full_path, source))
    }
}

#[cfg(unix)]
fn create_symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn create_symlink(_target: &Path, _link: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "symbolic links are only unpacked on Unix",
    ))
}

/// The limits being spent while one archive is read.
struct Budget {
    archive: PathBuf,
    limits: ExtractionLimits,
    archive_bytes: u64,
    /// The most bytes the ratio allows (never below the floor).
    ratio_allowance: u64,
    bytes: u64,
    entries: u64,
    /// One copy buffer for every entry, so a million small files do not mean a million
    /// allocations.
    buffer: Vec<u8>,
}

impl Budget {
    fn new(archive: &Path, limits: &ExtractionLimits, archive_bytes: u64) -> Budget {
        Budget {
            archive: archive.to_owned(),
            limits: *limits,
            archive_bytes,
            ratio_allowance: archive_bytes
                .saturating_mul(limits.max_compression_ratio)
                .max(RATIO_CHECK_FLOOR_BYTES),
            bytes: 0,
            entries: 0,
            buffer: vec![0_u8; 64 * 1024],
        }
    }

    fn count_entry(&mut self) -> Result<(), ArchiveError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                archive: self.archive.clone(),
                limit: self.limits.max_entries,
            });
        }
        Ok(())
    }

    fn add_bytes(&mut self, n_bytes: u64) -> Result<(), ArchiveError> {
        self.bytes = self.bytes.saturating_add(n_bytes);
        if self.bytes > self.limits.max_total_bytes {
            return Err(ArchiveError::TooLarge {
                archive: self.archive.clone(),
                limit: self.limits.max_total_bytes,
            });
        }
        if self.bytes > self.ratio_allowance {
            return Err(ArchiveError::CompressionRatioExceeded {
                archive: self.archive.clone(),
                ratio: self.limits.max_compression_ratio,
                archive_bytes: self.archive_bytes,
            });
        }
        Ok(())
    }

    /// Copies an entry's content, counting every byte before it is written. Read errors are
    /// the archive's fault (a bad CRC, a truncated stream); write errors the destination's.
    fn copy(
        &mut self,
        content: &mut dyn Read,
        output: &mut dyn Write,
        output_path: &Path,
    ) -> Result<(), ArchiveError> {
        let mut buffer = std::mem::take(&mut self.buffer);
        let result = self.copy_with(&mut buffer, content, output, output_path);
        self.buffer = buffer;
        result
    }

    fn copy_with(
        &mut self,
        buffer: &mut [u8],
        content: &mut dyn Read,
        output: &mut dyn Write,
        output_path: &Path,
    ) -> Result<(), ArchiveError> {
        loop {
            let n_read = match content.read(buffer) {
                Ok(0) => return Ok(()),
                Ok(n_read) => n_read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    return Err(ArchiveError::Corrupt {
                        archive: self.archive.clone(),
                        format: "",
                        detail: error.to_string(),
                    });
                }
            };
            self.add_bytes(n_read as u64)?;
            output
                .write_all(&buffer[..n_read])
                .map_err(|source| ArchiveError::Write {
                    archive: self.archive.clone(),
                    path: output_path.to_owned(),
                    source,
                })?;
        }
    }
}

/// The state shared by every entry of one archive: the limits, the links seen so far and the
/// running summary.
struct Walk<'sink> {
    budget: Budget,
    sink: &'sink mut dyn EntrySink,
    /// Paths of the symbolic links created so far; nothing may be written beneath them.
    symlinks: HashSet<PathBuf>,
    summary: ExtractionSummary,
}

/// One entry, in the terms every format shares.
enum EntryKind<'content> {
    Directory,
    File(&'content mut dyn Read),
    Symlink(PathBuf),
    HardLink(PathBuf),
}

impl Walk<'_> {
    fn refuse(&self, entry: &str, reason: impl Into<String>) -> ArchiveError {
        ArchiveError::UnsafeEntry {
            archive: self.budget.archive.clone(),
            entry: entry.to_owned(),
            reason: reason.into(),
        }
    }

    /// Applies the rules to one entry and hands it to the sink. `raw_name` is the entry's name
    /// as stored, for messages.
    fn entry(
        &mut self,
        raw_name: &str,
        path: &Path,
        mode: Option<u32>,
        kind: EntryKind<'_>,
    ) -> Result<(), ArchiveError> {
        let relative = self.checked_relative_path(raw_name, path)?;
        let Some(relative) = relative else {
            // `.` or `./`: the destination itself.
            return Ok(());
        };
        self.refuse_beneath_symlink(raw_name, &relative)?;
        match kind {
            EntryKind::Directory => {
                if self.symlinks.contains(&relative) {
                    return Err(self.refuse(raw_name, "a directory replaces a symbolic link"));
                }
                self.sink.directory(&relative, mode)?;
                self.summary.directories += 1;
            }
            EntryKind::File(content) => {
                self.symlinks.remove(&relative);
                let bytes_before = self.budget.bytes;
                self.sink.file(&relative, mode, content, &mut self.budget)?;
                self.summary.files += 1;
                self.summary.bytes += self.budget.bytes - bytes_before;
            }
            EntryKind::Symlink(target) => {
                self.check_symlink_target(raw_name, &relative, &target)?;
                self.sink.symlink(&relative, &target)?;
                self.symlinks.insert(relative);
                self.summary.files += 1;
            }
            EntryKind::HardLink(target) => {
                let target_relative =
                    self.checked_relative_path(raw_name, &target)?
                        .ok_or_else(|| {
                            self.refuse(raw_name, "it is a hard link to the destination itself")
                        })?;
                self.refuse_beneath_symlink(raw_name, &target_relative)?;
                if self.symlinks.contains(&target_relative) {
                    return Err(self.refuse(raw_name, "it is a hard link to a symbolic link"));
                }
                self.symlinks.remove(&relative);
                self.sink.hard_link(&relative, &target_relative)?;
                self.summary.files += 1;
            }
        }
        Ok(())
    }

    /// The entry's path with `.` parts dropped; `None` for the destination itself. Absolute
    /// paths and `..` are refused.
    fn checked_relative_path(
        &self,
        raw_name: &str,
        path: &Path,
    ) -> Result<Option<PathBuf>, ArchiveError> {
        let mut relative = PathBuf::new();
        for component in path.components() {
            match component {
                Component::Normal(part) => relative.push(part),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(self.refuse(raw_name, "its path contains '..'"));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(self.refuse(raw_name, "its path is absolute"));
                }
            }
        }
        Ok((!relative.as_os_str().is_empty()).then_some(relative))
    }

    fn refuse_beneath_symlink(&self, raw_name: &str, relative: &Path) -> Result<(), ArchiveError> {
        if self.symlinks.is_empty() {
            return Ok(());
        }
        let mut ancestor = relative.parent();
        while let Some(path) = ancestor {
            if self.symlinks.contains(path) {
                return Err(self.refuse(
                    raw_name,
                    format!(
                        "it would be written through the symbolic link '{}'",
                        path.display()
                    ),
                ));
            }
            ancestor = path.parent();
        }
        Ok(())
    }

    /// A link target must stay inside the destination when read from the link's directory:
    /// relative, with any `..` before the first name, never above the destination.
    fn check_symlink_target(
        &self,
        raw_name: &str,
        relative: &Path,
        target: &Path,
    ) -> Result<(), ArchiveError> {
        let shown_target = target.display();
        if target.as_os_str().is_empty() {
            return Err(self.refuse(raw_name, "it is a symbolic link with an empty target"));
        }
        // Directories between the destination and the link; `..` may climb at most this far.
        let mut depth = relative.components().count().saturating_sub(1);
        let mut seen_name = false;
        for component in target.components() {
            match component {
                Component::Normal(_) => seen_name = true,
                Component::CurDir => {}
                Component::ParentDir if seen_name => {
                    return Err(self.refuse(
                        raw_name,
                        format!("its link target '{shown_target}' has '..' after a name"),
                    ));
                }
                Component::ParentDir => {
                    depth = depth.checked_sub(1).ok_or_else(|| {
                        self.refuse(
                            raw_name,
                            format!(
                                "its link target '{shown_target}' points outside the destination"
                            ),
                        )
                    })?;
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(self.refuse(
                        raw_name,
                        format!("its link target '{shown_target}' is absolute"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn walk_archive(
    archive: &Path,
    format: ArchiveFormat,
    limits: &ExtractionLimits,
    sink: &mut dyn EntrySink,
) -> Result<ExtractionSummary, ArchiveError> {
    let read_error = |source: io::Error| ArchiveError::Read {
        archive: archive.to_owned(),
        source,
    };
    let file = File::open(archive).map_err(read_error)?;
    let archive_bytes = file.metadata().map_err(read_error)?.len();
    if archive_bytes == 0 {
        return Err(ArchiveError::Corrupt {
            archive: archive.to_owned(),
            format: format.description(),
            detail: "the file is empty".to_owned(),
        });
    }
    let mut walk = Walk {
        budget: Budget::new(archive, limits, archive_bytes),
        sink,
        symlinks: HashSet::new(),
        summary: ExtractionSummary::default(),
    };
    let reader = io::BufReader::with_capacity(256 * 1024, file);
    let result = match format {
        ArchiveFormat::Zip => walk_zip(&mut walk, reader, false),
        ArchiveFormat::Nupkg => walk_zip(&mut walk, reader, true),
        ArchiveFormat::Tar => walk_tar(&mut walk, reader, format),
        ArchiveFormat::TarGz => {
            walk_tar(&mut walk, flate2::read::MultiGzDecoder::new(reader), format)
        }
        ArchiveFormat::TarBz2 => {
            walk_tar(&mut walk, bzip2::read::MultiBzDecoder::new(reader), format)
        }
    };
    match result {
        Ok(()) => Ok(walk.summary),
        // Errors raised while copying content do not know the format; fill it in here.
        Err(ArchiveError::Corrupt {
            archive,
            format: "",
            detail,
        }) => Err(ArchiveError::Corrupt {
            archive,
            format: format.description(),
            detail,
        }),
        Err(error) => Err(error),
    }
}

fn corrupt(walk: &Walk<'_>, format: ArchiveFormat, detail: impl std::fmt::Display) -> ArchiveError {
    ArchiveError::Corrupt {
        archive: walk.budget.archive.clone(),
        format: format.description(),
        detail: detail.to_string(),
    }
}

/// The longest symbolic-link target read from a zip entry's content.
const MAXIMUM_LINK_TARGET_BYTES: u64 = 4096;

#[cfg(unix)]
fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

/// Zip entry types from the Unix mode's file-type bits.
const UNIX_FILE_TYPE_MASK: u32 = 0o170_000;
const UNIX_REGULAR_FILE: u32 = 0o100_000;
const UNIX_DIRECTORY: u32 = 0o040_000;
const UNIX_SYMLINK: u32 = 0o120_000;

fn walk_zip<R: Read + io::Seek>(
    walk: &mut Walk<'_>,
    reader: R,
    is_nupkg: bool,
) -> Result<(), ArchiveError> {
    let format = if is_nupkg {
        ArchiveFormat::Nupkg
    } else {
        ArchiveFormat::Zip
    };
    let mut zip = zip::ZipArchive::new(reader).map_err(|error| corrupt(walk, format, error))?;
    // The central directory says how many entries there are; refuse before reading any.
    if zip.len() as u64 > walk.budget.limits.max_entries {
        return Err(ArchiveError::TooManyEntries {
            archive: walk.budget.archive.clone(),
            limit: walk.budget.limits.max_entries,
        });
    }
    for index in 0..zip.len() {
        walk.budget.count_entry()?;
        let mut entry = zip
            .by_index(index)
            .map_err(|error| corrupt(walk, format, error))?;
        let stored_name = entry
            .name()
            .map_err(|error| corrupt(walk, format, error))?
            .into_owned();
        // Some Windows tools write `\` as the separator; zip's specification says `/`.
        let mut name = stored_name.replace('\\', "/");
        if is_nupkg {
            if is_nuget_metadata(&name) {
                continue;
            }
            name = percent_decode(&name);
        }
        let unix_mode = entry.unix_mode();
        let file_type = unix_mode.map(|mode| mode & UNIX_FILE_TYPE_MASK);
        let is_symlink = file_type == Some(UNIX_SYMLINK);
        if let Some(file_type) = file_type
            && !matches!(
                file_type,
                0 | UNIX_REGULAR_FILE | UNIX_DIRECTORY | UNIX_SYMLINK
            )
        {
            return Err(walk.refuse(&stored_name, "it is a device, socket or FIFO"));
        }
        let path = PathBuf::from(&name);
        if is_symlink {
            let mut target = Vec::new();
            (&mut entry)
                .take(MAXIMUM_LINK_TARGET_BYTES + 1)
                .read_to_end(&mut target)
                .map_err(|error| corrupt(walk, format, error))?;
            if target.len() as u64 > MAXIMUM_LINK_TARGET_BYTES {
                return Err(walk.refuse(&stored_name, "its link target is too long"));
            }
            walk.entry(
                &stored_name,
                &path,
                None,
                EntryKind::Symlink(path_from_bytes(&target)),
            )?;
        } else if entry.is_dir() || file_type == Some(UNIX_DIRECTORY) {
            walk.entry(&stored_name, &path, unix_mode, EntryKind::Directory)?;
        } else {
            walk.entry(&stored_name, &path, unix_mode, EntryKind::File(&mut entry))?;
        }
    }
    Ok(())
}

/// NuGet's packaging bookkeeping, which Octopus does not unpack.
fn is_nuget_metadata(name: &str) -> bool {
    let lower = name.trim_start_matches('/').to_ascii_lowercase();
    lower == "[content_types].xml"
        || lower.starts_with("_rels/")
        || lower.starts_with("package/services/metadata/")
}

/// NuGet stores names URI-escaped (`My%20File.txt`). Invalid escapes are kept as written.
fn percent_decode(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let Some(hex) = bytes.get(index + 1..index + 3)
            && let Ok(hex) = std::str::from_utf8(hex)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            decoded.push(byte);
            index += 3;
            continue;
        }
        decoded.push(bytes[index]);
        index += 1;
    }
    String::from_utf8(decoded).unwrap_or_else(|_| name.to_owned())
}

fn walk_tar<R: Read>(
    walk: &mut Walk<'_>,
    reader: R,
    format: ArchiveFormat,
) -> Result<(), ArchiveError> {
    let mut tar = tar::Archive::new(reader);
    let entries = tar
        .entries()
        .map_err(|error| corrupt(walk, format, error))?;
    for entry in entries {
        let mut entry = entry.map_err(|error| corrupt(walk, format, error))?;
        walk.budget.count_entry()?;
        let path = entry
            .path()
            .map_err(|error| corrupt(walk, format, error))?
            .into_owned();
        let shown_name = path.display().to_string();
        let mode = entry.header().mode().ok();
        let entry_type = entry.header().entry_type();
        match entry_type {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                walk.entry(&shown_name, &path, mode, EntryKind::File(&mut entry))?;
            }
            tar::EntryType::Directory => {
                walk.entry(&shown_name, &path, mode, EntryKind::Directory)?;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|error| corrupt(walk, format, error))?
                    .ok_or_else(|| walk.refuse(&shown_name, "it is a link without a target"))?
                    .into_owned();
                let kind = if entry_type == tar::EntryType::Symlink {
                    EntryKind::Symlink(target)
                } else {
                    EntryKind::HardLink(target)
                };
                walk.entry(&shown_name, &path, None, kind)?;
            }
            // Global pax headers carry defaults for later entries and no content of their own.
            tar::EntryType::XGlobalHeader => {}
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                return Err(walk.refuse(&shown_name, "it is a device or FIFO"));
            }
            other => {
                return Err(walk.refuse(
                    &shown_name,
                    format!("it has the unsupported tar entry type {other:?}"),
                ));
            }
        }
    }
    Ok(())
}
