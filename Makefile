.PHONY: test test-all build run bench vet fmt

# The README's test command: the short suite (minutes; the long scenarios
# skip under -short). .ci/run runs it first.
test:
	go test -short ./...

# The whole suite with the race detector: fuzzing, crash rounds, Redis and
# disk faults, several nodes, load. .ci/run runs it after `make test`.
test-all:
	go test -race -timeout 60m ./...
	SEATLEDGER_POSTGRES_WRITERS=2 go test -race -count=1 ./eventstore/postgres/

# Build the binary once; ./seatledger serve then starts at once.
build:
	go build -o seatledger ./cmd/seatledger

run:
	go run ./cmd/seatledger serve

bench:
	go test -run '^$$' -bench . -benchmem ./...

vet:
	go vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')
