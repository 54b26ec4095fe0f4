package lru_test

import (
	"testing"

	"github.com/seatledger/seatledger/internal/lru"
)

func TestPutDropsTheLeastRecentlyUsed(t *testing.T) {
	c := lru.New[string, int](2)
	c.Put("a", 1)
	c.Put("b", 2)
	if v, ok := c.Get("a"); !ok || v != 1 { // a is now the most recent
		t.Fatalf("Get(a) = %d, %v", v, ok)
	}
	c.Put("c", 3) // drops b
	if _, ok := c.Get("b"); ok {
		t.Error("b survived though it was used least recently")
	}
	for k, want := range map[string]int{"a": 1, "c": 3} {
		if v, ok := c.Get(k); !ok || v != want {
			t.Errorf("Get(%s) = %d, %v; want %d", k, v, ok, want)
		}
	}
	if c.Len() != 2 {
		t.Errorf("Len = %d, want 2", c.Len())
	}
}

func TestPeekDoesNotCountAsAUse(t *testing.T) {
	c := lru.New[string, int](2)
	c.Put("a", 1)
	c.Put("b", 2)
	if v, ok := c.Peek("a"); !ok || v != 1 {
		t.Fatalf("Peek(a) = %d, %v", v, ok)
	}
	c.Put("c", 3) // a is still the least recent
	if _, ok := c.Peek("a"); ok {
		t.Error("Peek made a recent")
	}
}

func TestPutReplacesAndRemoveForgets(t *testing.T) {
	c := lru.New[string, int](2)
	c.Put("a", 1)
	c.Put("a", 2)
	if v, _ := c.Get("a"); v != 2 || c.Len() != 1 {
		t.Fatalf("after two puts of a: Get = %d, Len = %d", v, c.Len())
	}
	c.Remove("a")
	c.Remove("missing")
	if _, ok := c.Get("a"); ok || c.Len() != 0 {
		t.Fatal("Remove kept a")
	}
}

func TestZeroBoundKeepsNothing(t *testing.T) {
	c := lru.New[string, int](0)
	c.Put("a", 1)
	if _, ok := c.Get("a"); ok {
		t.Fatal("a cache bounded to 0 kept a value")
	}
}
