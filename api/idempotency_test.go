package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/domain"
)

func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	admin := token(t, "contoso", "admin")
	key := map[string]string{"Idempotency-Key": "buy-spb-1"}
	buy := req{Method: "POST", Path: "/v1/tenants/contoso/subscriptions", Token: admin, Header: key,
		Body: `{"id":"s1","skuId":"SPB","quantity":5}`}
	first := e.must(http.StatusCreated, buy)
	v := e.version("contoso")
	again := e.must(http.StatusCreated, buy)
	if !bytes.Equal(first.Body, again.Body) {
		t.Fatalf("replay answered differently:\n%s\n%s", first.Body, again.Body)
	}
	if again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("replay not marked")
	}
	if e.version("contoso") != v {
		t.Fatalf("replay appended: version %d -> %d", v, e.version("contoso"))
	}
	// Same key, another body.
	other := buy
	other.Body = `{"id":"s1","skuId":"SPB","quantity":6}`
	problem(t, e.do(other), http.StatusConflict, "idempotency_key_reused")
	// Same key, another endpoint.
	problem(t, e.do(req{Method: "DELETE", Path: "/v1/tenants/contoso/users/admin", Token: admin, Header: key}), http.StatusConflict, "idempotency_key_reused")
	if e.version("contoso") != v {
		t.Fatal("a refused request appended")
	}
	// The key is scoped to the actor: another admin's same key is a new command.
	e.addUser("contoso", "admin", "bill", "US", "")
	e.must(http.StatusOK, req{Method: "PUT", Path: "/v1/tenants/contoso/users/bill/roles", Token: admin, Body: `{"roles":["BillingAdministrator"]}`})
	e.must(http.StatusCreated, req{Method: "POST", Path: "/v1/tenants/contoso/subscriptions", Token: token(t, "contoso", "bill"), Header: key,
		Body: `{"id":"s2","skuId":"SPB","quantity":5}`})

	// Without an id, a retried create names the same resource.
	create := req{Method: "POST", Path: "/v1/tenants/contoso/users", Token: admin, Header: map[string]string{"Idempotency-Key": "new-user"},
		Body: `{"userPrincipalName":"nn@contoso.example"}`}
	a, b := e.must(http.StatusCreated, create), e.must(http.StatusCreated, create)
	if a.answer(t).ID == "" || a.answer(t).ID != b.answer(t).ID || !bytes.Equal(a.Body, b.Body) {
		t.Fatalf("retried create differs: %s vs %s", a.Body, b.Body)
	}
	// Tenants too.
	tenant := req{Method: "POST", Path: "/v1/tenants", Token: testOperator, Header: map[string]string{"Idempotency-Key": "tenant-1"},
		Body: `{"name":"Fabrikam","globalAdmin":{"userPrincipalName":"ga@fabrikam.example"}}`}
	a, b = e.must(http.StatusCreated, tenant), e.must(http.StatusCreated, tenant)
	if !bytes.Equal(a.Body, b.Body) || e.version(a.answer(t).ID) != 3 {
		t.Fatalf("retried tenant create differs: %s vs %s", a.Body, b.Body)
	}

	// A retryable command that changed nothing is recorded (NothingChanged),
	// so its replay answers alike and appends nothing.
	noop := req{Method: "PUT", Path: "/v1/tenants/contoso/users/bill/roles", Token: admin, Header: map[string]string{"Idempotency-Key": "noop"}, Body: `{"roles":["BillingAdministrator"]}`}
	a = e.must(http.StatusOK, noop)
	before := e.version("contoso")
	b = e.must(http.StatusOK, noop)
	if ev := a.answer(t).Events; len(ev) != 1 || !bytes.Contains(ev[0], []byte(`"NothingChanged"`)) || !bytes.Equal(a.Body, b.Body) || e.version("contoso") != before {
		t.Fatalf("no-op answers %s / %s", a.Body, b.Body)
	}

	for name, k := range map[string]string{"too long": strings.Repeat("k", 256), "control char": "a\tb", "non-ASCII": "clé"} {
		r := e.do(req{Method: "POST", Path: "/v1/tenants/contoso/groups", Token: admin, Header: map[string]string{"Idempotency-Key": k}, Body: `{"id":"g9","displayName":"G"}`})
		if p := problem(t, r, http.StatusBadRequest, "invalid_request"); p["field"] != "Idempotency-Key" {
			t.Fatalf("%s: field %v", name, p["field"])
		}
	}
	e.must(http.StatusCreated, req{Method: "POST", Path: "/v1/tenants/contoso/groups", Token: admin,
		Header: map[string]string{"Idempotency-Key": strings.Repeat("k", 255)}, Body: `{"id":"g9","displayName":"G"}`})
}

// TestConcurrentAssignLastLicenses: 200 admins' requests race for the last
// 10 licenses; exactly 10 win, the rest are told insufficient_licenses, and
// the stream and the tenant state agree with the answers: the 10 new
// LicenseAssigned events are the winners', the stream ends at the highest
// version answered, and 15 of 15 licenses are assigned.
func TestConcurrentAssignLastLicenses(t *testing.T) {
	e := newEnv(t)
	e.createTenant("contoso")
	admin := token(t, "contoso", "admin")
	e.buy("contoso", "admin", "s1", "SPB", 15)
	// 5 of 15 taken: 10 left.
	var first []string
	for i := 0; i < 5; i++ {
		id := fmt.Sprintf("early%d", i)
		e.addUser("contoso", "admin", id, "US", "")
		first = append(first, id)
	}
	e.must(http.StatusOK, req{Method: "POST", Path: "/v1/tenants/contoso/licenses/SPB/assign", Token: admin, Body: map[string]any{"users": first}})
	const n = 200
	for i := 0; i < n; i++ {
		e.addUser("contoso", "admin", fmt.Sprintf("user%03d", i), "US", "")
	}
	before := e.version("contoso")
	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		winners    []string
		maxVersion uint64
		lack       atomic.Int64
		start      = make(chan struct{})
		errs       = make(chan string, n)
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			user := fmt.Sprintf("user%03d", i)
			r := serve(t, e.srv, req{Method: "POST", Path: "/v1/tenants/contoso/licenses/SPB/assign", Token: admin,
				Body: `{"users":["` + user + `"]}`})
			switch {
			case r.Code == http.StatusOK:
				// Not r.answer: it may call t.Fatal, which only the test's
				// goroutine may.
				var a api.CommandAnswer
				if err := json.Unmarshal(r.Body, &a); err != nil {
					errs <- fmt.Sprintf("%s: not a command answer: %v: %s", user, err, r.Body)
					return
				}
				mu.Lock()
				winners = append(winners, user)
				maxVersion = max(maxVersion, a.Version)
				mu.Unlock()
			case r.Code == http.StatusConflict && bytes.Contains(r.Body, []byte(`"code":"insufficient_licenses"`)):
				lack.Add(1)
			default:
				errs <- fmt.Sprintf("%s: %d %s", user, r.Code, r.Body)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Errorf("unexpected answer: %s", msg)
	}
	if len(winners) != 10 || lack.Load() != n-10 {
		t.Fatalf("%d assigned, %d refused; want 10 and %d", len(winners), lack.Load(), n-10)
	}

	var assigned []string
	for _, ev := range e.events("contoso") {
		if p, ok := ev.Payload.(domain.LicenseAssigned); ok && ev.Version > before {
			assigned = append(assigned, p.UserID)
		}
	}
	slices.Sort(winners)
	slices.Sort(assigned)
	if !slices.Equal(assigned, winners) {
		t.Errorf("the stream assigned %v, the 200 answers went to %v", assigned, winners)
	}
	if v := e.version("contoso"); v != maxVersion {
		t.Errorf("stream version %d, the highest version answered %d", v, maxVersion)
	}
	spb, _ := domain.DefaultCatalog().Lookup("SPB")
	var pool domain.Pool
	if err := e.cmds.View(context.Background(), "contoso", func(st *domain.Tenant) error { pool = st.Pool(spb.SkuID); return nil }); err != nil {
		t.Fatal(err)
	}
	if pool.Total != 15 || pool.Assigned != 15 {
		t.Errorf("tenant state: %d of %d SPB licenses assigned, want 15 of 15", pool.Assigned, pool.Total)
	}
}
