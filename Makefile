# Two commands do everything on a fresh machine: `make run` and `make test`.
# Every cargo call builds the same package set (--workspace) in release, so the slow wasmtime
# build happens once and all later calls are incremental.

CARGO       ?= cargo
WASM_TARGET := wasm32-wasip2
COMPONENT   := target/$(WASM_TARGET)/release/instagram_connector.wasm
HOST        := target/release/source-instagram-host

.PHONY: build wasm-target component host test-components run test bench lint clean

build: component host

wasm-target:
	@rustup target list --installed 2>/dev/null | grep -qx '$(WASM_TARGET)' || rustup target add $(WASM_TARGET)

component: wasm-target
	$(CARGO) build --release --locked -p instagram-connector --target $(WASM_TARGET)

host:
	$(CARGO) build --release --locked --workspace

# Builds, starts the sandbox, runs check and a read of every supported stream, prints a summary.
run: build
	scripts/demo.sh

# Misbehaving components the host tests must contain; built for the tests, never shipped.
test-components: wasm-target
	$(CARGO) build --release --locked -p hostile-component --target $(WASM_TARGET)

test: build test-components
	$(CARGO) test --release --locked --workspace

# Start-up and multi-tenant figures (see tests/bench); prints markdown tables.
bench: build test-components
	$(CARGO) run --release --locked -p e2e-tests --bin bench

lint: wasm-target
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --locked --workspace --all-targets -- -D warnings
	$(CARGO) clippy --release --locked -p instagram-connector -p hostile-component --target $(WASM_TARGET) -- -D warnings

clean:
	$(CARGO) clean
	rm -rf out
