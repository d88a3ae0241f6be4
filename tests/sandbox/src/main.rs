//! `graph-sandbox --port P --seed S --accounts N`: serve the sandbox until stopped.

use clap::Parser;
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{DEFAULT_TOKEN, Sandbox, SandboxOptions};
use std::io::Write;

#[derive(Parser)]
#[command(about = "Offline Instagram Graph API sandbox on 127.0.0.1")]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Seed of the deterministic account model.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Pages with an Instagram business account.
    #[arg(long, default_value_t = 3)]
    accounts: usize,
    /// Extra pages without one.
    #[arg(long, default_value_t = 2)]
    pages_without_instagram: usize,
    /// The access token the sandbox accepts.
    #[arg(long, default_value = DEFAULT_TOKEN)]
    token: String,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let model = Model::generate(&ModelSpec {
        seed: args.seed,
        accounts: args.accounts,
        pages_without_instagram: args.pages_without_instagram,
    });
    let options = SandboxOptions { token: args.token, port: args.port, ..SandboxOptions::new(model) };
    match Sandbox::start(options) {
        Ok(sandbox) => {
            // The first stdout line is the base URL, for scripts.
            println!("{}", sandbox.base_url());
            let _ = std::io::stdout().flush();
            eprintln!("graph-sandbox: serving {} accounts on {}", args.accounts, sandbox.addr());
            sandbox.wait();
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("graph-sandbox: cannot start: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
