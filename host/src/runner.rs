//! Loading a component once and running its verbs, each in a fresh, isolated store.

use crate::bindings::airbyte::source::{sink, types};
use crate::bindings::{SourceConnector, SourceConnectorPre};
use crate::egress::{EgressPolicy, Origin};
use crate::messages::MessageSink;
use crate::{Failure, LogLevel, StreamStatus};
use serde_json::value::RawValue;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::error::Context as _;
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// A sink shared between the caller and a running component.
pub type SharedSink = Arc<Mutex<dyn MessageSink>>;

/// Per-run policy.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Origins the component may call; everything else is refused.
    pub allowed_origins: Vec<Origin>,
}

impl RunOptions {
    /// Allows only the origin of the config's `base_url` (the Graph API by default).
    pub fn for_config(config: &str) -> RunOptions {
        RunOptions { allowed_origins: Origin::of_config(config).into_iter().collect() }
    }
}

/// A compiled connector component, ready to instantiate cheaply for each run.
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
}

fn lock(sink: &SharedSink) -> MutexGuard<'_, dyn MessageSink + 'static> {
    sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Connector {
    /// Compiles the component at `path` and links it against the host.
    pub fn from_file(path: &Path) -> wasmtime::Result<Connector> {
        let engine = Engine::new(&wasmtime::Config::new())?;
        let component = Component::from_file(&engine, path)
            .with_context(|| format!("cannot load the connector component {}", path.display()))?;
        Connector::from_component(&engine, &component)
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

    async fn instantiate(
        &self,
        options: &RunOptions,
        sink: SharedSink,
    ) -> wasmtime::Result<(Store<HostState>, SourceConnector)> {
        let denial_sink = sink.clone();
        let egress = EgressPolicy::new(
            options.allowed_origins.clone(),
            Arc::new(move |reason: &str| lock(&denial_sink).log(LogLevel::Warn, reason)),
        );
        let state = HostState {
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            egress,
            sink,
        };
        let mut store = Store::new(self.pre.engine(), state);
        let instance = self.pre.instantiate_async(&mut store).await?;
        Ok((store, instance))
    }

    /// The SPEC payload (JSON text).
    pub async fn spec(&self, sink: SharedSink) -> wasmtime::Result<String> {
        let (mut store, instance) = self.instantiate(&RunOptions::default(), sink).await?;
        instance.airbyte_source_source().call_spec(&mut store).await
    }

    /// `check`: `Ok(Ok(()))` is SUCCEEDED, `Ok(Err(failure))` is FAILED; `Err` is a host failure.
    pub async fn check(
        &self,
        options: &RunOptions,
        sink: SharedSink,
        config: &str,
    ) -> wasmtime::Result<Result<(), Failure>> {
        let (mut store, instance) = self.instantiate(options, sink).await?;
        instance.airbyte_source_source().call_check(&mut store, config).await
    }

    /// `discover`: the catalog JSON text, or the guest's failure.
    pub async fn discover(
        &self,
        options: &RunOptions,
        sink: SharedSink,
        config: &str,
    ) -> wasmtime::Result<Result<String, Failure>> {
        let (mut store, instance) = self.instantiate(options, sink).await?;
        instance.airbyte_source_source().call_discover(&mut store, config).await
    }

    /// `read`: messages go to `sink`; the result summarises failed streams.
    pub async fn read(
        &self,
        options: &RunOptions,
        sink: SharedSink,
        config: &str,
        catalog: &str,
        state: Option<&str>,
    ) -> wasmtime::Result<Result<(), Failure>> {
        let (mut store, instance) = self.instantiate(options, sink).await?;
        instance.airbyte_source_source().call_read(&mut store, config, catalog, state).await
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

/// A guest-supplied JSON text, accepted only if it is a JSON object.
fn json_object(text: String) -> Option<Box<RawValue>> {
    let raw = RawValue::from_string(text).ok()?;
    raw.get().trim_start().starts_with('{').then_some(raw)
}

impl types::Host for HostState {}

impl sink::Host for HostState {
    fn record_emitted(&mut self, stream_name: String, data: String) {
        match json_object(data) {
            Some(data) => lock(&self.sink).record(&stream_name, &data),
            None => lock(&self.sink).log(
                LogLevel::Error,
                &format!("The connector emitted a {stream_name} record that is not a JSON object; dropped."),
            ),
        }
    }

    fn state(&mut self, stream_name: String, stream_state: String, record_count: u64) {
        match json_object(stream_state) {
            Some(state) => lock(&self.sink).state(&stream_name, &state, record_count),
            None => lock(&self.sink).log(
                LogLevel::Error,
                &format!("The connector emitted a {stream_name} state that is not a JSON object; ignored."),
            ),
        }
    }

    fn log(&mut self, level: LogLevel, message: String) {
        lock(&self.sink).log(level, &message);
    }

    fn report_status(&mut self, stream_name: String, status: StreamStatus, rate_limited_until: Option<u64>) {
        lock(&self.sink).stream_status(&stream_name, status, rate_limited_until);
    }

    fn error(&mut self, stream_name: Option<String>, failure: Failure) {
        lock(&self.sink).error(stream_name.as_deref(), &failure);
    }
}
