# mqgate: run, test, bench, lint.
GO ?= go

.PHONY: run build test deps lint bench fuzz

## run: start the broker with its embedded defaults (MQTT on 127.0.0.1:1883)
run:
	$(GO) run ./cmd/mqgate serve

## build: build the static binary into bin/mqgate
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/mqgate ./cmd/mqgate

## deps: install what the tests and benchmarks need when it is missing (Debian
## mosquitto-clients for interop tests, mosquitto as the side-by-side reference,
## postgresql for the PostgreSQL backends, started by the tests in a temp dir,
## chromium and npm's MQTT.js for the browser WebSocket test)
BROWSER_DIR := broker/listener/testdata/browser
deps:
	@missing=""; \
	command -v mosquitto_pub >/dev/null 2>&1 || missing="$$missing mosquitto-clients"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || missing="$$missing mosquitto"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@[ -f $(BROWSER_DIR)/node_modules/mqtt/dist/mqtt.min.js ] || npm ci --prefix $(BROWSER_DIR) --no-audit --no-fund

## test: install test dependencies, then run every test with the race detector
test: deps
	$(GO) vet ./...
	MQGATE_REQUIRE_BROWSER=1 MQGATE_REQUIRE_MOSQUITTO=1 $(GO) test -race -count=1 -timeout 15m ./...

## lint: gofmt, go vet and staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

## fuzz: run the codec and topic fuzzers for a short while
fuzz:
	$(GO) test ./mqtt -run '^$$' -fuzz FuzzDecode -fuzztime 30s
	$(GO) test ./broker/topics -run '^$$' -fuzz FuzzIndexMatch -fuzztime 30s

-include bench/Makefile.inc
