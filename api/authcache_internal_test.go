package api

import (
	"strings"
	"testing"
	"time"
)

// BenchmarkAuthenticateCached checks a bearer token verified before, with
// an operator token configured (as serve and the bench run).
func BenchmarkAuthenticateCached(b *testing.B) {
	secret := []byte("bench-secret-0123456789abcdef0123456789")
	a := newAuthenticator(secret, "operator-token-for-the-benchmark", nil)
	tok, err := NewToken(secret, "bench-17", "admin", time.Hour, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	header := "Bearer " + tok
	if _, err := a.authenticate(header); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if p, err := a.authenticate(header); err != nil || p.tenantID != "bench-17" {
			b.Fatal(p, err)
		}
	}
}

// The verified-token cache is consulted before the operator check; a token
// is only ever remembered after it failed that check, so an operator token
// that is also a valid JWT of the secret stays the operator, however often
// it is sent, and the JWT sent before it never becomes the operator.
func TestCachedTokensAndTheOperator(t *testing.T) {
	secret := []byte("test-secret-0123456789abcdef0123456789")
	opJWT, err := NewToken(secret, "contoso", "mallory", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	a := newAuthenticator(secret, opJWT, nil)
	user, err := NewToken(secret, "contoso", "alice", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		p, err := a.authenticate("Bearer " + opJWT)
		if err != nil || !p.actor.Operator || p.actor.UserID != "" || p.tenantID != "" {
			t.Fatalf("round %d: operator token authenticated as %+v, %v", i, p, err)
		}
		p, err = a.authenticate("Bearer " + user)
		if err != nil || p.actor.Operator || p.actor.UserID != "alice" || p.tenantID != "contoso" {
			t.Fatalf("round %d: user token authenticated as %+v, %v", i, p, err)
		}
	}
}

// Only the whole cached token is accepted from the cache: the same header
// and claims with another signature, a prefix, or the token with a byte
// added are verified afresh and refused.
func TestCachedTokenIsMatchedWhole(t *testing.T) {
	secret := []byte("test-secret-0123456789abcdef0123456789")
	a := newAuthenticator(secret, "", nil)
	tok, err := NewToken(secret, "contoso", "alice", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.authenticate("Bearer " + tok); err != nil {
		t.Fatal(err)
	}
	sig := strings.LastIndexByte(tok, '.') + 1
	flip := []byte(tok)
	flip[len(flip)-3] ^= 1
	for _, bad := range []string{
		tok[:sig] + strings.Repeat("A", len(tok)-sig),
		string(flip),
		tok[:len(tok)-1],
		tok + "A",
		tok[:sig],
	} {
		if p, err := a.authenticate("Bearer " + bad); err == nil {
			t.Errorf("token %q authenticated as %+v", bad, p)
		}
	}
}
