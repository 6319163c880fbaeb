# GENNAPE Studio — two commands do everything: `make run` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= ../shared/data

.PHONY: run test install lint bench evaluate checks clean browser

$(BIN)/python:
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) (Python 3.11) on PATH"; exit 1; }
	$(PY) -m venv $(VENV)

$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --upgrade pip >/dev/null
	$(BIN)/python -m pip install -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m streamlit run app/streamlit_app.py --server.port 8501

lint: $(STAMP)
	$(BIN)/python -m ruff check engine app tests scripts

# headless Chromium for tests/test_browser.py (Debian package; the test skips with a reason without it)
browser:
	@command -v chromium >/dev/null 2>&1 || { (apt-get update && apt-get install -y chromium) >/dev/null 2>&1 \
		|| echo "chromium could not be installed: the real-browser test will be skipped"; }

test: $(STAMP) browser
	$(BIN)/python -m ruff check engine app tests scripts
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m engine.bench all

evaluate: $(STAMP)
	$(BIN)/python -m engine evaluate --config configs/evaluate_default.json

# the shipped checkpoint's zero-shot checks: input-size shift (NB-201 at 16/32/224 px),
# 31 hand-designed ImageNet networks with published top-1 (a check set, never for selection),
# and which families lie outside its training domain (novelty; no labels)
checks: $(STAMP)
	$(BIN)/python -m engine.evaluate.shift --output runs/shift/shift.json
	$(BIN)/python -m engine.evaluate.zoo --output runs/zoo/zoo.json
	$(BIN)/python -m engine.evaluate.domain --output runs/domain/domain.json

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache
