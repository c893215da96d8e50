//! The script's variables at rest and on their way into the script.
//!
//! At rest: `variables.enc` in the ticket directory, AES-256-GCM under a fresh random key per
//! ticket. The key lives only in the executor's memory (it is never written anywhere and never
//! put on a command line or in an environment variable), so a copy of the ticket directory, or
//! the file left behind by a crash, reveals nothing. Format: the magic line `cuttle-vars-1\n`,
//! a 96-bit nonce, then ciphertext and tag; the associated data binds the file to its ticket.
//!
//! On the way in: just before the script starts, the executor decrypts the file and writes a
//! *preamble* to the script's standard input, which the bootstrap reads once into shell or
//! Python variables and then replaces with `/dev/null`. Plaintext therefore exists only in the
//! executor's memory, in a pipe, and in the script's own memory, never in a file, an argument
//! or the environment (where child processes and `/proc/<pid>/environ` would see it). The
//! helpers need nothing on the target beyond the interpreter and coreutils: no `openssl`
//! (whose `enc` cannot do GCM anyway), no `xxd`, no `cuttle` binary on the `PATH`.
//!
//! Preamble formats, per syntax (generated here, parsed by the bootstraps in `bootstrap/`):
//! - bash: one `octopus_parameters['name']='value'` per variable (the bootstrap declares the
//!   associative array first), single-quoted (the only quoting with no escapes inside), read
//!   with `eval`;
//! - sh: `__cuttle_variable_count=N`, `__cuttle_name_I='…'`, `__cuttle_value_I='…'`;
//! - Python and PowerShell: JSON, `[{"Name": …, "Value": …}, …]`.
//!
//! Names are exact (case-sensitive, as in Calamari's helpers); a repeated name keeps its
//! first position and its last value; empty names are dropped (bash cannot store them) and
//! NUL characters are removed from shell preambles (shell strings cannot hold them).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use zeroize::{Zeroize, Zeroizing};

use crate::error::ExecError;
use crate::request::{ScriptSyntax, ScriptVariable};

const MAGIC: &[u8] = b"cuttle-vars-1\n";
const NONCE_BYTES: usize = 12;

/// A fresh 256-bit key for one ticket's variables file; wiped when dropped.
pub(crate) struct TicketKey(Zeroizing<[u8; 32]>);

impl TicketKey {
    pub(crate) fn generate() -> TicketKey {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, bytes.as_mut());
        TicketKey(bytes)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.0.as_ref()))
    }
}

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("TicketKey(…)")
    }
}

/// Name/value pairs in the clear, wiped from memory when dropped.
#[derive(Default)]
pub(crate) struct PlainVariables(Vec<(String, String)>);

impl Drop for PlainVariables {
    fn drop(&mut self) {
        for (name, value) in &mut self.0 {
            name.zeroize();
            value.zeroize();
        }
    }
}

impl PlainVariables {
    /// The request's variables, deduplicated (first position, last value), empty names dropped.
    pub(crate) fn from_request(variables: &[ScriptVariable]) -> PlainVariables {
        let mut pairs: Vec<(String, String)> = Vec::with_capacity(variables.len());
        let mut positions: HashMap<&str, usize> = HashMap::new();
        for variable in variables {
            if variable.name.is_empty() {
                continue;
            }
            match positions.get(variable.name.as_str()) {
                Some(&position) => pairs[position].1.clone_from(&variable.value),
                None => {
                    positions.insert(&variable.name, pairs.len());
                    pairs.push((variable.name.clone(), variable.value.clone()));
                }
            }
        }
        PlainVariables(pairs)
    }

    /// The name/value pairs.
    pub(crate) fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// The preamble the bootstrap of `syntax` reads from standard input.
    pub(crate) fn preamble(&self, syntax: ScriptSyntax) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::new());
        match syntax {
            ScriptSyntax::Bash => {
                for (name, value) in &self.0 {
                    text.push_str("octopus_parameters[");
                    push_single_quoted(&mut text, name);
                    text.push_str("]=");
                    push_single_quoted(&mut text, value);
                    text.push('\n');
                }
            }
            ScriptSyntax::Sh => {
                text.push_str(&format!("__cuttle_variable_count={}\n", self.0.len()));
                for (index, (name, value)) in self.0.iter().enumerate() {
                    text.push_str(&format!("__cuttle_name_{index}="));
                    push_single_quoted(&mut text, name);
                    text.push_str(&format!("\n__cuttle_value_{index}="));
                    push_single_quoted(&mut text, value);
                    text.push('\n');
                }
            }
            ScriptSyntax::Python | ScriptSyntax::PowerShell => {
                let entries: Vec<serde_json::Value> = self
                    .0
                    .iter()
                    .map(|(name, value)| serde_json::json!({"Name": name, "Value": value}))
                    .collect();
                text.push_str(&serde_json::Value::Array(entries).to_string());
            }
        }
        text
    }
}

/// `'text'` for POSIX shells: `'` becomes `'\''`; NUL characters are dropped.
fn push_single_quoted(out: &mut String, text: &str) {
    out.push('\'');
    for character in text.chars() {
        match character {
            '\'' => out.push_str("'\\''"),
            '\0' => {}
            other => out.push(other),
        }
    }
    out.push('\'');
}

fn associated_data(ticket: &str) -> Vec<u8> {
    let mut data = MAGIC.to_vec();
    data.extend_from_slice(ticket.as_bytes());
    data
}

/// Encrypts the variables into `path` (created new, mode 0600, synced).
pub(crate) fn write_file(
    path: &Path,
    ticket: &str,
    key: &TicketKey,
    variables: &PlainVariables,
) -> Result<(), ExecError> {
    let plaintext =
        Zeroizing::new(
            serde_json::to_vec(&variables.0).map_err(|error| ExecError::Damaged {
                path: path.to_owned(),
                reason: error.to_string(),
            })?,
        );
    let nonce = Aes256Gcm::generate_nonce(&mut rand::rngs::OsRng);
    let aad = associated_data(ticket);
    let ciphertext = key
        .cipher()
        .encrypt(
            &nonce,
            Payload {
                msg: &plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| ExecError::Damaged {
            path: path.to_owned(),
            reason: "the variables could not be encrypted".into(),
        })?;
    let mut contents = Vec::with_capacity(MAGIC.len() + NONCE_BYTES + ciphertext.len());
    contents.extend_from_slice(MAGIC);
    contents.extend_from_slice(&nonce);
    contents.extend_from_slice(&ciphertext);
    let mut file = crate::journal::create_private(path)?;
    file.write_all(&contents)
        .and_then(|()| file.sync_all())
        .map_err(ExecError::io("write", path))
}

/// Decrypts a file made by [`write_file`] with the same key.
pub(crate) fn read_file(
    path: &Path,
    ticket: &str,
    key: &TicketKey,
) -> Result<PlainVariables, ExecError> {
    let damaged = |reason: &str| ExecError::Damaged {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let contents = std::fs::read(path).map_err(ExecError::io("read", path))?;
    let rest = contents
        .strip_prefix(MAGIC)
        .ok_or_else(|| damaged("not a variables file"))?;
    if rest.len() < NONCE_BYTES {
        return Err(damaged("too short"));
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
    let aad = associated_data(ticket);
    let plaintext = Zeroizing::new(
        key.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| damaged("it does not open with this ticket's key"))?,
    );
    let pairs: Vec<(String, String)> =
        serde_json::from_slice(&plaintext).map_err(|error| damaged(&error.to_string()))?;
    Ok(PlainVariables(pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variables() -> Vec<ScriptVariable> {
        vec![
            ScriptVariable::new("Plain", "visible value"),
            ScriptVariable::sensitive("Password", "correct horse battery"),
            ScriptVariable::new("Plain", "second value wins"),
            ScriptVariable::new("", "dropped"),
        ]
    }

    #[test]
    fn the_file_holds_no_plaintext_and_opens_only_with_its_key_and_ticket() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("variables.enc");
        let key = TicketKey::generate();
        write_file(
            &path,
            "T-1",
            &key,
            &PlainVariables::from_request(&variables()),
        )
        .expect("write");
        let bytes = std::fs::read(&path).expect("read");
        for secret in ["visible value", "correct horse battery", "Password"] {
            assert!(
                !bytes
                    .windows(secret.len())
                    .any(|window| window == secret.as_bytes()),
                "{secret} is in the clear"
            );
        }
        let opened = read_file(&path, "T-1", &key).expect("open");
        assert_eq!(
            opened.0,
            vec![
                ("Plain".to_owned(), "second value wins".to_owned()),
                ("Password".to_owned(), "correct horse battery".to_owned())
            ]
        );
        assert!(read_file(&path, "T-2", &key).is_err());
        assert!(read_file(&path, "T-1", &TicketKey::generate()).is_err());
    }

    #[test]
    fn shell_preambles_quote_everything() {
        let plain = PlainVariables::from_request(&[ScriptVariable::new(
            "it's [a] $name",
            "line1\nit's $(rm -rf /) `x`\0",
        )]);
        let bash = plain.preamble(ScriptSyntax::Bash);
        assert_eq!(
            bash.as_str(),
            "octopus_parameters['it'\\''s [a] $name']='line1\nit'\\''s $(rm -rf /) `x`'\n"
        );
        let sh = plain.preamble(ScriptSyntax::Sh);
        assert!(sh.starts_with("__cuttle_variable_count=1\n__cuttle_name_0='it'\\''s"));
        let python = plain.preamble(ScriptSyntax::Python);
        let parsed: serde_json::Value = serde_json::from_str(&python).expect("json");
        assert_eq!(parsed[0]["Name"], "it's [a] $name");
        assert_eq!(parsed[0]["Value"], "line1\nit's $(rm -rf /) `x`\u{0}");
    }
}
