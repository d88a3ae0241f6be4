//! The Airbyte source command line (`spec`, `check --config F`, `discover --config F`,
//! `read --config F --catalog F [--state F]`), for the component's command mode on stock hosts.
//! Parsing is plain Rust so it is unit-tested natively; reading the named files and running the
//! verb is the component glue's job.

use crate::protocol::Failure;
use std::path::PathBuf;

/// One parsed invocation: the verb and the files it names.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    Spec,
    Check { config: PathBuf },
    Discover { config: PathBuf },
    Read { config: PathBuf, catalog: PathBuf, state: Option<PathBuf> },
}

const USAGE: &str =
    "usage: spec | check --config FILE | discover --config FILE | read --config FILE --catalog FILE [--state FILE]";

impl Invocation {
    /// Parses the arguments after the program name.
    pub fn parse(args: &[String]) -> Result<Invocation, Failure> {
        let (verb, rest) = args.split_first().ok_or_else(|| Failure::config(USAGE))?;
        let (mut config, mut catalog, mut state) = (None, None, None);
        let mut flags = rest.iter();
        while let Some(flag) = flags.next() {
            let slot = match flag.as_str() {
                "--config" => &mut config,
                "--catalog" => &mut catalog,
                "--state" => &mut state,
                other => return Err(Failure::config(format!("Unknown argument `{other}`; {USAGE}"))),
            };
            let value = flags.next().ok_or_else(|| Failure::config(format!("`{flag}` needs a file; {USAGE}")))?;
            *slot = Some(PathBuf::from(value));
        }
        let required = |value: Option<PathBuf>, flag: &str| {
            value.ok_or_else(|| Failure::config(format!("`{verb}` needs `{flag} FILE`; {USAGE}")))
        };
        let given = [("--config", config.is_some()), ("--catalog", catalog.is_some()), ("--state", state.is_some())];
        let only = |allowed: &[&str]| match given.iter().find(|(flag, set)| *set && !allowed.contains(flag)) {
            Some((flag, _)) => Err(Failure::config(format!("`{verb}` takes no `{flag}`; {USAGE}"))),
            None => Ok(()),
        };
        match verb.as_str() {
            "spec" => only(&[]).map(|()| Invocation::Spec),
            "check" => only(&["--config"]).and(required(config, "--config")).map(|config| Invocation::Check { config }),
            "discover" => {
                only(&["--config"]).and(required(config, "--config")).map(|config| Invocation::Discover { config })
            }
            "read" => Ok(Invocation::Read {
                config: required(config, "--config")?,
                catalog: required(catalog, "--catalog")?,
                state,
            }),
            _ => Err(Failure::config(format!("Unknown command `{verb}`; {USAGE}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::FailureType;

    fn parse(line: &str) -> Result<Invocation, Failure> {
        Invocation::parse(&line.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
    }

    #[test]
    fn parses_the_four_verbs() {
        assert_eq!(parse("spec"), Ok(Invocation::Spec));
        assert_eq!(parse("check --config c.json"), Ok(Invocation::Check { config: "c.json".into() }));
        assert_eq!(parse("discover --config c"), Ok(Invocation::Discover { config: "c".into() }));
        assert_eq!(
            parse("read --catalog k --config c --state s"),
            Ok(Invocation::Read { config: "c".into(), catalog: "k".into(), state: Some("s".into()) })
        );
        assert_eq!(
            parse("read --config c --catalog k"),
            Ok(Invocation::Read { config: "c".into(), catalog: "k".into(), state: None })
        );
    }

    #[test]
    fn bad_command_lines_are_config_errors_with_the_usage() {
        for line in [
            "",
            "sync",
            "check",
            "check --config",
            "read --config c",
            "spec --config c",
            "check --config c --state s",
            "read --config c --catalog k --verbose",
        ] {
            let failure = parse(line).expect_err(line);
            assert_eq!(failure.failure_type, FailureType::ConfigError, "{line}");
            assert!(failure.message.contains("usage:"), "{line}: {}", failure.message);
        }
    }
}
