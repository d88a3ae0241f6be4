//! The wasmtime engine and the precompiled-component cache.
//!
//! Why a cache: compiling the component takes ~250 ms of Cranelift time on every start, while
//! loading a precompiled artifact takes under a millisecond. The cache key covers everything that
//! makes an artifact loadable: the component's bytes and the engine's compatibility hash (wasmtime
//! version, target and every setting that shapes compiled code, fuel included). wasmtime checks the
//! same again when it loads an artifact, so a stale or foreign file is recompiled, never run.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

/// How the component was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Compiled now and stored in the cache.
    Compiled,
    /// Loaded from the cache without compiling.
    Loaded,
    /// Compiled now; no cache directory was given.
    Uncached,
}

/// The engine every run shares: component model, async, fuel metering on.
pub fn new_engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.consume_fuel(true);
    Engine::new(&config)
}

/// The default cache directory: `$XDG_CACHE_HOME/instagram-source` or `~/.cache/instagram-source`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("instagram-source"))
}

fn cache_key(engine: &Engine, bytes: &[u8]) -> String {
    let mut component = DefaultHasher::new();
    bytes.hash(&mut component);
    bytes.len().hash(&mut component);
    let mut compatibility = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compatibility);
    format!("{:016x}-{:016x}.cwasm", component.finish(), compatibility.finish())
}

/// Loads the component at `path`, from `cache_dir` when a matching artifact is there.
pub fn load_component(
    engine: &Engine,
    path: &Path,
    cache_dir: Option<&Path>,
) -> wasmtime::Result<(Component, CacheOutcome)> {
    let bytes = std::fs::read(path)
        .map_err(|e| wasmtime::format_err!("cannot read the connector component {}: {e}", path.display()))?;
    let Some(cache_dir) = cache_dir else {
        return Ok((Component::new(engine, &bytes)?, CacheOutcome::Uncached));
    };
    let artifact = cache_dir.join(cache_key(engine, &bytes));
    if artifact.exists() {
        // SAFETY: the artifact was written by `precompile_component` below into the operator's own
        // cache directory, under a key covering the component bytes and the engine configuration;
        // wasmtime also verifies the engine compatibility header before using it. A directory
        // writable by untrusted users must not be used as the cache.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, &artifact) };
        if let Ok(component) = loaded {
            return Ok((component, CacheOutcome::Loaded));
        }
    }
    let compiled = engine.precompile_component(&bytes)?;
    // A cache that cannot be written only costs speed.
    if std::fs::create_dir_all(cache_dir).is_ok() {
        let _ = crate::state_file::write_atomically(&artifact, &compiled);
    }
    // SAFETY: `compiled` was produced by this engine just now.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, &compiled)? };
    Ok((component, CacheOutcome::Compiled))
}
