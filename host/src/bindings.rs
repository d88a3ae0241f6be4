//! Host-side bindings of `wit/source.wit`. WASI interfaces map onto wasmtime-wasi(-http)'s own
//! implementations; only the `airbyte:source` interfaces are ours to implement.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "source-connector",
    exports: { default: async },
    // A sink that cannot write (full disk, closed pipe) stops the guest at once: its calls trap.
    imports: { "airbyte:source/sink": trappable },
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
});
