# The README's two commands: `make demo` and `make test`. Both install what is missing first.
SWIFT ?= swift
export PATH := $(CURDIR)/.tools/venv/bin:$(PATH)

.PHONY: deps build demo test fuzz kickstarts netinstall-test clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release

# The main job: the default appliance built into a bootable image, then booted to its login prompt.
demo: build
	.build/release/kiln validate Appliances/*.yaml Appliances/*.appl
	@mkdir -p out
	.build/release/kiln preseed Appliances/debian-minimal.yaml -o out/debian-minimal.preseed
	.build/release/kiln build Appliances/debian-minimal.yaml -o out/debian-minimal --format qcow2
	.build/release/kiln test out/debian-minimal/debian-minimal.qcow2 --timeout 600

# Regenerates Kickstarts/ from Appliances/: a kickstart for RPM-family descriptions, else a preseed
# (made from the example apt sources in Kickstarts/example-apt, not this machine's).
kickstarts: build
	@for f in Appliances/*.yaml Appliances/*.appl; do \
	  n=$$(basename "$${f%.*}"); \
	  if .build/release/kiln kickstart "$$f" -o "Kickstarts/$$n.ks" 2>/dev/null; then \
	    rm -f "Kickstarts/$$n.preseed"; echo "Kickstarts/$$n.ks"; \
	  else \
	    .build/release/kiln preseed --apt-root Kickstarts/example-apt "$$f" -o "Kickstarts/$$n.preseed" || exit 1; \
	    rm -f "Kickstarts/$$n.ks"; echo "Kickstarts/$$n.preseed"; \
	  fi; \
	done

# Ends with a plain "N passed, N failed, N skipped"; KILN_REQUIRE_ALL=1 turns every skip into a failure.
test: deps
	$(SWIFT) build --build-tests
	SWIFT=$(SWIFT) scripts/run-tests.sh

# libFuzzer with AddressSanitizer on the disk-image readers and the TFTP and DHCP codecs, FUZZ_SECONDS
# (default 60) per target; crashes go to Tests/Fuzz/crashes/.
fuzz:
	SWIFT=$(SWIFT) scripts/fuzz.sh

# A whole unattended Debian network install from kiln's lab mirror, in a network namespace (root).
netinstall-test: build
	Tests/netinstall.sh

clean:
	rm -rf .build out
