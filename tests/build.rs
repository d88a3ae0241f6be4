//! Builds the WebAssembly guests the end-to-end tests run (the connector component and the
//! hostile test component), so that `cargo test --workspace` works on its own, as wasmtime builds
//! its test programs. They go to `target/guests/`, a target directory of their own: a nested
//! cargo sharing the outer one's directory would wait forever for the lock the outer one holds.
//! `make build` builds the shipped component into the same place, so it is built once.

#![allow(clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

const GUESTS: [(&str, &str); 2] =
    [("instagram-connector", "instagram_connector"), ("hostile-component", "hostile_component")];
const WASM_TARGET: &str = "wasm32-wasip2";

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf();
    for watched in ["connector", "messages", "wit", "tests/hostile", "Cargo.lock", ".cargo/config.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    // OUT_DIR is `<target>/<profile>/build/<package>/out`.
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let target_dir = out_dir.ancestors().nth(4).expect("the target directory").join("guests");

    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo.current_dir(&root).args(["build", "--release", "--locked", "--target", WASM_TARGET]);
    for (package, _) in GUESTS {
        cargo.args(["-p", package]);
    }
    cargo.env("CARGO_TARGET_DIR", &target_dir);
    // What the outer build sets for this script is not for the guests (flags, profile, target).
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let outer = (key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_MAKEFLAGS")
            || key.starts_with("__CARGO")
            || ["RUSTFLAGS", "TARGET", "HOST", "PROFILE", "OPT_LEVEL", "DEBUG", "OUT_DIR", "NUM_JOBS"]
                .contains(&key.as_ref());
        if outer && key != "CARGO_TARGET_DIR" {
            cargo.env_remove(key.as_ref());
        }
    }
    let status = cargo.status().expect("run cargo for the WebAssembly guests");
    if !status.success() {
        panic!(
            "building the WebAssembly guests failed; is the target installed? `rustup target add {WASM_TARGET}`, or run `make test`"
        );
    }
    for (_, artifact) in GUESTS {
        let path = target_dir.join(WASM_TARGET).join("release").join(format!("{artifact}.wasm"));
        println!("cargo:rustc-env=GUEST_{}={}", artifact.to_uppercase(), path.display());
    }
}
