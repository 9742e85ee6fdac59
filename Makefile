# Front end to CMake. `make run` is the main job, `make test` the test suite.
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all setup configure build run test bench clean

all: build

setup:
	@bash scripts/setup.sh

configure:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# The end-to-end demo on built-in data (synthetic corpus -> flow -> LOSO training -> UF1).
run: setup build
	@bash scripts/demo.sh $(BUILD)

test: setup build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: build
	@$(BUILD)/ahmsa bench all

clean:
	rm -rf $(BUILD)
