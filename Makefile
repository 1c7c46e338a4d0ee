# Every target creates .venv on first use, so `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The demo starts every service's emulator with sample data, runs a CSV of donations and a
# month of Stripe charges into the local Virtuous, runs Virtuous's nightly import, then runs
# again to show that nothing is sent twice. Meanwhile connector serve takes Virtuous's webhooks
# for virtuous-webhooks-to-mailchimp: the contacts the import creates travel to Mailchimp as
# ContactCreate events, shown at the end. Copies, outputs and state go to a fresh temporary
# folder (named in the output); nothing is written in the checkout.
demo: $(STAMP)
	@$(BIN)/connector sandbox \
		--run recipes/csv-donations-to-virtuous-gifts.yaml \
		--run recipes/stripe-charges-to-virtuous-gifts.yaml \
		--run recipes/virtuous-webhooks-to-mailchimp.yaml --twice

# Three workers on two cores: much of the suite waits on emulators and child processes.
TEST_WORKERS ?= 3
test: $(STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check core connectors tests bench examples
	$(BIN)/ruff format --check core connectors tests bench examples
	$(BIN)/mypy

# Every benchmark in bench/, one after the other (each also runs on its own: bench/<name>.py
# --help); the figures, their baselines, the goals and the machine go to bench/RESULTS.md. About
# 5 minutes on 2 quiet cores with the long scenarios cut down; BENCH_ARGS=--full runs them all
# (the one-minute rate windows, a million gifts through the emulator).
bench: $(STAMP)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .connector .pytest_cache .mypy_cache .ruff_cache
