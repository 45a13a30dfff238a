# SPDX-License-Identifier: GPL-2.0
#
# zcopy's entry points. Kbuild (not this file) describes the module to the
# kernel's build system.
#
#   make run          boot the release kernel, load zcopy, send a buffer and a
#                     file zero-copy over the wire and show what happened
#   make test         every test, one verdict: "N passed, M failed"
#   make bench        the benchmark: every method side by side, one VM boot,
#                     then the kernel's own zero-copy selftests in the same
#                     boot; report, table and plots in bench/ (BENCH='..'
#                     adds zcopyctl bench arguments)
#   make profile      where a send's CPU goes: perf (cpu-clock) on one bench
#                     sample per method; top symbols and flame graphs in
#                     bench/profile/ (SECS='..' per sample, default 3)
#   make fuzz         the fuzzer on the test kernel for SECS seconds (default
#                     300; SEED, THREADS), then rmmod; one verdict
#   make vm CMD='..'  run any command in the VM with zcopy loaded
#                     (KERNEL=test for the debug kernel; default release)
#   make module       build zcopy.ko against KERNEL (default test)
#   make kernel       build (or find in the cache) the KERNEL kernel
#   make provision    install what is missing; prints the versions in use
#   make samples      build the C and Rust samples (samples/)
#   make fmt          format the module, tools/ and the Rust sample
#
# Everything built lives in $(ZCOPY_CACHE) (default ~/.cache/zcopy).

H := tools/harness
KERNEL ?= test
CMD ?= zcopyctl info

.PHONY: help run test bench profile fuzz vm module kernel provision tools itest samples fmt clean

help:
	@sed -n '3,27p' Makefile | sed 's/^# \{0,1\}//'

provision:
	@$(H)/provision.sh

kernel: provision
	@flock $${ZCOPY_CACHE:-$$HOME/.cache/zcopy}/kbuild/.lock $(H)/kernel.sh $(KERNEL)

module: provision
	@$(H)/module.sh $(KERNEL)

tools:
	cargo build --release --quiet --manifest-path tools/Cargo.toml

itest: tools/target/itest/zcopy_itest

samples: tools/target/samples/zcopy_send
	cargo build --release --quiet --manifest-path samples/rust/Cargo.toml --target-dir tools/target/samples

tools/target/samples/zcopy_send: samples/zcopy_send.c include/uapi/linux/zcopy.h
	@mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -Werror -Iinclude/uapi -o $@ $<

ITEST_SRC := tools/itest/zcopy_itest.c tools/itest/send.c tools/itest/sendfile.c tools/itest/dma.c tools/itest/failnth.c
tools/target/itest/zcopy_itest: $(ITEST_SRC) tools/itest/itest.h include/uapi/linux/zcopy.h
	@mkdir -p $(@D)
	$(CC) -O2 -g -Wall -Wextra -Werror -Iinclude/uapi -o $@ $(ITEST_SRC) -lpthread

test:
	@$(H)/test.sh

run: provision tools
	@$(H)/vm.sh --kernel release -- $(H)/demo.sh

bench: provision tools
	@rm -rf bench && mkdir -p bench
	@$(H)/selftests.sh build
	@$(H)/vm.sh --kernel release --out $${ZCOPY_CACHE:-$$HOME/.cache/zcopy}/runs/bench \
		-- /bin/sh -c '$(H)/bench.sh $(BENCH) && $(H)/selftests.sh run' | tee bench/table.txt
	@cp $${ZCOPY_CACHE:-$$HOME/.cache/zcopy}/runs/bench/bench.json bench/
	@tools/target/release/zcopyctl plot bench/bench.json --out bench
	@echo "bench/: bench.json (every sample), table.txt, cpu_per_byte.svg, cpu_per_byte.png"

profile: provision tools
	@rm -rf bench/profile && mkdir -p bench/profile
	@$(H)/vm.sh --kernel release --out $${ZCOPY_CACHE:-$$HOME/.cache/zcopy}/runs/profile \
		-- $(H)/profile.sh $(SECS)
	@tools/target/release/zcopyctl profile $${ZCOPY_CACHE:-$$HOME/.cache/zcopy}/runs/profile/prof \
		--out bench/profile
	@echo "bench/profile/: profile.txt (top symbols side by side), profile.json, one flame graph (SVG) per sample"

fuzz: provision tools
	@SECS=$(SECS) SEED=$(SEED) THREADS=$(THREADS) $(H)/fuzz.sh

vm: provision tools itest
	@$(H)/vm.sh --kernel $(if $(filter command line,$(origin KERNEL)),$(KERNEL),release) \
		-- /bin/sh -c 'PATH=$(CURDIR)/tools/target/release:$(CURDIR)/tools/target/itest:$$PATH; $(CMD)'

fmt:
	@$(H)/rustfmt.sh
	cd tools && cargo fmt
	cd samples/rust && cargo fmt

clean:
	rm -rf tools/target
