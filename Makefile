# Every target installs what it needs first (see scripts/dev.sh).
.PHONY: help serve test bench
help:            ## list targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'
serve:           ## install and start the server on 127.0.0.1:6379 (ARGS="--port 7000")
	scripts/dev.sh serve $(ARGS)
test:            ## install everything and run the Rust and Python test suites
	scripts/dev.sh test
bench:           ## run the benchmarks side by side with redis-server
	scripts/dev.sh bench $(ARGS)
