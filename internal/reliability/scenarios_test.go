package reliability_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seatledger/seatledger/internal/reliability"
	"github.com/seatledger/seatledger/tenantstream"
)

// TestLoad: 64 clients send a mix of commands and queries over 1,000
// tenants (20 s; soak: 5 min), then every invariant holds.
func TestLoad(t *testing.T) {
	skipShort(t, "20 s of load over 1,000 tenants")
	const tenants, users, clients = 1000, 4, 64
	dur := pick(20*time.Second, 5*time.Minute)
	s := newStack(t, stackOpts{})
	l := reliability.NewLedger()
	setup := s.client(l)
	start := time.Now()
	parallel(tenants, clients, func(i int) { setupTenant(t, setup, fmt.Sprintf("load%04d", i), users, "SPB", 3) })
	t.Logf("setup: %d tenants in %s", tenants, time.Since(start).Round(time.Millisecond))

	c := s.client(l)
	ctx := context.Background()
	var stop atomic.Bool
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for !stop.Load() {
				tn := fmt.Sprintf("load%04d", rng.IntN(tenants))
				tk := tok(t, tn, "admin")
				u := fmt.Sprintf("u%d", rng.IntN(users))
				base := "/v1/tenants/" + tn
				switch op := rng.IntN(100); {
				case op < 30:
					c.Command(ctx, tn, admin(tn), tk, "POST", base+"/licenses/SPB/assign", map[string]any{"users": []string{u}})
				case op < 45:
					c.Command(ctx, tn, admin(tn), tk, "POST", base+"/licenses/SPB/unassign", map[string]any{"users": []string{u}})
				case op < 52:
					c.Command(ctx, tn, admin(tn), tk, "POST", base+"/users/manageLicenses",
						map[string]any{"users": []string{"u0", "u1", u}, "mode": "AssignMore", "addLicenses": []map[string]any{{"skuId": "SPB"}}})
				case op < 57:
					id := fmt.Sprintf("n%d", next.Add(1))
					c.Command(ctx, tn, admin(tn), tk, "POST", base+"/users", map[string]any{"id": id, "userPrincipalName": id + "@" + tn + ".example", "usageLocation": "US"})
				case op < 60:
					c.Command(ctx, tn, admin(tn), tk, "PATCH", base+"/subscriptions/s1", map[string]any{"quantity": 2 + rng.IntN(4)})
				case op < 75:
					c.Query(ctx, tk, base+"/licenses")
				case op < 90:
					c.Query(ctx, tk, base+"/users/"+u)
				default:
					c.Query(ctx, tk, base+"/users?limit=50")
				}
			}
		}()
	}
	time.Sleep(dur)
	stop.Store(true)
	wg.Wait()
	sum := c.Stats.Summary()
	t.Logf("load: %d clients, %d tenants, %s: %d requests (%.0f/s), p50 %s, p99 %s, error rate %.4f%%, by class %v",
		clients, tenants, dur, sum.Requests, float64(sum.Requests)/dur.Seconds(), sum.P50, sum.P99, 100*sum.ErrorRate, sum.By)
	if sum.ErrorRate > 0 {
		t.Errorf("error rate %.4f%% (5xx or no answer)", 100*sum.ErrorRate)
	}
	if n := len(l.InDoubt()); n > 0 {
		t.Errorf("%d commands in doubt without any fault injected", n)
	}
	rep := s.check(l)
	if rep.Acked < tenants*(users+2) {
		t.Fatalf("only %d acknowledged commands", rep.Acked)
	}
}

// TestContention: 500 concurrent single assignments and 20 overlapping bulk
// ones compete for the last 10 licenses of a product: exactly 10 licenses
// are given, every other request is refused 409 and writes nothing.
func TestContention(t *testing.T) {
	const quantity, preassigned, contenders = 100, 90, 500
	s := newStack(t, stackOpts{})
	l := reliability.NewLedger()
	c := s.client(l)
	tn := "race"
	setupTenant(t, c, tn, 0, "SPB", quantity)
	tk := tok(t, tn, "admin")
	parallel(preassigned+contenders, 16, func(i int) {
		id := fmt.Sprintf("u%d", i)
		must(t, c, tn, admin(tn), tk, "POST", "/v1/tenants/"+tn+"/users", map[string]any{"id": id, "userPrincipalName": id + "@race.example", "usageLocation": "US"})
	})
	for b := 0; b < preassigned; b += 18 {
		var us []string
		for i := b; i < b+18 && i < preassigned; i++ {
			us = append(us, fmt.Sprintf("u%d", i))
		}
		must(t, c, tn, admin(tn), tk, "POST", "/v1/tenants/"+tn+"/licenses/SPB/assign", map[string]any{"users": us})
	}
	ctx := context.Background()
	type res struct {
		r     reliability.Result
		users int
	}
	out := make([]res, contenders+20)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range contenders + 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			if i < contenders {
				u := fmt.Sprintf("u%d", preassigned+i)
				out[i] = res{c.Command(ctx, tn, admin(tn), tk, "POST", "/v1/tenants/"+tn+"/licenses/SPB/assign", map[string]any{"users": []string{u}}), 1}
				return
			}
			// Bulk of 5 users that single requests also ask for.
			var us []string
			for k := range 5 {
				us = append(us, fmt.Sprintf("u%d", preassigned+((i-contenders)*25+k*5)%contenders))
			}
			out[i] = res{c.Command(ctx, tn, admin(tn), tk, "POST", "/v1/tenants/"+tn+"/licenses/SPB/assign", map[string]any{"users": us}), 5}
		}()
	}
	close(gate)
	wg.Wait()
	assigned, ok, refused := 0, 0, map[string]int{}
	for _, o := range out {
		switch {
		case o.r.Status == http.StatusOK:
			ok++
			a, err := o.r.Answer()
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range a.Events {
				if contains(e, `"type":"LicenseAssigned"`) {
					assigned++
				}
			}
		case o.r.Status == http.StatusConflict:
			refused[o.r.Code()]++
		default:
			t.Errorf("status %d: %v %s", o.r.Status, o.r.Err, o.r.Body)
		}
	}
	t.Logf("contention: %d requests, %d succeeded, %d licenses given, refused %v", len(out), ok, assigned, refused)
	if assigned != quantity-preassigned {
		t.Errorf("%d licenses given, want exactly %d", assigned, quantity-preassigned)
	}
	st, err := tenantstream.Fold(ctx, s.store, nil, nil, tn, 0)
	if err != nil {
		t.Fatal(err)
	}
	for sku, p := range st.Pools {
		if p.Assigned != quantity || p.Total != quantity {
			t.Errorf("%s: assigned %d of %d, want %d of %d", sku, p.Assigned, p.Total, quantity, quantity)
		}
	}
	s.check(l)
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }
