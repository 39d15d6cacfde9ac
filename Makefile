# The two commands a newcomer needs (see README.md). Both set up what they need first.
.PHONY: setup demo test test-fast lint bench conformance fuzz-long

# `make demo DEMO_ARGS="--days 1 --seconds 20"` plays a shorter campaign.
DEMO_ARGS ?=

setup:
	@bash scripts/setup

demo: setup
	@.venv/bin/python -m sandboxes.demo $(DEMO_ARGS)

test: setup lint
	@.venv/bin/python -m pytest -q

# Quick local loop: everything but the tests that need the Bluesky npm stack (about a third of the time).
test-fast: setup
	@.venv/bin/python -m pytest -q -m "not bluesky"

# Lint, format, types and layer contracts (also part of `make test`).
lint: setup
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .
	@.venv/bin/mypy
	@.venv/bin/lint-imports

bench: setup
	@.venv/bin/python bench/run_all.py

# The adapter contract against a real Mastodon-API server (CONFORMANCE_BASE_URL, CONFORMANCE_TOKEN), or against
# our sandbox answering as another server family (`make conformance SANDBOX=takahe`). See README.md.
conformance: setup
	@.venv/bin/python bench/conformance.py $(if $(SANDBOX),--sandbox $(SANDBOX))

# A longer random run of the bot check fuzz test than the suite's 600 fixed examples.
fuzz-long: setup
	@BOT_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest -q -p no:cacheprovider tests/campaign/test_fuzz_check.py
