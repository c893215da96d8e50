//! Delta transfer of package files, as Octopus does with Octodiff: the target describes a file
//! it already has (the *basis*) with a small **signature**; the server computes a **delta**
//! from that signature to the new package; the target **applies** the delta to its basis and
//! gets the new package, checked against its SHA-256, without the whole package crossing the
//! wire.
//!
//! ```text
//! target: signature(basis) ──► server: plan_delta(signature, new_file)
//!                                 ├─ DeltaPlan::SendDelta(delta) ──► target: apply(basis, delta, sha256, output)
//!                                 └─ DeltaPlan::SendFull{…}      ──► upload the whole package
//! ```
//!
//! The rolling-checksum matching is the `fast_rsync` crate's (librsync's algorithm, MD4 block
//! hashes); this crate adds the framing, the decision and the verification around it:
//! - the signature carries the basis's SHA-256 and length, and the delta repeats them, so a
//!   delta is only ever applied to the basis it was computed against;
//! - the delta carries the new file's SHA-256 and length, and [`apply`] writes to a
//!   `*.partial` file, checks both, and renames into place only when they match: MD4 is not
//!   collision-resistant, so the SHA-256 of the result is what makes a patched file
//!   trustworthy. Any error leaves nothing behind and means "send the full package";
//! - [`plan_delta`] answers [`DeltaPlan::SendFull`] when the delta would be at least
//!   [`FULL_TRANSFER_THRESHOLD_PERCENT`] % of the new file (Octopus's rule): a delta that
//!   saves little is not worth a second round trip and a patch.
//!
//! Memory: the basis is read into one buffer (signature and apply need random access to it;
//! `unsafe` memory-mapping is forbidden in this workspace), and the new file is processed in
//! segments of [`SEGMENT_BYTES`]: each segment's delta is computed against the whole basis
//! signature and applied on its own, so a 100 MiB package never needs more than the basis, one
//! segment and the delta in memory. A block that straddles a segment boundary is sent as
//! literal data, which costs at most one block per segment.
//!
//! What this crate does not do: move bytes over the network, choose the basis, or keep a
//! package cache (the agent and the orchestrator do).

#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// The signature's block size in bytes: Octodiff's default chunk size.
pub const DEFAULT_BLOCK_SIZE: u32 = 2048;
/// How many bytes of each block's MD4 hash the signature keeps (all of them).
const CRYPTO_HASH_BYTES: u32 = 16;
/// A delta at least this share (in percent) of the new file's size is not worth sending.
pub const FULL_TRANSFER_THRESHOLD_PERCENT: u64 = 80;
/// The new file is diffed and patched in segments of this many bytes.
pub const SEGMENT_BYTES: usize = 8 << 20;
/// The largest delta of one segment [`apply`] accepts: literal data plus command overhead.
const MAX_SEGMENT_DELTA_BYTES: u64 = 2 * SEGMENT_BYTES as u64 + (1 << 20);

const SIGNATURE_MAGIC: &[u8] = b"CUTTLESIG1\n";
const DELTA_MAGIC: &[u8] = b"CUTTLEDELTA1\n";

/// Why a signature, delta or patch could not be made. The caller's answer to each is the
/// same (send the full package); the variants say why, for the log.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the signature is not valid: {0}")]
    InvalidSignature(String),
    #[error("the delta is not valid: {0}")]
    InvalidDelta(String),
    #[error(
        "the delta was made for a basis with SHA-256 {expected}, but the basis file has {actual}"
    )]
    BasisMismatch { expected: String, actual: String },
    #[error(
        "the patched file does not match: expected SHA-256 {expected} ({expected_length} bytes), got {actual} ({actual_length} bytes)"
    )]
    VerificationFailed {
        expected: String,
        expected_length: u64,
        actual: String,
        actual_length: u64,
    },
}

fn io_error(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> DeltaError + use<> {
    let path = path.to_owned();
    move |source| DeltaError::Io {
        action,
        path,
        source,
    }
}

/// The SHA-256 of some bytes, in lower-case hex (the agent protocol's spelling).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The SHA-256 of a file, in lower-case hex, read in a streaming fashion.
pub fn file_sha256_hex(path: &Path) -> Result<String, DeltaError> {
    let mut file = File::open(path).map_err(io_error("open", path))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer).map_err(io_error("read", path))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The signature of a basis file (read into memory once).
pub fn signature(basis: &Path) -> Result<Vec<u8>, DeltaError> {
    let bytes = std::fs::read(basis).map_err(io_error("read", basis))?;
    Ok(signature_of_bytes(&bytes))
}

/// The signature of basis bytes: `CUTTLESIG1\n`, the basis's SHA-256 (32 bytes) and length
/// (u64, little-endian), then `fast_rsync`'s serialized signature.
pub fn signature_of_bytes(basis: &[u8]) -> Vec<u8> {
    let rsync_signature = fast_rsync::Signature::calculate(
        basis,
        fast_rsync::SignatureOptions {
            block_size: DEFAULT_BLOCK_SIZE,
            crypto_hash_size: CRYPTO_HASH_BYTES,
        },
    );
    let mut out =
        Vec::with_capacity(SIGNATURE_MAGIC.len() + 40 + rsync_signature.serialized().len());
    out.extend_from_slice(SIGNATURE_MAGIC);
    out.extend_from_slice(&Sha256::digest(basis));
    out.extend_from_slice(&(basis.len() as u64).to_le_bytes());
    out.extend_from_slice(rsync_signature.serialized());
    out
}

/// A basis signature taken apart.
struct ParsedSignature {
    basis_sha256: [u8; 32],
    basis_length: u64,
    rsync_signature: fast_rsync::Signature,
}

fn parse_signature(signature: &[u8]) -> Result<ParsedSignature, DeltaError> {
    let invalid = |reason: &str| DeltaError::InvalidSignature(reason.to_owned());
    let rest = signature
        .strip_prefix(SIGNATURE_MAGIC)
        .ok_or_else(|| invalid("it does not start with the Cuttle signature header"))?;
    if rest.len() < 40 {
        return Err(invalid("it is too short"));
    }
    let (basis_sha256, rest) = rest.split_at(32);
    let (basis_length, rest) = rest.split_at(8);
    let rsync_signature = fast_rsync::Signature::deserialize(rest.to_vec())
        .map_err(|error| DeltaError::InvalidSignature(error.to_string()))?;
    Ok(ParsedSignature {
        basis_sha256: basis_sha256
            .try_into()
            .map_err(|_| invalid("the basis hash is cut short"))?,
        basis_length: u64::from_le_bytes(
            basis_length
                .try_into()
                .map_err(|_| invalid("the basis length is cut short"))?,
        ),
        rsync_signature,
    })
}

/// What to send for a new file, given the target's basis signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaPlan {
    /// Send this delta; the target applies it with [`apply`].
    SendDelta(Delta),
    /// Send the whole file: the delta would not have saved enough.
    SendFull {
        /// How long the delta would have been, at least (computing stops at the threshold).
        delta_length_at_least: u64,
        new_file_length: u64,
        new_file_sha256: String,
    },
}

/// A delta ready to send, with what it describes.
#[derive(Clone, PartialEq, Eq)]
pub struct Delta {
    /// The delta file's bytes, as [`apply`] reads them.
    pub bytes: Vec<u8>,
    /// The SHA-256 the basis must have.
    pub basis_sha256: String,
    pub new_file_length: u64,
    /// The SHA-256 the patched file must have.
    pub new_file_sha256: String,
}

impl std::fmt::Debug for Delta {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Delta")
            .field("bytes", &self.bytes.len())
            .field("basis_sha256", &self.basis_sha256)
            .field("new_file_length", &self.new_file_length)
            .field("new_file_sha256", &self.new_file_sha256)
            .finish()
    }
}

/// Computes the delta from a basis (described by `signature`) to `new_file`, reading the new
/// file in segments; answers [`DeltaPlan::SendFull`] as soon as the delta reaches
/// [`FULL_TRANSFER_THRESHOLD_PERCENT`] % of the new file's size.
pub fn plan_delta(signature: &[u8], new_file: &Path) -> Result<DeltaPlan, DeltaError> {
    let parsed = parse_signature(signature)?;
    let indexed = parsed.rsync_signature.index();
    let mut file = File::open(new_file).map_err(io_error("open", new_file))?;
    let new_file_length = file
        .metadata()
        .map_err(io_error("read the size of", new_file))?
        .len();
    let threshold = new_file_length.saturating_mul(FULL_TRANSFER_THRESHOLD_PERCENT) / 100;
    // The header's new-file hash is filled in once the whole file has been read.
    let mut bytes = Vec::new();
    bytes.extend_from_slice(DELTA_MAGIC);
    bytes.extend_from_slice(&parsed.basis_sha256);
    bytes.extend_from_slice(&parsed.basis_length.to_le_bytes());
    let new_hash_offset = bytes.len();
    bytes.extend_from_slice(&[0u8; 32]);
    bytes.extend_from_slice(&new_file_length.to_le_bytes());

    let mut hasher = Sha256::new();
    let mut segment = vec![0u8; SEGMENT_BYTES];
    let mut segment_delta = Vec::new();
    let mut too_large = false;
    loop {
        let filled = read_full(&mut file, &mut segment).map_err(io_error("read", new_file))?;
        if filled == 0 {
            break;
        }
        let data = &segment[..filled];
        hasher.update(data);
        if too_large {
            // Keep reading only to hash the file for the answer.
            continue;
        }
        segment_delta.clear();
        fast_rsync::diff(&indexed, data, &mut segment_delta)
            .map_err(|error| DeltaError::InvalidSignature(error.to_string()))?;
        bytes.extend_from_slice(&(filled as u64).to_le_bytes());
        bytes.extend_from_slice(&(segment_delta.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&segment_delta);
        if bytes.len() as u64 >= threshold {
            too_large = true;
        }
    }
    let new_sha256: [u8; 32] = hasher.finalize().into();
    let new_file_sha256 = hex::encode(new_sha256);
    // An empty new file has nothing to save: send it whole (it is empty).
    if too_large || new_file_length == 0 {
        return Ok(DeltaPlan::SendFull {
            delta_length_at_least: bytes.len() as u64,
            new_file_length,
            new_file_sha256,
        });
    }
    bytes[new_hash_offset..new_hash_offset + 32].copy_from_slice(&new_sha256);
    Ok(DeltaPlan::SendDelta(Delta {
        bytes,
        basis_sha256: hex::encode(parsed.basis_sha256),
        new_file_length,
        new_file_sha256,
    }))
}

/// Reads until `buffer` is full or the input ends; returns how much was read.
fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// What [`apply`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedDelta {
    pub output: PathBuf,
    pub length: u64,
    pub sha256: String,
}

/// Applies the delta file `delta` to `basis` and writes the result to `output`: first to
/// `<output>.<random>.partial`, then, once its length and SHA-256 match the delta's and
/// `expected_sha256` (hex), renamed over `output`. On any error the partial file is removed
/// and `output` is untouched.
pub fn apply(
    basis: &Path,
    delta: &Path,
    expected_sha256: &str,
    output: &Path,
) -> Result<AppliedDelta, DeltaError> {
    let file_name = output
        .file_name()
        .ok_or_else(|| DeltaError::InvalidDelta(format!("{} names no file", output.display())))?;
    let partial = output.with_file_name(format!(
        "{}.{:016x}.partial",
        file_name.to_string_lossy(),
        rand::random::<u64>()
    ));
    let result = apply_to_partial(basis, delta, expected_sha256, &partial);
    match result {
        Ok((length, sha256)) => match std::fs::rename(&partial, output) {
            Ok(()) => Ok(AppliedDelta {
                output: output.to_owned(),
                length,
                sha256,
            }),
            Err(error) => {
                let _removed = std::fs::remove_file(&partial);
                Err(io_error("move into place", output)(error))
            }
        },
        Err(error) => {
            // Best effort: the partial file may not exist yet.
            let _removed = std::fs::remove_file(&partial);
            Err(error)
        }
    }
}

fn apply_to_partial(
    basis: &Path,
    delta: &Path,
    expected_sha256: &str,
    partial: &Path,
) -> Result<(u64, String), DeltaError> {
    let invalid = |reason: String| DeltaError::InvalidDelta(reason);
    let mut reader = BufReader::new(File::open(delta).map_err(io_error("open", delta))?);
    let mut magic = vec![0u8; DELTA_MAGIC.len()];
    read_exact(&mut reader, &mut magic, delta)?;
    if magic != DELTA_MAGIC {
        return Err(invalid(
            "it does not start with the Cuttle delta header".into(),
        ));
    }
    let mut header = [0u8; 80];
    read_exact(&mut reader, &mut header, delta)?;
    let basis_sha256 = hex::encode(&header[..32]);
    let basis_length = u64_at(&header, 32);
    let new_sha256 = hex::encode(&header[40..72]);
    let new_length = u64_at(&header, 72);
    if !new_sha256.eq_ignore_ascii_case(expected_sha256) {
        return Err(DeltaError::VerificationFailed {
            expected: expected_sha256.to_ascii_lowercase(),
            expected_length: new_length,
            actual: new_sha256,
            actual_length: new_length,
        });
    }

    let basis_bytes = std::fs::read(basis).map_err(io_error("read", basis))?;
    let actual_basis_sha256 = sha256_hex(&basis_bytes);
    if actual_basis_sha256 != basis_sha256 || basis_bytes.len() as u64 != basis_length {
        return Err(DeltaError::BasisMismatch {
            expected: basis_sha256,
            actual: actual_basis_sha256,
        });
    }

    let mut out = File::create_new(partial).map_err(io_error("create", partial))?;
    let mut hasher = Sha256::new();
    let mut written: u64 = 0;
    let mut segment_delta = Vec::new();
    let mut segment_output = Vec::with_capacity(SEGMENT_BYTES);
    loop {
        let mut lengths = [0u8; 16];
        let first = read_full(&mut reader, &mut lengths).map_err(io_error("read", delta))?;
        if first == 0 {
            break;
        }
        if first < lengths.len() {
            return Err(invalid("a segment header is cut short".into()));
        }
        let output_length = u64_at(&lengths, 0);
        let delta_length = u64_at(&lengths, 8);
        if output_length > SEGMENT_BYTES as u64 || delta_length > MAX_SEGMENT_DELTA_BYTES {
            return Err(invalid(format!(
                "a segment claims {output_length} output bytes from {delta_length} delta bytes, more than this version writes"
            )));
        }
        if written + output_length > new_length {
            return Err(invalid("the segments are longer than the new file".into()));
        }
        // Bounded above, so the conversion cannot truncate on 64-bit or 32-bit targets.
        segment_delta.resize(delta_length as usize, 0);
        read_exact(&mut reader, &mut segment_delta, delta)?;
        segment_output.clear();
        fast_rsync::apply_limited(
            &basis_bytes,
            &segment_delta,
            &mut segment_output,
            output_length as usize,
        )
        .map_err(|error| invalid(error.to_string()))?;
        if segment_output.len() as u64 != output_length {
            return Err(invalid(format!(
                "a segment produced {} bytes instead of {output_length}",
                segment_output.len()
            )));
        }
        hasher.update(&segment_output);
        out.write_all(&segment_output)
            .map_err(io_error("write", partial))?;
        written += output_length;
    }
    let actual_sha256 = hex::encode(hasher.finalize());
    if written != new_length || actual_sha256 != new_sha256 {
        return Err(DeltaError::VerificationFailed {
            expected: new_sha256,
            expected_length: new_length,
            actual: actual_sha256,
            actual_length: written,
        });
    }
    out.sync_all().map_err(io_error("sync", partial))?;
    Ok((written, actual_sha256))
}

fn read_exact(reader: &mut impl Read, buffer: &mut [u8], path: &Path) -> Result<(), DeltaError> {
    reader.read_exact(buffer).map_err(|error| {
        if error.kind() == std::io::ErrorKind::UnexpectedEof {
            DeltaError::InvalidDelta("it is cut short".into())
        } else {
            io_error("read", path)(error)
        }
    })
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_refuse_foreign_bytes() {
        assert!(matches!(
            parse_signature(b"not a signature"),
            Err(DeltaError::InvalidSignature(_))
        ));
        let mut signature = signature_of_bytes(b"hello world");
        signature.truncate(SIGNATURE_MAGIC.len() + 10);
        assert!(parse_signature(&signature).is_err());
    }

    #[test]
    fn read_full_fills_across_short_reads() {
        let mut reader =
            std::io::Cursor::new(vec![7u8; 10]).chain(std::io::Cursor::new(vec![8u8; 5]));
        let mut buffer = [0u8; 12];
        assert_eq!(read_full(&mut reader, &mut buffer).expect("read"), 12);
        assert_eq!(buffer[11], 8);
    }
}
