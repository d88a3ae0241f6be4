//! Packs the connector's built-in JSON documents (the spec and the stream schemas): each is
//! checked to be JSON, minified (key order kept) and deflated into `OUT_DIR`, where
//! `packed!` finds it under its path in this crate.
//!
//! Why: every tenant's instance maps the component's constant data, so each kilobyte of it costs
//! a kilobyte per tenant. The documents are only read by `spec` and `discover`; packed, they
//! take 4 KB instead of 26.

// A build script reports a failure by panicking.
#![allow(clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut documents = vec![PathBuf::from("resources/spec.json")];
    let schemas = Path::new("src/streams/schemas");
    println!("cargo:rerun-if-changed={}", schemas.display());
    println!("cargo:rerun-if-changed=resources/spec.json");
    for entry in std::fs::read_dir(schemas).expect("the schemas directory") {
        documents.push(entry.expect("a schema file").path());
    }
    for document in documents {
        let text = std::fs::read_to_string(&document).expect("a readable document");
        let json: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", document.display()));
        let packed = miniz_oxide::deflate::compress_to_vec(json.to_string().as_bytes(), 10);
        let target = out.join(format!("{}.deflate", document.display()));
        std::fs::create_dir_all(target.parent().expect("a directory")).expect("the output directory");
        std::fs::write(&target, packed).expect("the packed document");
        println!("cargo:rerun-if-changed={}", document.display());
    }
}
