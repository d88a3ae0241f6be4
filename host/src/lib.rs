//! Runs an Airbyte source connector compiled to a WebAssembly component (`wit/source.wit`).
//!
//! The host owns every side effect: it supplies config, catalog and state, receives messages
//! through a [`MessageSink`], and decides which origins the component may reach
//! ([`egress`]). The component gets no filesystem, no environment variables, no sockets and no
//! stdio: only the `sink` import and filtered `wasi:http`.
//!
//! ```no_run
//! # async fn demo() -> wasmtime::Result<()> {
//! use instagram_host::{AirbyteWriter, Connector, RunOptions};
//! use std::sync::{Arc, Mutex};
//! let connector = Connector::from_file("instagram_connector.wasm".as_ref())?;
//! let config = r#"{"access_token":"…"}"#;
//! let sink = Arc::new(Mutex::new(AirbyteWriter::new(std::io::stdout())));
//! let status = connector.check(&RunOptions::for_config(config), sink, config).await?;
//! println!("connection ok: {}", status.is_ok());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod bindings;
pub mod cassette;
pub mod cli;
pub mod egress;
pub mod engine;
pub mod limits;
pub mod messages;
pub mod output_dir;
pub mod progress;
pub mod read_job;
mod runner;
pub mod state_file;
pub mod tenants;
mod vetted;

pub use bindings::airbyte::source::types::{Failure, FailureType, LogLevel, StreamStatus};
pub use egress::{AllowList, Origin, RequestPool};
pub use engine::CacheOutcome;
pub use limits::{LimitExceeded, Limits};
pub use messages::{AirbyteWriter, MessageSink};
pub use runner::{Connector, HostError, RunOptions, SharedSink};
