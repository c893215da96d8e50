//! Cuttle's package archives: what a package file is called ([`name`]: `<PackageId>.<Version><ext>`
//! as Octopus reads it) and how its content is checked and unpacked ([`archive`]: zip, nupkg, tar,
//! tar.gz, tar.bz2).
//!
//! It owns the safety rules every unpacked package obeys, wherever it is unpacked (the server
//! when a package is pushed, targets when it is deployed): nothing is written outside the
//! destination, links may not point out of it, and an archive may not unpack to more bytes or
//! entries than the limits allow. What it deliberately does not do: know about feeds, storage,
//! HTTP or async runtimes. Extraction is synchronous; async callers use `spawn_blocking`.

pub mod archive;
pub mod name;

pub use archive::{
    ArchiveError, ArchiveFormat, ExtractionLimits, ExtractionSummary, extract, validate,
};
pub use name::{PackageFileName, PackageNameError, parse_package_file_name};
