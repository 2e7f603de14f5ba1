# Two commands for a newcomer:  `make demo`  and  `make test`  (the quick suite; `make test-all`
# adds the tests marked slow, as CI does).
# Torch is installed first and only when it is not importable: CI and a fresh
# machine get the CPU wheel (TORCH_SPEC); a GPU server's own CUDA torch is kept,
# because the virtual environment then sees the site-packages of $(PYTHON).

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
VENV_FLAGS := $(shell $(PYTHON) -c "import torch" >/dev/null 2>&1 && echo --system-site-packages)
STAMP := $(VENV)/.ghosttui-installed
# the tests also run the LiberTEM UDF: `make test` adds the optional extra (28 small packages,
# about 20 s to install plus about 15 s for pip's second pass, measured on the shared 2-core CPU)
TEST_STAMP := $(VENV)/.ghosttui-test-extras

.PHONY: demo test test-slow test-all lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" >/dev/null 2>&1 || $(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev,multislice]" "numpy<2"
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,multislice,libertem]" "numpy<2"
	touch $(TEST_STAMP)

demo: $(STAMP)
	$(BIN)/ghosttui demo
	@echo "ghosttui is $(BIN)/ghosttui (or 'source $(BIN)/activate' to put it on PATH);"
	@echo "the demo session is in the sessions home: '$(BIN)/ghosttui sessions' shows where."

# Every test but those marked slow (real training rounds, subprocesses, tmux, clusters).
test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# Only the tests marked slow; CI (.ci/run) runs `make test` and then these.
test-slow: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -m slow

# Everything in one run.
test-all: $(TEST_STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

# Every benchmark behind docs/benchmarks.md and docs/scaling.md, one after another (about
# 100 min on 2 cores); keep the machine otherwise idle. Simulated scans go to $(BENCH_DATA).
BENCH_DATA ?= /tmp/ghosttui-bench
bench: $(STAMP)
	mkdir -p $(BENCH_DATA)
	export GHOSTTUI_BENCH_DATA=$(BENCH_DATA) GHOSTTUI_CACHE_DIR=$(BENCH_DATA)/cache; \
	$(BIN)/python benchmarks/startup.py && \
	$(BIN)/python benchmarks/preprocess_speed.py && \
	$(BIN)/python benchmarks/change_detection.py && \
	$(BIN)/python benchmarks/tui_latency.py && \
	$(BIN)/python benchmarks/tui_latency.py --no-training && \
	for g in wall stripes needles; do \
	  budgets=$$( [ $$g = wall ] && echo 50,100,250 || echo 100 ); \
	  test -f $(BENCH_DATA)/$$g.h5 || $(BIN)/ghosttui simulate $(BENCH_DATA)/$$g.h5 --geometry $$g || exit 1; \
	  $(BIN)/ghosttui bench $(BENCH_DATA)/$$g.h5 --strategy random,grid-boundary,hybrid \
	    --budget $$budgets --seed 0,1,2 --json benchmarks/results/bench_$$g.json \
	    --plot docs/bench_$$g.png || exit 1; \
	done && \
	$(BIN)/python benchmarks/model_accuracy.py && \
	$(BIN)/python benchmarks/input_size.py --sizes 32,64,128 && \
	$(BIN)/python benchmarks/input_size.py --detector 512 --sizes 32,64 && \
	$(BIN)/python benchmarks/series_predict.py && \
	$(BIN)/python benchmarks/report.py --write

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
