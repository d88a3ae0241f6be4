# Two commands do everything on a fresh machine: `make run` and `make test`.
# Every cargo call builds the same package set (--workspace) in release, so the slow wasmtime
# build happens once and all later calls are incremental.

CARGO       ?= cargo
WASM_TARGET := wasm32-wasip2
COMPONENT   := target/$(WASM_TARGET)/release/instagram_connector.wasm
HOST        := target/release/source-instagram-host

PYTHON      ?= python3
PY_VENVS    := target/py

.PHONY: build wasm-target component host test-components python-venvs run test image test-image bench lint clean

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
test: build test-components python-venvs
	rm -rf target/e2e-transcripts
	$(CARGO) test --release --locked --workspace
	cd tests/python && ../../$(PY_VENVS)/protocol/bin/python -m pytest -p no:cacheprovider -q -s test_standard.py test_transcripts.py
	cd tests/python && ../../$(PY_VENVS)/pyairbyte/bin/python -m pytest -p no:cacheprovider -q test_pyairbyte.py

# The Airbyte source image (podman, FROM scratch; installs podman with apt-get when missing),
# and its smoke test: spec, check and a read inside the container against the sandbox.
image: build
	scripts/image.sh

test-image: image python-venvs
	cd tests/python && ../../$(PY_VENVS)/protocol/bin/python -m pytest -p no:cacheprovider -q -s test_image.py

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
