//! Loading a component once and running its verbs, each in a fresh, isolated store.

use crate::bindings::airbyte::source::{sink, types};
use crate::bindings::{SourceConnector, SourceConnectorPre};
use crate::egress::{AllowList, EgressPolicy, Origin, RequestPool};
use crate::engine::{self, CacheOutcome};
use crate::limits::{AbortSignal, GuestClock, LimitExceeded, Limits, MemoryCap};
use crate::messages::MessageSink;
use crate::{Failure, FailureType, LogLevel, StreamStatus};
use serde_json::value::RawValue;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::error::Context as _;
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// A sink shared between the caller and a running component.
pub type SharedSink = Arc<Mutex<dyn MessageSink>>;

/// Per-run policy: who the component may call and what it may use.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Origins the component may call; everything else is refused.
    pub allow: AllowList,
    /// Memory, CPU, time and HTTP limits.
    pub limits: Limits,
    /// Counts the outbound requests the run sent (shared by clones; read it for progress).
    pub requests_sent: Arc<AtomicU64>,
    /// Record every HTTP exchange, or answer from a recording (see [`crate::cassette`]).
    pub tape: Option<crate::cassette::Tape>,
    /// Request slots shared with other runs (a host-wide cap), on top of `limits`' own.
    pub pool: Option<RequestPool>,
}

impl RunOptions {
    /// Allows only the origin of the config's `base_url` (the Graph API by default, over https,
    /// public addresses only), with default limits.
    pub fn for_config(config: &str) -> RunOptions {
        RunOptions { allow: AllowList::for_config(config), ..RunOptions::default() }
    }

    /// Also allows `origin`, whatever its scheme or address (the operator's explicit opt-in).
    pub fn allow_origin(mut self, origin: Origin) -> RunOptions {
        self.allow.explicit.push(origin);
        self
    }
}

/// A failure of the host or a limit, as opposed to a failure the component reported.
#[derive(Debug)]
pub enum HostError {
    /// A resource limit ended the run.
    Limit(LimitExceeded),
    /// The component trapped or could not be instantiated.
    Trap(wasmtime::Error),
    /// The component file could not be read, compiled or linked (before anything ran).
    Load(wasmtime::Error),
    /// The sink could not write (full disk, closed pipe): the guest was stopped at that call.
    Output(String),
}

impl HostError {
    fn classify(error: wasmtime::Error) -> HostError {
        if let Some(limit) = error.downcast_ref::<LimitExceeded>() {
            return HostError::Limit(limit.clone());
        }
        if let Some(OutputFailed(message)) = error.downcast_ref::<OutputFailed>() {
            return HostError::Output(message.clone());
        }
        HostError::Trap(error)
    }

    /// The Airbyte failure to report (always a `system_error`).
    pub fn to_failure(&self) -> Failure {
        let (message, internal) = match self {
            HostError::Limit(limit) => (format!("The connector was stopped: {limit}."), None),
            HostError::Trap(error) => (format!("The connector component failed: {error}"), Some(format!("{error:?}"))),
            HostError::Load(error) => (format!("The connector component could not be loaded: {error:#}"), None),
            HostError::Output(message) => (format!("The sync was stopped: {message}"), None),
        };
        Failure { message, internal_message: internal, failure_type: FailureType::SystemError }
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostError::Limit(limit) => write!(f, "{limit}"),
            HostError::Trap(error) => write!(f, "{error}"),
            HostError::Load(error) => write!(f, "cannot load the component: {error:#}"),
            HostError::Output(message) => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for HostError {}

/// A compiled connector component, ready to instantiate cheaply for each run. Cheap to share:
/// every run gets its own store; runs share only the compiled code.
#[derive(Clone)]
pub struct Connector {
    pre: SourceConnectorPre<HostState>,
}

/// The store data of one run.
struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    egress: EgressPolicy,
    sink: SharedSink,
    memory: MemoryCap,
}

/// Meters the guest's CPU time and stops it past `cap`: the call hook starts and stops a
/// [`GuestClock`] as execution enters and leaves wasm; every epoch tick checks it and yields
/// to the executor (so a spinning guest still lets other tenants and the wall-time timer run),
/// the clock stopped until the guest is resumed.
fn police_cpu(store: &mut Store<HostState>, cap: Option<Duration>) {
    let clock = GuestClock::default();
    let hooked = clock.clone();
    store.call_hook(move |_, hook| {
        if hook.entering_host() {
            hooked.stop();
            // Checked at every host call too, so a short run is held to a cap below one tick.
            if let Some(limit) = cap.filter(|limit| hooked.used() > *limit) {
                return Err(LimitExceeded::Cpu { limit }.into());
            }
        } else {
            hooked.start();
        }
        Ok(())
    });
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if let Some(limit) = cap.filter(|limit| clock.used() > *limit) {
            return Err(LimitExceeded::Cpu { limit }.into());
        }
        clock.stop();
        let resumed = clock.clone();
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                tokio::task::yield_now().await;
                resumed.start();
            }),
        ))
    });
}

/// A running instance plus what the runner needs to police it.
struct Running {
    store: Store<HostState>,
    instance: SourceConnector,
    abort: AbortSignal,
    limits: Limits,
}

fn lock(sink: &SharedSink) -> MutexGuard<'_, dyn MessageSink + 'static> {
    sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Connector {
    /// Compiles the component at `path` (no cache) and links it against the host.
    pub fn from_file(path: &Path) -> wasmtime::Result<Connector> {
        Connector::load(path, None).map(|(connector, _)| connector)
    }

    /// Loads a component from its bytes (the one-file executable carries them), through the
    /// precompiled cache in `cache_dir` if given.
    pub fn load_bytes(bytes: &[u8], cache_dir: Option<&Path>) -> wasmtime::Result<(Connector, CacheOutcome)> {
        let engine = engine::new_engine()?;
        let (component, outcome) = engine::load_component_bytes(&engine, bytes, cache_dir)
            .context("cannot load the connector component carried by this executable")?;
        Ok((Connector::from_component(&engine, &component)?, outcome))
    }

    /// Loads the component at `path`, through the precompiled cache in `cache_dir` if given.
    pub fn load(path: &Path, cache_dir: Option<&Path>) -> wasmtime::Result<(Connector, CacheOutcome)> {
        let engine = engine::new_engine()?;
        let (component, outcome) = engine::load_component(&engine, path, cache_dir)
            .with_context(|| format!("cannot load the connector component {}", path.display()))?;
        Ok((Connector::from_component(&engine, &component)?, outcome))
    }

    fn from_component(engine: &Engine, component: &Component) -> wasmtime::Result<Connector> {
        let mut linker = Linker::<HostState>::new(engine);
        // Full WASI is linked so a Rust std guest instantiates, but every store gets an empty
        // WasiCtx: no preopened directories, no environment, no arguments, no stdio, no sockets.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        // Only the airbyte:source imports are ours; WASI interfaces were linked above.
        types::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        sink::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        let pre = SourceConnectorPre::new(linker.instantiate_pre(component)?)?;
        Ok(Connector { pre })
    }

    /// A fresh store and instance for one run, with the run's limits and egress policy.
    async fn instantiate(&self, options: &RunOptions, sink: SharedSink) -> Result<Running, HostError> {
        let limits = options.limits.clone();
        let abort = AbortSignal::default();
        let denial_sink = sink.clone();
        let egress = EgressPolicy::new(
            options.allow.clone(),
            limits.clone(),
            abort.clone(),
            options.requests_sent.clone(),
            options.tape.clone(),
            Arc::new(move |reason: &str| lock(&denial_sink).log(LogLevel::Warn, reason)),
            options.pool.clone(),
        );
        let state = HostState {
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            egress,
            sink,
            memory: MemoryCap { limit: limits.memory_bytes },
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.memory);
        police_cpu(&mut store, limits.cpu_time);
        let instance = self.pre.instantiate_async(&mut store).await.map_err(HostError::classify)?;
        Ok(Running { store, instance, abort, limits })
    }

    /// The SPEC payload (JSON text).
    pub async fn spec(&self, sink: SharedSink) -> Result<String, HostError> {
        let Running { mut store, instance, abort, limits } = self.instantiate(&RunOptions::default(), sink).await?;
        guarded(instance.airbyte_source_source().call_spec(&mut store), &abort, &limits).await
    }

    /// `check`: `Ok(Ok(()))` is SUCCEEDED, `Ok(Err(failure))` is FAILED; `Err` is a host failure.
    pub async fn check(
        &self,
        options: &RunOptions,
        sink: SharedSink,
        config: &str,
    ) -> Result<Result<(), Failure>, HostError> {
        let Running { mut store, instance, abort, limits } = self.instantiate(options, sink).await?;
        guarded(instance.airbyte_source_source().call_check(&mut store, config), &abort, &limits).await
    }

    /// `discover`: the catalog JSON text, or the guest's failure.
    pub async fn discover(
        &self,
        options: &RunOptions,
        sink: SharedSink,
        config: &str,
    ) -> Result<Result<String, Failure>, HostError> {
        let Running { mut store, instance, abort, limits } = self.instantiate(options, sink).await?;
        guarded(instance.airbyte_source_source().call_discover(&mut store, config), &abort, &limits).await
    }

    /// `read`: messages go to `sink`; the result summarises failed streams.
    pub async fn read(
        &self,
        options: &RunOptions,
        sink: SharedSink,
        config: &str,
        catalog: &str,
        state: Option<&str>,
    ) -> Result<Result<(), Failure>, HostError> {
        let Running { mut store, instance, abort, limits } = self.instantiate(options, sink).await?;
        let budgets = limits.budgets();
        let read = instance.airbyte_source_source().call_read(&mut store, config, catalog, state, budgets);
        guarded(read, &abort, &limits).await
    }
}

/// Runs a guest call until it returns, a host-side limit trips, or the wall-time cap passes.
/// Dropping the call future abandons the instance, which is never used again.
async fn guarded<T>(
    call: impl Future<Output = wasmtime::Result<T>>,
    abort: &AbortSignal,
    limits: &Limits,
) -> Result<T, HostError> {
    let deadline = async {
        match limits.wall_time {
            Some(limit) => {
                tokio::time::sleep(limit).await;
                LimitExceeded::WallTime { limit }
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        result = call => {
            // A host-side limit that tripped while the guest still returned wins: the run was not whole.
            if let Some(limit) = abort.triggered_now() {
                return Err(HostError::Limit(limit));
            }
            result.map_err(HostError::classify)
        }
        limit = abort.triggered() => Err(HostError::Limit(limit)),
        limit = deadline => Err(HostError::Limit(limit)),
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.egress }
    }
}

/// A guest-supplied JSON text, accepted only if it is a JSON object that readers can load (no
/// deeper than [`airbyte_messages::depth::MAX_DEPTH`]).
fn json_object(text: String) -> Option<Box<RawValue>> {
    if airbyte_messages::depth::nests_deeper_than(text.as_bytes(), airbyte_messages::depth::MAX_DEPTH) {
        return None;
    }
    let raw = RawValue::from_string(text).ok()?;
    raw.get().trim_start().starts_with('{').then_some(raw)
}

impl types::Host for HostState {}

/// The sink's first write failure, as the trap that stops the guest.
fn written(sink: &SharedSink) -> wasmtime::Result<()> {
    match lock(sink).write_failure() {
        Some(message) => Err(wasmtime::Error::new(OutputFailed(message))),
        None => Ok(()),
    }
}

impl sink::Host for HostState {
    fn record_emitted(&mut self, stream_name: String, data: String) -> wasmtime::Result<()> {
        match json_object(data) {
            Some(data) => lock(&self.sink).record(&stream_name, &data),
            None => lock(&self.sink).log(
                LogLevel::Error,
                &format!(
                    "The connector emitted a {stream_name} record that is not a JSON object readers can load; dropped."
                ),
            ),
        }
        written(&self.sink)
    }

    fn state(&mut self, stream_name: String, stream_state: String, record_count: u64) -> wasmtime::Result<()> {
        match json_object(stream_state) {
            Some(state) => lock(&self.sink).state(&stream_name, &state, record_count),
            None => lock(&self.sink).log(
                LogLevel::Error,
                &format!("The connector emitted a {stream_name} state that is not a JSON object; ignored."),
            ),
        }
        written(&self.sink)
    }

    fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        lock(&self.sink).log(level, &message);
        written(&self.sink)
    }

    fn report_status(
        &mut self,
        stream_name: String,
        status: StreamStatus,
        rate_limited_until: Option<u64>,
    ) -> wasmtime::Result<()> {
        lock(&self.sink).stream_status(&stream_name, status, rate_limited_until);
        written(&self.sink)
    }

    fn error(&mut self, stream_name: Option<String>, failure: Failure) -> wasmtime::Result<()> {
        lock(&self.sink).error(stream_name.as_deref(), &failure);
        written(&self.sink)
    }

    fn config_updated(&mut self, config: String) -> wasmtime::Result<()> {
        match json_object(config) {
            Some(config) => lock(&self.sink).config_updated(&config),
            None => lock(&self.sink)
                .log(LogLevel::Error, "The connector handed back a config that is not a JSON object; ignored."),
        }
        written(&self.sink)
    }
}

/// The output could not be written: the trap a sink call raises.
#[derive(Debug)]
pub struct OutputFailed(pub String);

impl std::fmt::Display for OutputFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OutputFailed {}
