//! End-to-end tests: the release host runs the real component against the real sandbox.
//! One binary (like wasmtime's `tests/all`), grouped by topic; the component is built once by
//! `make build`, never by a test.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod account_selection;
mod architecture;
mod catalog_rules;
mod commands;
mod comments_and_days;
mod concurrency;
mod corpus;
mod daily_totals;
mod durability;
mod egress;
mod failure_classes;
mod hostile_input;
mod incremental;
mod instagram_login;
mod limits;
mod optimizations;
mod read_accounts;
mod registry;
mod resilience;
mod schemas;
mod streams;
mod stress;
mod tenants;
