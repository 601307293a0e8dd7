# model-compose: build, run and test. `make run` and `make test` install what is missing first.
SHELL := /bin/bash
TOOLS_DIR := $(CURDIR)/.tools
export PATH := $(TOOLS_DIR)/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
# cargo-leptos builds debug with this flag; cargo test and clippy must match it, or every
# dependency is compiled a second time.
DEBUG_RUSTFLAGS := --cfg erase_components
SEED := examples/openai-chat-completions-stream
DEBUG_BIN := $(CURDIR)/target/debug/model-compose
RELEASE_BIN := $(CURDIR)/target/release/model-compose

.PHONY: setup build release run test lint unit e2e test-release bench install clean

## setup: install the missing tools (wasm target, cargo-leptos, wasm-bindgen, wasm-opt, Chromium, npm packages)
setup:
	@bash scripts/setup.sh

# The site (WASM, JS, CSS) is built before the server, which embeds it.
## build: debug build of the site and the server
build: setup
	cargo leptos build --frontend-only
	cargo leptos build --server-only

## release: optimised build of the site and the server (target/release/model-compose)
release: setup
	cargo leptos build --release --frontend-only
	cargo leptos build --release --server-only

## run: release build, then `model-compose up` in the seed example's directory
run: release
	cd $(SEED) && $(RELEASE_BIN) up

## install: put the release binary in ~/.cargo/bin (uses the site built by `make release`)
install: release
	cargo install --path . --locked

## test: every test: formatting, lints, unit and integration tests, then Playwright end to end
test: build lint unit e2e

lint:
	cargo fmt --all -- --check
	RUSTFLAGS="$(DEBUG_RUSTFLAGS)" cargo clippy --all-targets --features ssr -- -D warnings
	RUSTFLAGS="$(DEBUG_RUSTFLAGS)" cargo clippy --lib --target wasm32-unknown-unknown \
		--no-default-features --features hydrate -- -D warnings

unit:
	RUSTFLAGS="$(DEBUG_RUSTFLAGS)" cargo test --features ssr

e2e:
	cd end2end && MODEL_COMPOSE_BIN=$(DEBUG_BIN) npx playwright test

## test-release: the Playwright suite against the release binary (embedded, optimised site)
test-release: release
	cd end2end && MODEL_COMPOSE_BIN=$(RELEASE_BIN) npx playwright test

## bench: release build, then the load benchmark (server vs the upstream alone, side by side)
bench: release
	cargo bench --bench load -- $(RELEASE_BIN)

clean:
	cargo clean
	rm -rf $(TOOLS_DIR) end2end/node_modules end2end/test-results
