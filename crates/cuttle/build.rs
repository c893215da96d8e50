//! Build script: links the `cuttle` binary on Linux with `link/agent-hot.ld`, which puts the code
//! an agent runs while it idles and runs scripts at the front of the text. The kernel maps a
//! binary 64 KiB around each page fault, so gathering that code keeps an idle agent's RSS
//! small in a binary that also carries the whole server (ARCHITECTURE.md, "Agent code layout";
//! `scripts/agent-layout.py` regenerates the script).

use std::env;

fn main() {
    println!("cargo::rerun-if-changed=link/agent-hot.ld");
    // The script uses ELF section names and `INSERT`, which both lld and GNU ld understand.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let manifest_directory = env::var("CARGO_MANIFEST_DIR")
            .expect("cargo sets CARGO_MANIFEST_DIR for build scripts");
        println!("cargo::rustc-link-arg-bin=cuttle=-Wl,-T,{manifest_directory}/link/agent-hot.ld");
    }
}
