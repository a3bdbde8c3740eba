# Benchmarks (issues 7 and 17): figures against the real servers, the Node-RED peer and the
# firmware in the simulator. Included by the main Makefile (VENV, PY, PIP, STAMP, BUILD).

BENCH_STAMP   := $(VENV)/.bench-installed
NODE_RED_SRC  := bench/peers/node-red
NODE_RED_DIR  := $(BUILD)/bench/node-red
NODE_RED_STAMP := $(NODE_RED_DIR)/.installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(call install_debs,valgrind)
	$(PIP) install -q -e '.[bench]'
	touch $(BENCH_STAMP)

# Node-RED 5, node-red-contrib-influxdb and node-red-node-serialport, pinned by the lock file,
# installed with `npm ci` into build/ (nothing global; Node.js 22 comes as a package too).
$(NODE_RED_STAMP): $(NODE_RED_SRC)/package.json $(NODE_RED_SRC)/package-lock.json
	@command -v npm >/dev/null || { echo "installing Debian's npm"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; }
	mkdir -p $(NODE_RED_DIR)
	cp $(NODE_RED_SRC)/package.json $(NODE_RED_SRC)/package-lock.json $(NODE_RED_DIR)/
	cd $(NODE_RED_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_RED_STAMP)

node-red-peer: $(NODE_RED_STAMP) ## install the Node-RED peer of make bench into build/bench/node-red

bench: system-deps $(BENCH_STAMP) $(NODE_RED_STAMP) ## all benchmarks (about 20 min): bench/results.json, plots, docs/performance.md
	$(PY) -m bench

bench-quick: system-deps $(BENCH_STAMP) $(NODE_RED_STAMP) ## short benchmark run (about 3 min), results in build/bench/
	$(PY) -m bench --quick --out $(BUILD)/bench/results-quick.json --no-docs

.PHONY: bench bench-quick node-red-peer
