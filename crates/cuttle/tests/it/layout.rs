//! The agent's code layout (ARCHITECTURE.md, "Agent code layout"): `link/agent-hot.ld` must be
//! in effect in the built binary and still name its functions. The binary's symbol table is
//! read with `nm`, which comes with the linker.

use std::collections::HashSet;
use std::process::Command;

/// The linker script, as committed.
const LAYOUT: &str = include_str!("../../link/agent-hot.ld");

/// A symbol name as the script spells its pattern: what changes from build to build made `*`
/// (the same rule as `section_pattern` in `scripts/agent-layout.py`).
fn as_pattern(name: &str) -> String {
    let name = match name.find(".llvm.") {
        Some(at) if name[at + 6..].bytes().all(|byte| byte.is_ascii_digit()) => {
            format!("{}*", &name[..at])
        }
        _ => name.to_owned(),
    };
    if !name.starts_with("_R") {
        return name;
    }
    let name = wildcard_runs(&name, "Cs");
    collapse_stars(&wildcard_runs(&name, "B"))
}

/// Replaces each `<prefix><letters and digits>_` with `<prefix>*_`.
fn wildcard_runs(name: &str, prefix: &str) -> String {
    let mut result = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find(prefix) {
        result.push_str(&rest[..at]);
        let after = &rest[at + prefix.len()..];
        let run = after.bytes().take_while(u8::is_ascii_alphanumeric).count();
        if after[run..].starts_with('_') {
            result.push_str(prefix);
            result.push_str("*_");
            rest = &after[run + 1..];
        } else {
            result.push_str(&prefix[..1]);
            rest = &rest[at + 1..];
        }
    }
    result.push_str(rest);
    result
}

fn collapse_stars(name: &str) -> String {
    let mut result = String::with_capacity(name.len());
    for character in name.chars() {
        if !(character == '*' && result.ends_with('*')) {
            result.push(character);
        }
    }
    result
}

struct Symbol {
    address: u64,
    name: String,
}

fn code_symbols(binary: &str) -> Vec<Symbol> {
    let output = Command::new("nm")
        .args(["--defined-only", binary])
        .output()
        .expect("run nm (binutils, which the linker needs) on the cuttle binary");
    assert!(
        output.status.success(),
        "nm failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let address = u64::from_str_radix(fields.next()?, 16).ok()?;
            let kind = fields.next()?;
            let name = fields.next()?;
            matches!(kind, "t" | "T" | "w" | "W").then(|| Symbol {
                address,
                name: name.to_owned(),
            })
        })
        .collect()
}

/// How many of the script's patterns must name a function of the binary under test: the release
/// build the profile came from names nearly all; a debug build inlines less and shares generic
/// instances from other crates, so fewer.
const MINIMUM_PERCENT_NAMED: usize = if cfg!(debug_assertions) { 60 } else { 90 };

#[test]
fn patterns_are_spelled_as_the_generator_spells_them() {
    assert_eq!(
        as_pattern(
            "_RNvMs3_NtCslNYArtu3iFV_5alloc7raw_vecINtB5_6RawVecNtNtNtCs615n2n4ozgG_12clap_builder7builder9arg_group8ArgGroupE8grow_oneBS_"
        ),
        "_RNvMs3_NtCs*_5alloc7raw_vecINtB*_6RawVecNtNtNtCs*_12clap_builder7builder9arg_group8ArgGroupE8grow_oneB*_"
    );
    assert_eq!(
        as_pattern("_RNvNtCs1a_3std2io5stdout.llvm.1234"),
        "_RNvNtCs*_3std2io5stdout*"
    );
    assert_eq!(
        as_pattern("ring_core_0_17_14__sha256_block_data_order_hw"),
        "ring_core_0_17_14__sha256_block_data_order_hw"
    );
    assert_eq!(
        as_pattern("fiat_25519_from_bytes.llvm.77"),
        "fiat_25519_from_bytes*"
    );
    // A `B` or `Cs` not followed by a run and `_` stays as it is.
    assert_eq!(as_pattern("_RNvCs9x_5Bytes3Csv"), "_RNvCs*_5Bytes3Csv");
}

#[test]
fn the_agents_code_is_gathered_at_the_front_of_the_text() {
    let patterns: Vec<&str> = LAYOUT
        .lines()
        .filter_map(|line| line.trim().strip_prefix(".text*."))
        .collect();
    assert!(
        patterns.len() > 1000,
        "agent-hot.ld has only {} patterns",
        patterns.len()
    );

    let symbols = code_symbols(env!("CARGO_BIN_EXE_cuttle"));
    let address_of = |wanted: &str| {
        symbols
            .iter()
            .find(|symbol| symbol.name == wanted)
            .map(|symbol| symbol.address)
            .unwrap_or_else(|| {
                panic!("{wanted} is not in the binary: build.rs did not pass link/agent-hot.ld")
            })
    };
    let block = address_of("__cuttle_agent_code_start")..address_of("__cuttle_agent_code_end");
    let inside: HashSet<String> = symbols
        .iter()
        .filter(|symbol| block.contains(&symbol.address))
        .map(|symbol| as_pattern(&symbol.name))
        .collect();
    let anywhere: HashSet<String> = symbols
        .iter()
        .map(|symbol| as_pattern(&symbol.name))
        .collect();

    // Every Rust function a pattern names is in the block, wherever the linker found it. (C and
    // assembly functions can share one `.text` section with others, which no pattern names.)
    let left_out: Vec<&&str> = patterns
        .iter()
        .filter(|pattern| pattern.starts_with("_R"))
        .filter(|pattern| anywhere.contains(**pattern) && !inside.contains(**pattern))
        .collect();
    assert!(
        left_out.is_empty(),
        "functions outside the block: {left_out:#?}"
    );

    // And the script still names this source's functions.
    let named = patterns
        .iter()
        .filter(|pattern| inside.contains(**pattern))
        .count();
    assert!(
        named * 100 >= patterns.len() * MINIMUM_PERCENT_NAMED,
        "only {named} of {} patterns in link/agent-hot.ld name a function of this build; \
         regenerate it with `python3 scripts/agent-layout.py` (or RUSTFLAGS replaced \
         .cargo/config.toml's v0 mangling)",
        patterns.len()
    );
}
