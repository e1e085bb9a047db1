# Two entry points (see README): `make demo` and `make test`. Both set up .venv on first use.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pip prints a warning per package for the machine's flat local indexes; keep the log readable.
PIP_QUIET := -q --disable-pip-version-check

.PHONY: demo test lint typecheck pytest install clean

install: $(STAMP)

# Reinstall only when the package metadata or the pins change (a second run is a no-op).
$(STAMP): setup.cfg pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (Merlin 23.08 supports Python <= 3.11)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_QUIET) -c constraints.txt -e '.[dev,bench]' 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
	$(BIN)/python -m pip check
	@touch $(STAMP)

demo: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/t4r-dmt demo --out runs/demo

lint: $(STAMP)
	$(BIN)/ruff check t4r_dmt tests benchmarks workflows
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy t4r_dmt

pytest: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q

test: lint typecheck pytest

clean:
	rm -rf $(VENV) runs .mypy_cache .ruff_cache .pytest_cache
