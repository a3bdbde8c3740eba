# Benchmarks (issue 7): figures against the real servers and the MicroPython unix port.
# Included by the main Makefile (VENV, PY, STAMP, BUILD come from it).

bench: $(STAMP) ## all benchmarks (under 15 min): one table, bench/results.json, docs/performance.md
	$(PY) -m bench

bench-quick: $(STAMP) ## short benchmark smoke run (under 2 min), results in build/bench/
	$(PY) -m bench --quick --out $(BUILD)/bench/results-quick.json --no-docs

.PHONY: bench bench-quick
