# Two commands do everything on a fresh machine: `make run` and `make test`.
# Every cargo call builds the same package set (--workspace) in release, so the slow wasmtime
# build happens once and all later calls are incremental.

CARGO       ?= cargo
WASM_TARGET := wasm32-wasip2
# WebAssembly builds have a target directory of their own (see tests/build.rs, which builds the
# components the tests run into the same place whenever cargo builds the workspace).
GUEST_CARGO := CARGO_TARGET_DIR=target/guests $(CARGO)
WASM_OUT    := target/guests/$(WASM_TARGET)/release
COMPONENT   := $(WASM_OUT)/instagram_connector.wasm
HOST        := target/release/source-instagram-host

PYTHON      ?= python3
PY_VENVS    := target/py
TOOLS       := target/tools/bin
CLI_COMPONENT := $(WASM_OUT)/connector-cli.wasm

.PHONY: build wasm-target component host onefile wheel python-venvs run test image test-image cli-component node-host portability bench profile lint clean

build: component host

wasm-target:
	@rustup target list --installed 2>/dev/null | grep -qx '$(WASM_TARGET)' || rustup target add $(WASM_TARGET)

component: wasm-target
	$(GUEST_CARGO) build --release --locked -p instagram-connector --target $(WASM_TARGET)

# The workspace: the host, the sandbox, the test harness (whose build.rs also builds the
# hostile test component, never shipped).
host: wasm-target
	$(CARGO) build --release --locked --workspace

# The one-file connector: the host with the component inside (target/release/source-instagram).
onefile: component
	SOURCE_INSTAGRAM_EMBED=$(abspath $(COMPONENT)) $(CARGO) build --release --locked -p source-instagram --features embedded

# The Python wheel (maturin, `bindings = "bin"`): its console command `source-instagram` is the
# one-file connector; the version is the crate's. Written to dist/.
wheel: component $(PY_VENVS)/wheel/installed
	rm -rf dist
	SOURCE_INSTAGRAM_EMBED=$(abspath $(COMPONENT)) $(PY_VENVS)/wheel/bin/maturin build --release --locked \
	  -m host/onefile/Cargo.toml -o dist --quiet

# Builds, starts the sandbox, runs check and a read of every supported stream, prints a summary.
run: build
	tests/demo.sh

# Python venvs with pinned packages (official Airbyte protocol models; PyAirbyte), made once
# under target/ and remade only when their requirements file changes.
$(PY_VENVS)/%/installed: tests/python/requirements-%.txt
	rm -rf $(PY_VENVS)/$*
	$(PYTHON) -m venv $(PY_VENVS)/$*
	$(PY_VENVS)/$*/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

python-venvs: $(PY_VENVS)/protocol/installed $(PY_VENVS)/pyairbyte/installed

# Rust unit and e2e tests (which keep every stdout as a transcript), then with code nobody here
# wrote: the Airbyte standard checks and the transcripts under the official protocol models,
# and PyAirbyte syncing into DuckDB.
test: build python-venvs wheel
	rm -rf target/e2e-transcripts
	$(CARGO) test --release --locked --workspace
	cd tests/python && ../../$(PY_VENVS)/protocol/bin/python -m pytest -p no:cacheprovider -q -s test_standard.py test_transcripts.py
	cd tests/python && ../../$(PY_VENVS)/pyairbyte/bin/python -m pytest -p no:cacheprovider -q test_pyairbyte.py test_install.py

# The Airbyte source image (podman, FROM scratch; installs podman with apt-get when missing),
# and its smoke test: spec, check and a read inside the container against the sandbox.
image: build
	host/image/build.sh

# Then Airbyte's own standard suite (airbyte-cdk's DockerConnectorTestSuite, unchanged) against
# the same image, through a `docker` that is podman (tests/cdk/source-instagram/).
test-image: image python-venvs $(PY_VENVS)/cdk/installed
	cd tests/python && ../../$(PY_VENVS)/protocol/bin/python -m pytest -p no:cacheprovider -q -s test_image.py
	cd tests/python && ../../$(PY_VENVS)/pyairbyte/bin/python -m pytest -p no:cacheprovider -q test_pyairbyte_image.py
	cd tests/cdk/source-instagram && ../../../$(PY_VENVS)/cdk/bin/python -m pytest -p no:cacheprovider -q -rs \
	  --connector-image=localhost/$$(sed -n 's/^  dockerRepository: //p' metadata.yaml):$$(sed -n 's/^  dockerImageTag: //p' metadata.yaml) \
	  --read-from-streams=all

# Stock tools for the portability matrix, installed once from crates.io under target/tools
# (wasmtime-cli with only what `wasmtime run -S http` needs; wac without its registry client).
$(TOOLS)/wasmtime:
	$(CARGO) install --locked --quiet --root target/tools wasmtime-cli@48.0.8 --no-default-features \
	  --features run,cranelift,component-model,wasi-http,parallel-compilation

$(TOOLS)/wac:
	$(CARGO) install --locked --quiet --root target/tools wac-cli@0.12.0 --no-default-features --features wit

# The same component with the stdout-sink component plugged into its `sink` import, for hosts
# that cannot supply one (stock `wasmtime run`). The component itself is not changed.
cli-component: component $(TOOLS)/wac
	$(GUEST_CARGO) build --release --locked -p stdout-sink --target $(WASM_TARGET)
	$(TOOLS)/wac plug --plug $(WASM_OUT)/stdout_sink.wasm $(COMPONENT) -o $(CLI_COMPONENT)

# Node.js host: jco from the committed lock file, the component transpiled to tests/node/out.
node-host: component
	@if command -v npm >/dev/null && command -v node >/dev/null; then \
	  cd tests/node && npm ci --no-audit --no-fund --silent && \
	  npx jco transpile ../../$(COMPONENT) -o out --map 'airbyte:source/sink=../sink.js' --quiet; \
	else echo "node-host: skipped, node/npm are not installed"; rm -rf tests/node/out; fi

# One full sync on every host (our CLI, the embedding example, `wasmtime run`, Node); prints the
# matrix and fails unless every host gives the same records and states.
portability: build cli-component node-host python-venvs $(TOOLS)/wasmtime
	$(CARGO) build --release --locked -p instagram-host --example sync_from_sandbox
	cd tests/python && ../../$(PY_VENVS)/protocol/bin/python -m pytest -p no:cacheprovider -q -s test_portability.py

# Start-up and multi-tenant figures (see tests/bench); prints markdown tables.
bench: build
	$(CARGO) run --release --locked -p e2e-tests --bin bench

# Where a Benchmark L sync spends its CPU, guest functions named (needs perf).
profile: build
	tests/bench/profile.sh

lint: wasm-target
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --locked --workspace --all-targets -- -D warnings
	$(GUEST_CARGO) clippy --release --locked -p instagram-connector -p hostile-component -p stdout-sink --target $(WASM_TARGET) -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --release --locked --no-deps --workspace

clean:
	$(CARGO) clean
	rm -rf out
