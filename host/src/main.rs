//! `source-instagram-host COMPONENT.wasm [OPTIONS] spec | check | discover | read | run-many`:
//! the Airbyte source CLI contract on top of the `instagram_host` library (see its `cli`
//! module). Protocol messages go to stdout, one JSON object per line; the host's own diagnostics
//! go to stderr.

use clap::Parser;
use instagram_host::cli::{self, ComponentSource, OperatorSettings, Verb};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "Runs the Instagram source connector component under wasmtime")]
struct Cli {
    /// The connector component (`instagram_connector.wasm`).
    component: PathBuf,
    #[command(flatten)]
    settings: OperatorSettings,
    #[command(subcommand)]
    verb: Verb,
}

fn main() -> ExitCode {
    let cli: Cli = match cli::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    cli::main(ComponentSource::File(cli.component), cli.settings, cli.verb)
}
