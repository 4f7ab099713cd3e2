# droptrace: `sudo make lab` shows it working; `sudo make test` runs the tests.
# Both install what a fresh Debian/Ubuntu machine lacks (apt), then the
# package into .venv (pip), compiling the BPF object with clang.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.droptrace-installed
SOURCES := pyproject.toml setup.py bpf/build.py $(wildcard bpf/*.h src/droptrace/features/*/*.c src/droptrace/features/*/*.h) src/droptrace/_render.c

.PHONY: lab test test-kernel test-image unit e2e lint bench clean

$(STAMP): $(SOURCES)
	./scripts/install-system-deps
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

lab: $(STAMP)
	$(VENV)/bin/droptrace lab

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -ra

# The end-to-end matrix subset on the other kernels, each under qemu (see scripts/test-other-kernel).
# About 4-10 minutes each under emulation (2026-12-06: 6.12 5, 5.10 5, 6.1 3.5, their tests alone;
# later that day, with trail's three function-hook tests of issue 23 at ~35 s each, 6.1 10 on a busy host).
KERNELS ?= 6.12 5.10 6.1
test-kernel: $(STAMP)
	for k in $(KERNELS); do ./scripts/test-other-kernel $$k || exit 1; done

# deploy/Containerfile built with podman and the exporter run from the image, scraped by Prometheus
# (tests/e2e/test_containers.py). Not in `test`: each build downloads clang, Python and the wheels
# (some 300 MB; 40 s on our machines).
test-image: $(STAMP)
	DROPTRACE_TEST_IMAGE=1 $(PY) -m pytest -q -ra tests/e2e/test_containers.py

unit: $(STAMP)
	$(PY) -m pytest -q -m 'not e2e'

e2e: $(STAMP)
	$(PY) -m pytest -q -m e2e

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) build dist src/*.egg-info src/droptrace/bpf/*.o
