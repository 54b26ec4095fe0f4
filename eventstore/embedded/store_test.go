package embedded_test

import (
	"testing"

	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/eventstore/storetest"
)

type factory struct{}

func (factory) Open(t *testing.T) eventstore.Store {
	s, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (factory) Reopen(t *testing.T, old eventstore.Store) eventstore.Store {
	dir := old.(*embedded.Store).Dir()
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := embedded.Open(dir, embedded.Options{VerifyOnOpen: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.RunFactory(t, factory{})
}
