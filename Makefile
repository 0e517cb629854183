# The README's two commands: `make demo` and `make test`. Both install what is missing first.
SWIFT ?= swift
PREFIX ?= /usr/local
export PATH := $(CURDIR)/.tools/venv/bin:$(PATH)

.PHONY: deps build demo test lint arm64-test platform-test repro-test deploy-test fuzz kickstarts netinstall-test install clean

# First the Swift 6 toolchain (scripts/check-swift.sh says where to get it), then Debian packages.
deps:
	@SWIFT="$(SWIFT)" scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release

# The main job: the default appliance built into a bootable image, then booted to its login prompt.
demo: build
	.build/release/kiln validate Appliances/*.yaml Appliances/*.appl
	@mkdir -p out
	.build/release/kiln preseed Appliances/debian-minimal.yaml -o out/debian-minimal.preseed
	.build/release/kiln build Appliances/debian-minimal.yaml -o out/debian-minimal --format qcow2
	.build/release/kiln test out/debian-minimal/debian-minimal.qcow2 --timeout 600
	@echo "demo: log in with: .build/release/kiln run out/debian-minimal/debian-minimal.qcow2" \
	  "(user root, password '$$(sed -n 's/^ *password: *//p' Appliances/debian-minimal.yaml | head -n 1)'; Ctrl-a x quits)"

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
# The code as `swift format` lays it out (.swift-format); `swift format -i -r Sources Tests Package.swift`
# fixes most findings.
lint: deps
	$(SWIFT) format lint --strict -r Sources Tests Package.swift

test: deps
	$(SWIFT) build --build-tests
	SWIFT=$(SWIFT) scripts/run-tests.sh

# The arm64 image build and boot (Tests/BuilderTests/Arm64BuildTests.swift), left out of `make test`:
# under TCG on an x86_64 host it takes about 40 minutes cold.
arm64-test: deps
	$(SWIFT) build --build-tests
	SWIFT=$(SWIFT) scripts/run-tests.sh --filter Arm64BuildTests

# The VMware OVA of Debian 12 with encrypted / and /srv, built cold with a bookworm builder guest and
# booted on VMware's hardware (Tests/BuilderTests/PlatformBuildTests.swift), left out of `make test`
# for its time under TCG.
platform-test: deps
	$(SWIFT) build --build-tests
	SWIFT=$(SWIFT) scripts/run-tests.sh --filter PlatformBuildTests

# The default appliance built twice from the same lockfile, bit for bit the same raw and qcow2, the
# second time by the CI recipe's script (docs/ci/build-appliance.sh, which boots it under SeaBIOS and
# OVMF) (BuildCommandTests.secondBuildIsBitIdentical), left out of `make test` for its second build.
repro-test: deps
	$(SWIFT) build --build-tests
	SWIFT=$(SWIFT) scripts/run-tests.sh --filter secondBuildIsBitIdentical

# A blank OVMF machine deployed by `kiln serve` with the default appliance's image and booted from its
# disk to its login prompt (Tests/BuilderTests/ImageDeployBootTests.swift), left out of `make test`
# for its time under TCG (a build, then the agent's boot, the transfer and a whole Debian boot).
deploy-test: deps
	$(SWIFT) build --build-tests
	SWIFT=$(SWIFT) scripts/run-tests.sh --filter ImageDeployBootTests

# libFuzzer with AddressSanitizer on the disk-image readers and the TFTP and DHCP codecs, FUZZ_SECONDS
# (default 60) per target; crashes go to Tests/Fuzz/crashes/.
fuzz:
	SWIFT=$(SWIFT) scripts/fuzz.sh

# A whole unattended Debian network install from kiln's lab mirror, in a network namespace (root).
netinstall-test: build
	Tests/netinstall.sh

# kiln into PREFIX/bin, with the commit it was built from, shell completions for bash, zsh and fish,
# and man pages generated from the command definitions (kiln.1, kiln.build.1, ...).
install: build
	install -D -m 755 .build/release/kiln $(DESTDIR)$(PREFIX)/bin/kiln
	mkdir -p $(DESTDIR)$(PREFIX)/share/kiln $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
	  $(DESTDIR)$(PREFIX)/share/zsh/site-functions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d \
	  $(DESTDIR)$(PREFIX)/share/man/man1
	git describe --always --dirty --abbrev=12 > $(DESTDIR)$(PREFIX)/share/kiln/commit 2>/dev/null \
	  || rm -f $(DESTDIR)$(PREFIX)/share/kiln/commit
	.build/release/kiln --generate-completion-script bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/kiln
	.build/release/kiln --generate-completion-script zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_kiln
	.build/release/kiln --generate-completion-script fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/kiln.fish
	$(SWIFT) build -c release --product generate-manual
	.build/release/generate-manual .build/release/kiln --multi-page --output-directory $(DESTDIR)$(PREFIX)/share/man/man1

clean:
	rm -rf .build out
