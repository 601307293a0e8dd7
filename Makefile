# model-compose: build, run and test. `make run` and `make test` install what is missing first.
#
# Nothing is built twice. The site (WASM, JS, CSS: cargo-leptos) is rebuilt only when a file it
# is made from changed: cargo writes, beside each WASM it builds, the list of source files it
# read (a `.d` file in make's own syntax), and make compares their times with the site's. The
# server, which embeds the site, is built by plain cargo with the same flags as clippy and the
# tests, so that each of them finds the others' work done.
SHELL := /bin/bash
TOOLS_DIR := $(CURDIR)/.tools
export PATH := $(TOOLS_DIR)/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
SEED := examples/openai-chat-completions-stream
DEBUG_BIN := $(CURDIR)/target/debug/model-compose
RELEASE_BIN := $(CURDIR)/target/release/model-compose
DEBUG_SITE := target/site/debug/pkg/model-compose.wasm
RELEASE_SITE := target/site/release/pkg/model-compose.wasm
FRONT := target/front/wasm32-unknown-unknown

# What every site is made from besides Rust sources, and the Rust sources cargo says the WASM
# of each kind was built from (none before the first build: then the site is missing anyway).
SITE_INPUTS := Cargo.toml Cargo.lock $(wildcard crates/*/Cargo.toml) .cargo/config.toml \
	style/main.css $(wildcard public/*)
sources_of = $(wildcard $(if $(wildcard $(1)),$(shell sed -e 's/^[^:]*://' $(1))))

.PHONY: setup build release run test lint unit e2e test-release screenshots compat bench bench-original bench-instructions bench-traces install clean

## setup: install the missing tools (wasm target, cargo-leptos, wasm-bindgen, wasm-opt, Chromium, npm packages)
setup:
	@bash scripts/setup.sh

$(DEBUG_SITE): $(SITE_INPUTS) $(call sources_of,$(FRONT)/debug/model_compose.d) | setup
	LEPTOS_SITE_ROOT=target/site/debug cargo leptos build --frontend-only

$(RELEASE_SITE): $(SITE_INPUTS) $(call sources_of,$(FRONT)/wasm-release/model_compose.d) | setup
	LEPTOS_SITE_ROOT=target/site/release cargo leptos build --release --frontend-only --precompress
	find target/site/release -type f ! -name '*.br' ! -name '*.gz' -exec gzip -9 -n -k -f {} +

## build: debug build of the site, then of the server that embeds it (and of the tests:
## building them with it puts every dependency in the same feature set, so that `cargo test`
## and clippy reuse the server's build instead of compiling it again)
build: $(DEBUG_SITE) | setup
	cargo build --locked --workspace --all-targets

## release: optimised build of the site and the server (target/release/model-compose)
release: $(RELEASE_SITE) | setup
	cargo build --locked --release --bin model-compose

## run: release build, then `model-compose up` in the seed example's directory
run: release
	cd $(SEED) && $(RELEASE_BIN) up

## install: put the release binary in ~/.cargo/bin (uses the site built by `make release`)
install: release
	cargo install --path . --locked

## test: every test: formatting, lints, unit and integration tests, then Playwright end to end
test: build lint unit e2e

lint: $(DEBUG_SITE) | setup
	cargo fmt --all -- --check
	cargo clippy --locked --workspace --all-targets -- -D warnings
	cargo clippy --locked -p model-compose --lib \
		--target wasm32-unknown-unknown --no-default-features --features hydrate -- -D warnings

unit: build
	cargo test --locked --workspace

e2e: build
	cd end2end && MODEL_COMPOSE_BIN=$(DEBUG_BIN) npx playwright test

## test-release: the Playwright suite against the release binary (embedded, optimised site)
test-release: release
	cd end2end && MODEL_COMPOSE_BIN=$(RELEASE_BIN) npx playwright test

## screenshots: the README's pictures (docs/ui-*.png), of the release build with a mock model
screenshots: release
	cd end2end && MODEL_COMPOSE_BIN=$(RELEASE_BIN) npx playwright test --config screenshots.config.ts

## bench-original: the no-delay benchmark against the original model-compose 0.4.120 (installed
## from PyPI into .tools/original), then the paced one with this build and the original side by
## side in one run (100 and 1,000 streams), for the figures in docs/benchmarks.md
bench-original: release
	@bash scripts/original.sh
	cargo bench --locked --bench load -- --original $(TOOLS_DIR)/original/bin/model-compose
	cargo bench --locked --bench paced -- $(RELEASE_BIN) --levels 100,1000 \
		--original $(TOOLS_DIR)/original/bin/model-compose

## compat: the original's own http-client examples, unchanged, against provider mocks
## (ORIGINAL=<checkout or git directory of hanyeol/model-compose>)
compat:
	@bash scripts/compat.sh "$(ORIGINAL)"

## bench: release build, then the load benchmarks (server vs the upstream alone, side by side):
## no-delay saturation, then paced streams (100, 1,000 and 5,000 at once, tokens 50 ms apart),
## then what the workflow engine adds per job (chains and a for-each of 1,000 jobs), what
## an agent adds per iteration, what the OpenAI-compatible endpoint adds per request, and what a
## tracer adds per streamed token
bench: release
	cargo bench --locked --bench load -- $(RELEASE_BIN)
	cargo bench --locked --bench paced -- $(RELEASE_BIN)
	cargo bench --locked --bench jobs -- $(RELEASE_BIN)
	cargo bench --locked --bench agents -- $(RELEASE_BIN)
	cargo bench --locked --bench doors -- $(RELEASE_BIN)
	bash scripts/trace-cost.sh $(RELEASE_BIN)

## bench-instructions: the server's instructions per streamed token (callgrind: within a few
## per cent from run to run, where CPU time is not); BEFORE=<binary> counts that one too, for a
## before/after; REPEAT=<n> counts each n times in turns and prints their medians;
## CONFIG=<file> EVENTS=<n> serve another config (benches/configs/agent-stream.yml: an agent);
## TOKENS=5 EVENTS=5 STREAMS=50: what a run costs besides its tokens
bench-instructions: release
	CONFIG=$(CONFIG) EVENTS=$(EVENTS) TOKENS=$(TOKENS) STREAMS=$(STREAMS) REPEAT=$(REPEAT) bash scripts/instructions.sh $(BEFORE) $(RELEASE_BIN)

## bench-traces: what a tracer adds per streamed token (callgrind, the seed with and without a
## `tracer:`, ROUNDS=3 times each; goal +5 % at most)
bench-traces: release
	ROUNDS=$(or $(ROUNDS),3) bash scripts/trace-cost.sh $(RELEASE_BIN)

clean:
	cargo clean
	rm -rf $(TOOLS_DIR) end2end/node_modules end2end/test-results
