//! `source-instagram spec | check | discover | read | run-many`: the host with the connector
//! component carried inside the executable, so the one file is the whole connector (what the
//! Python wheel installs). Built by `make onefile`, which names the component to carry in
//! `SOURCE_INSTAGRAM_EMBED`; compiled on first use and cached like a component file.

use clap::Parser;
use instagram_host::cli::{self, ComponentSource, OperatorSettings, Verb};
use std::process::ExitCode;

/// The connector component, carried inside this executable.
static COMPONENT: &[u8] = include_bytes!(env!("SOURCE_INSTAGRAM_EMBED"));

#[derive(Parser)]
#[command(name = "source-instagram", version, about = "The Instagram source connector (an Airbyte source)")]
struct Cli {
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
    cli::main(ComponentSource::Embedded(COMPONENT), cli.settings, cli.verb)
}
