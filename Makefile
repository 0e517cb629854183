# The README's two commands: `make demo` and `make test`. Both install what is missing first.
SWIFT ?= swift
export PATH := $(CURDIR)/.tools/venv/bin:$(PATH)

.PHONY: deps build demo test clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release

demo: build
	.build/release/kiln --help

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

clean:
	rm -rf .build out
