# Front end to CMake. `make run` is the main job, `make test` the test suite.
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all setup configure build tool run test bench clean

all: build

setup:
	@bash scripts/setup.sh

configure:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

tool: configure
	@cmake --build $(BUILD) -j $(JOBS) --target ahmsa

# The end-to-end demo on built-in data (synthetic corpus -> flow -> LOSO training -> UF1).
# Builds only the `ahmsa` program (not the tests), which is all the demo needs.
run: setup tool
	@bash scripts/demo.sh $(BUILD)

test: setup build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: tool
	@$(BUILD)/ahmsa bench all

clean:
	rm -rf $(BUILD)
