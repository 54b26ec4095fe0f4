.PHONY: test run bench vet fmt

# The test command of the README and of .ci/run.
test:
	go test -race -timeout 40m ./...

run:
	go run ./cmd/seatledger serve

bench:
	go test -run '^$$' -bench . -benchmem ./...

vet:
	go vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')
