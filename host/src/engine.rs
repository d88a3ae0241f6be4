//! The wasmtime engine and the precompiled-component cache.
//!
//! Why a cache: compiling the component takes ~250 ms of Cranelift time on every start, while
//! loading a precompiled artifact takes under a millisecond. The cache key covers everything that
//! makes an artifact loadable: the component's bytes and the engine's compatibility hash (wasmtime
//! version, target and every setting that shapes compiled code, epoch interruption included). wasmtime checks the
//! same again when it loads an artifact, so a stale or foreign file is recompiled, never run.
//!
//! Why hand-made rather than wasmtime's `cache` feature: that feature is configured through its
//! own TOML file and directory, trims on a background thread, and works per compiled module;
//! here the directory is the operator's flag (`--cache-dir`, `SOURCE_INSTAGRAM_CACHE_DIR`,
//! writable or not), one file holds the whole precompiled component (one `deserialize_file` on
//! start), and the key is ours to state. The key is a SHA-256, stable across Rust releases and
//! processes, unlike `DefaultHasher`.

use sha2::{Digest, Sha256};
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

/// How often the engine's epoch advances: the granularity of the guest CPU cap and of a busy
/// guest's yields to other tenants.
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// The engine every run shares: component model, async, epoch interruption on, with a thread
/// that advances the epoch every [`EPOCH_TICK`] while the engine lives. Epochs replace fuel:
/// fuel meters every guest instruction, an epoch check is a load and a compare (Benchmark L:
/// 0.55 s of CPU with fuel, 0.50 s with epochs, 0.42 s with neither). The CPU cap itself is
/// measured by [`crate::limits::GuestClock`].
pub fn new_engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    // `perf` names the compiled guest's functions from /tmp/perf-<pid>.map (see `make profile`).
    if std::env::var_os("SOURCE_INSTAGRAM_PERF_MAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let engine = Engine::new(&config)?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map_err(wasmtime::Error::from)?;
    Ok(engine)
}

/// The default cache directory: `$XDG_CACHE_HOME/instagram-source` or `~/.cache/instagram-source`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("instagram-source"))
}

fn cache_key(engine: &Engine, bytes: &[u8]) -> String {
    use std::hash::Hash;
    // The compatibility hash is only `Hash`: feed it to SHA-256 through a `Hasher` adapter.
    struct Feed(Sha256);
    impl std::hash::Hasher for Feed {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut compatibility = Feed(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut compatibility);
    let component = Sha256::digest(bytes);
    let engine_key = compatibility.0.finalize();
    let hex = |digest: &[u8]| digest.iter().take(16).map(|b| format!("{b:02x}")).collect::<String>();
    format!("{}-{}.cwasm", hex(&component), hex(&engine_key))
}

/// Loads the component at `path`, from `cache_dir` when a matching artifact is there.
pub fn load_component(
    engine: &Engine,
    path: &Path,
    cache_dir: Option<&Path>,
) -> wasmtime::Result<(Component, CacheOutcome)> {
    let bytes = std::fs::read(path)
        .map_err(|e| wasmtime::format_err!("cannot read the connector component {}: {e}", path.display()))?;
    load_component_bytes(engine, &bytes, cache_dir)
}

/// Loads a component from its bytes (one carried inside the executable), from `cache_dir` when a
/// matching artifact is there.
pub fn load_component_bytes(
    engine: &Engine,
    bytes: &[u8],
    cache_dir: Option<&Path>,
) -> wasmtime::Result<(Component, CacheOutcome)> {
    let Some(cache_dir) = cache_dir else {
        return Ok((Component::new(engine, bytes)?, CacheOutcome::Uncached));
    };
    let artifact = cache_dir.join(cache_key(engine, bytes));
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
    let compiled = engine.precompile_component(bytes)?;
    // A cache that cannot be written only costs speed.
    if std::fs::create_dir_all(cache_dir).is_ok() {
        let _ = crate::state_file::write_atomically(&artifact, &compiled);
    }
    // SAFETY: `compiled` was produced by this engine just now.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, &compiled)? };
    Ok((component, CacheOutcome::Compiled))
}
