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

// OpenSecond connects a second client to the same server, as a second node
// would (storetest.SecondOpener: the freshness rule of issue 16).
func (f factory) OpenSecond(t *testing.T, _ eventstore.Store) eventstore.Store { return f.Open(t) }

func TestContract(t *testing.T) {
	url := os.Getenv(urlEnv)
	if url == "" {
		t.Skip("SEATLEDGER_KURRENTDB_URL not set: KurrentDB contract tests skipped")
	}
	storetest.RunFactory(t, factory{url})
}

func TestNormalizeConnString(t *testing.T) {
	for in, want := range map[string]string{
		"kurrentdb://localhost:2113?tls=false":         "kurrentdb://localhost:2113?tls=false",
		"kurrentdb+discover://a:2113,b:2113?tls=false": "kurrentdb+discover://a:2113,b:2113?tls=false",
		"kurrent+discover://a:2113?tls=false":          "kurrent+discover://a:2113?tls=false",
		"kdb://localhost:2113?tls=false":               "kdb://localhost:2113?tls=false",
		"kdb+discover://cluster.example.com:2113":      "kdb+discover://cluster.example.com:2113",
		"esdb://admin:changeit@localhost:2113":         "esdb://admin:changeit@localhost:2113",
		"esdb+discover://cluster.example.com:2113":     "esdb+discover://cluster.example.com:2113",
		"  kurrentdb://localhost:2113?tls=false  ":     "kurrentdb://localhost:2113?tls=false",
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

// Each scheme the client accepts opens (the client connects lazily).
func TestOpenEverySchemeTheClientAccepts(t *testing.T) {
	for _, conn := range []string{
		"kurrentdb://127.0.0.1:1?tls=false", "kurrentdb+discover://127.0.0.1:1?tls=false",
		"kurrent://127.0.0.1:1?tls=false", "kurrent+discover://127.0.0.1:1?tls=false",
		"kdb://127.0.0.1:1?tls=false", "kdb+discover://127.0.0.1:1?tls=false",
		"esdb://127.0.0.1:1?tls=false", "esdb+discover://127.0.0.1:1?tls=false",
	} {
		s, err := Open(conn)
		if err != nil {
			t.Errorf("Open(%q): %v", conn, err)
			continue
		}
		s.Close()
	}
}

// The password never appears in an error, even when it contains '@' or
// makes the URL unparsable.
func TestOpenErrorsHideThePassword(t *testing.T) {
	for _, conn := range []string{
		"esdb://admin:s3cr@t@localhost:2113?tls=false&nodePreference=nope",
		"kurrentdb://admin:s3cr%zzt@localhost:2113",
		"kurrentdb://admin:s3cr@t@localhost:x/?tls=false",
		"ftp://admin:s3cr@t@localhost",
	} {
		_, err := Open(conn)
		if err == nil {
			t.Errorf("Open(%q) succeeded", conn)
			continue
		}
		if strings.Contains(err.Error(), "s3cr") || strings.Contains(err.Error(), "zzt") {
			t.Errorf("Open(%q): error shows the password: %v", conn, err)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"esdb://admin:p@ss@host:2113?tls=false": "esdb://***@host:2113?tls=false",
		"esdb://host:2113?x=a@b":                "esdb://host:2113?x=a@b",
		"kdb://u:p@a:1,b:2/?tls=true":           "kdb://***@a:1,b:2/?tls=true",
		"no scheme":                             "no scheme",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
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
