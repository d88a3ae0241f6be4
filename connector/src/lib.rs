//! Instagram Graph API source connector.
//!
//! Everything here but `component` is plain Rust that compiles and unit-tests natively; the
//! component glue binds it to the WIT world in `wit/source.wit` when built for `wasm32-wasip2`.

pub mod auth;
pub mod catalog;
pub mod command_line;
pub mod config;
pub mod graph;
pub mod http;
pub mod metrics;
pub mod model;
pub mod packed;
pub mod protocol;
pub mod record;
pub mod source;
pub mod state;
pub mod streams;
pub mod window;

#[cfg(test)]
mod parser_properties;

// The generated WIT bindings need `unsafe` for the canonical ABI; nothing else does.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod component;
