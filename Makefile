# scrapeship: the two commands README.md starts with.
#   make run   install deps, build, scrape a local endpoint and print the series
#   make test  install deps, build, run every test (unit, conformance, real-peer
#              integration, ASan+UBSan, leak check, bounded fuzzing)
BUILD    ?= build
JOBS     ?= 2
RUN_FOR  ?= 20s
FUZZ_SECONDS ?= 20

.PHONY: all deps build run test test-fast bench clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

# The embedded default config scrapes scrapeship's own /metrics every 5s and prints
# every sample to stdout. RUN_FOR=0 runs until Ctrl-C.
run: build
	./$(BUILD)/scrapeship run --stdout --web.listen-address 127.0.0.1:9464 \
	  $(if $(filter-out 0,$(RUN_FOR)),--run-for $(RUN_FOR),)

test: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) JOBS=$(JOBS) bash scripts/test.sh

# Unit tests only, on the normal build: the quick loop while developing.
test-fast: build
	cd $(BUILD) && ctest -L unit --output-on-failure -j$(JOBS)

bench: build
	bash bench/run.sh

clean:
	rm -rf build build-release build-asan build-fuzz
