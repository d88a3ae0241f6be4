//! `graph-sandbox --port P --seed S --accounts N`: serve the sandbox until stopped.

use clap::Parser;
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{DEFAULT_TOKEN, RateLimit, Sandbox, SandboxOptions};
use std::io::Write;
use std::time::Duration;

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
    /// Media per account.
    #[arg(long, default_value_t = 12)]
    media: usize,
    /// Live stories per account.
    #[arg(long, default_value_t = 3)]
    stories: usize,
    /// Leave out the seeded special errors (2108006, 100/33, code 10, deleted slide).
    #[arg(long)]
    no_special_errors: bool,
    /// Milliseconds added before every answer.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Share of requests answered with a transient fault (0.0–1.0).
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Calls allowed per second per token (0: unlimited).
    #[arg(long, default_value_t = 0)]
    rate_limit_per_sec: usize,
    /// Make `children{…}` field expansion fail (exercises the connector's fallback).
    #[arg(long)]
    expansion_fails: bool,
    /// Seconds between two posts of an account.
    #[arg(long, default_value_t = 7_200)]
    media_interval_secs: i64,
    /// Simulated days since the first sync: new posts, comments and moving insights.
    #[arg(long, default_value_t = 0)]
    days_later: u32,
    /// A metric this API version no longer serves (repeatable), e.g. `views`.
    #[arg(long = "retire-metric")]
    retired_metrics: Vec<String>,
    /// A metric refused for a scope, `METRIC:SCOPE` (repeatable), e.g. `reach:REELS`; scopes are
    /// media product types, `STORY` and `ACCOUNT`.
    #[arg(long = "unsupport-metric")]
    unsupported_metrics: Vec<String>,
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
        media_per_account: args.media,
        stories_per_account: args.stories,
        special_errors: !args.no_special_errors,
        days_later: args.days_later,
        media_interval_secs: args.media_interval_secs,
    });
    let options = SandboxOptions {
        token: args.token,
        port: args.port,
        latency: Duration::from_millis(args.latency_ms),
        fault_rate: args.fault_rate,
        fault_seed: args.seed,
        rate_limit: (args.rate_limit_per_sec > 0)
            .then_some(RateLimit { calls: args.rate_limit_per_sec, window: Duration::from_secs(1) }),
        expansion_fails: args.expansion_fails,
        retired_metrics: args.retired_metrics,
        unsupported_metrics: args
            .unsupported_metrics
            .iter()
            .filter_map(|pair| pair.split_once(':').map(|(metric, scope)| (metric.to_owned(), scope.to_owned())))
            .collect(),
        ..SandboxOptions::new(model)
    };
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
