package api_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return gzipped(t, b)
}

// TestGzipRequestBodies: a Content-Encoding: gzip body is decoded on every
// command (the official Graph SDK compresses every body it sends), the
// Idempotency-Key fingerprint is the decoded body's, and the 1 MiB limit
// holds after decompression.
func TestGzipRequestBodies(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	admin := token(t, "contoso", "admin")
	gz := map[string]string{"Content-Encoding": "gzip"}
	user := map[string]any{"id": "zed", "userPrincipalName": "zed@contoso.example", "usageLocation": "US"}

	r := e.do(req{Method: "POST", Path: "/v1/tenants/contoso/users", Token: admin, Body: gzipJSON(t, user),
		Header: map[string]string{"Content-Encoding": "gzip", "Idempotency-Key": "k1"}})
	wantOK(t, r, http.StatusCreated, "UserAdded")
	// The same request uncompressed is the same request: replayed.
	r = e.do(req{Method: "POST", Path: "/v1/tenants/contoso/users", Token: admin, Body: user, Header: map[string]string{"Idempotency-Key": "k1"}})
	if r.Code != http.StatusCreated || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("plain retry of a gzip request: %d %v %s", r.Code, r.Header, r.Body)
	}
	// Layered and upper-case codings are read too.
	body := gzipped(t, gzipJSON(t, map[string]any{"id": "g1", "displayName": "G"}))
	wantOK(t, e.do(req{Method: "POST", Path: "/v1/tenants/contoso/groups", Token: admin, Body: body,
		Header: map[string]string{"Content-Encoding": "GZIP, gzip"}}), http.StatusCreated, "GroupCreated")
	wantOK(t, e.do(req{Method: "POST", Path: "/v1/tenants/contoso/groups", Token: admin, Body: map[string]any{"id": "g2", "displayName": "G2"},
		Header: map[string]string{"Content-Encoding": "identity"}}), http.StatusCreated)

	before := e.version("contoso")
	// A decompression bomb: 64 MiB of zeros in about 64 KiB.
	bomb := gzipped(t, make([]byte, 64<<20))
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb of %d bytes", len(bomb))
	}
	p := problem(t, e.do(req{Method: "POST", Path: "/v1/tenants/contoso/users", Token: admin, Body: bomb, Header: gz}),
		http.StatusRequestEntityTooLarge, "invalid_request")
	if !strings.Contains(p["detail"].(string), "1 MiB") {
		t.Fatalf("bomb detail %v", p)
	}
	// Just over the limit once decoded, though small on the wire.
	big := `{"id":"x1","userPrincipalName":"x@contoso.example","displayName":"` + strings.Repeat("a", 1<<20) + `"}`
	problem(t, e.do(req{Method: "POST", Path: "/v1/tenants/contoso/users", Token: admin, Body: gzipped(t, []byte(big)), Header: gz}),
		http.StatusRequestEntityTooLarge, "invalid_request")
	// Not gzip, or cut short.
	problem(t, e.do(req{Method: "POST", Path: "/v1/tenants/contoso/users", Token: admin, Body: `{"id":"x2"}`, Header: gz}),
		http.StatusBadRequest, "invalid_request")
	whole := gzipJSON(t, user)
	problem(t, e.do(req{Method: "POST", Path: "/v1/tenants/contoso/users", Token: admin, Body: whole[:len(whole)-6], Header: gz}),
		http.StatusBadRequest, "invalid_request")
	// A coding it cannot read: 415, saying what it reads.
	for _, enc := range []string{"br", "deflate", "gzip, zstd"} {
		r := e.do(req{Method: "POST", Path: "/v1/tenants/contoso/users", Token: admin, Body: user, Header: map[string]string{"Content-Encoding": enc}})
		p := problem(t, r, http.StatusUnsupportedMediaType, "invalid_request")
		if p["field"] != "Content-Encoding" || r.Header.Get("Accept-Encoding") != "gzip" {
			t.Fatalf("%s: %v %v", enc, p, r.Header)
		}
	}
	if v := e.version("contoso"); v != before {
		t.Fatalf("refused requests wrote: version %d -> %d", before, v)
	}
}
