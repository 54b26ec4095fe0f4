package kurrentdb

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/storetest"
)

const urlEnv = "SEATLEDGER_KURRENTDB_URL"

type factory struct{ url string }

func (f factory) Open(t *testing.T) eventstore.Store {
	s, err := Open(f.url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f factory) Reopen(t *testing.T, old eventstore.Store) eventstore.Store {
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Open(t)
}

func TestContract(t *testing.T) {
	url := os.Getenv(urlEnv)
	if url == "" {
		t.Skip("SEATLEDGER_KURRENTDB_URL not set: KurrentDB contract tests skipped")
	}
	storetest.RunFactory(t, factory{url})
}

func TestNormalizeConnString(t *testing.T) {
	for in, want := range map[string]string{
		"kurrentdb://localhost:2113?tls=false":         "esdb://localhost:2113?tls=false",
		"kurrentdb+discover://a:2113,b:2113?tls=false": "esdb+discover://a:2113,b:2113?tls=false",
		"esdb://admin:changeit@localhost:2113":         "esdb://admin:changeit@localhost:2113",
		"esdb+discover://cluster.example.com:2113":     "esdb+discover://cluster.example.com:2113",
		"  kurrentdb://localhost:2113?tls=false  ":     "esdb://localhost:2113?tls=false",
	} {
		got, err := NormalizeConnString(in)
		if err != nil || got != want {
			t.Errorf("NormalizeConnString(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := NormalizeConnString("postgres://user:secret@x")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad scheme: %v", err)
	}
}

func TestOpenLazyAndUnavailable(t *testing.T) {
	// Nothing listens on this port: Open succeeds (the client connects
	// lazily), operations fail with ErrUnavailable instead of hanging.
	s, err := Open("kurrentdb://127.0.0.1:1?tls=false&maxDiscoverAttempts=1&discoveryInterval=10&gossipTimeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(t.Context()); !errors.Is(err, eventstore.ErrUnavailable) {
		t.Fatalf("Ping without a server: %v, want ErrUnavailable", err)
	}
	if _, err := s.ReadStream(t.Context(), "x", 1, 1); !errors.Is(err, eventstore.ErrUnavailable) {
		t.Fatalf("ReadStream without a server: %v, want ErrUnavailable", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(t.Context(), "x", eventstore.Any, nil); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
}
