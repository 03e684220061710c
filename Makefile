# The two commands of the quick start:
#   make run    install what is missing, build, start the whole platform
#   make test   install what is missing, build, run every test (plain and
#               under AddressSanitizer + UndefinedBehaviorSanitizer)
# Everything real is in meson; this file only installs and sequences.

PACKAGES := gcc make pkg-config python3 meson ninja-build \
	protobuf-c-compiler libprotobuf-c-dev libnng-dev librocksdb-dev \
	libyaml-dev libjansson-dev libssl-dev libcriterion-dev \
	wabt clang lld wasi-libc libclang-rt-14-dev-wasm32 \
	json-schema-test-suite clang-format curl iproute2 procps openssl gdb

PLAIN := build/plain
ASAN  := build/asan
SUDO  := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build build-asan test test-plain run bench format format-check clean

all: build

deps:
	@missing=""; for p in $(PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' \
			|| missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing missing packages:$$missing"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(PLAIN)/build.ninja:
	meson setup $(PLAIN) --buildtype=debugoptimized

$(ASAN)/build.ninja:
	meson setup $(ASAN) --buildtype=debug -Db_sanitize=address,undefined -Dbench=false

build: deps $(PLAIN)/build.ninja
	meson compile -C $(PLAIN)

build-asan: deps $(ASAN)/build.ninja
	meson compile -C $(ASAN)

test: build build-asan
	python3 tools/testsuite.py $(PLAIN) $(ASAN)

test-plain: build
	python3 tools/testsuite.py $(PLAIN)

run: build
	tools/run.sh $(PLAIN)

bench: build
	tools/bench.sh $(PLAIN)

format:
	tools/check-format.sh --fix

format-check:
	tools/check-format.sh

clean:
	rm -rf build
