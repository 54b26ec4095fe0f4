// Package archtest holds the test that keeps seatledger's imports pointing
// one way (docs/ARCHITECTURE.md). It has no code of its own: the rules are
// the table in arrows_test.go, read by `go test ./internal/archtest`.
package archtest
