package reliability_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/internal/reliability"
	"github.com/seatledger/seatledger/tenantstream"
)

// raw sends one request to base and returns its status, body and headers.
func raw(t *testing.T, base, token, method, path, key, body string) (int, []byte, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set(api.HeaderIdempotencyKey, key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b, res.Header
}

// send sends a command of user (its token tk) with key and a raw body
// through cl, recorded in cl's ledger.
func send(cl *reliability.Client, tenant, user, tk, path, key, body string) (int, []byte, http.Header) {
	actor := domain.Actor{UserID: user}
	r := cl.Send(context.Background(), reliability.Entry{CommandID: api.CommandID(tenant, actor, key), Tenant: tenant, Actor: actor,
		Key: key, Method: "POST", Path: path, Body: []byte(body), Token: tk})
	return r.Status, r.Body, r.Header
}

// readAt asks node base for path with ?minVersion=v until the read
// models answer (a 503 is "not yet": asked again), and returns the 200's
// body and X-Tenant-Version.
func readAt(t *testing.T, base, token, path string, v uint64) ([]byte, uint64) {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, b, h := raw(t, base, token, "GET", fmt.Sprintf("%s%sminVersion=%d", path, sep, v), "", "")
		if code == http.StatusOK {
			got, _ := strconv.ParseUint(h.Get("X-Tenant-Version"), 10, 64)
			if got < v {
				t.Fatalf("GET %s?minVersion=%d answered X-Tenant-Version %d", path, v, got)
			}
			return b, got
		}
		if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("GET %s?minVersion=%d: %d %s", path, v, code, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// assigned is the assigned count of SPB in a /licenses answer.
func assigned(t *testing.T, b []byte) int {
	t.Helper()
	var rows []struct {
		SkuPartNumber string `json:"skuPartNumber"`
		Assigned      int    `json:"assigned"`
	}
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatalf("licenses %s: %v", b, err)
	}
	for _, r := range rows {
		if r.SkuPartNumber == "SPB" {
			return r.Assigned
		}
	}
	return 0
}

// TestTwoNodesOneTruth probes two real nodes on one PostgreSQL schema and
// one Redis: read-your-writes across nodes with minVersion, no read of a
// node going back in time, roles and deleted users seen by the other
// node's very next request, an Idempotency-Key honoured across nodes, and
// the last license raced through both.
func TestTwoNodesOneTruth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers")
	}
	c := newCluster(t, 2)
	ctx := context.Background()
	a, b := c.nodes[0], c.nodes[1]
	ca, cb := c.client(0), c.client(1)
	c.tenant("one", 8, 3)
	tk := tok(t, "one", "admin")

	t.Run("read your writes and monotonic reads", func(t *testing.T) {
		var lastB uint64 // the highest version b answered without minVersion
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // b read without minVersion all along
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, body, h := raw(t, b.base, tk, "GET", "/v1/tenants/one/licenses", "", "")
				if code != http.StatusOK {
					continue
				}
				v, _ := strconv.ParseUint(h.Get("X-Tenant-Version"), 10, 64)
				if v < lastB {
					t.Errorf("b answered version %d after %d: %s", v, lastB, body)
				}
				lastB = v
			}
		}()
		held := false
		for i := range 20 {
			path := "/v1/tenants/one/licenses/SPB/assign"
			if held {
				path = "/v1/tenants/one/licenses/SPB/unassign"
			}
			writer, reader := ca, b
			if i%2 == 1 {
				writer, reader = cb, a
			}
			v, _ := answer(t, writer.Command(ctx, "one", admin("one"), tk, "POST", path, map[string]any{"users": []string{"u0"}}))
			held = !held
			body, _ := readAt(t, reader.base, tk, "/v1/tenants/one/licenses", v)
			want := 0
			if held {
				want = 1
			}
			if got := assigned(t, body); got != want {
				t.Fatalf("write %d answered version %d; the other node at minVersion %d says %d assigned, want %d", i, v, v, got, want)
			}
		}
		close(stop)
		wg.Wait()
	})

	t.Run("a role removed on a is refused by b", func(t *testing.T) {
		grant, _ := answer(t, ca.Command(ctx, "one", admin("one"), tk, "PUT", "/v1/tenants/one/users/u1/roles", map[string]any{"roles": []string{"LicenseAdministrator"}}))
		u1 := tok(t, "one", "u1")
		_ = grant
		// b serves u1 once (its cache now holds the role).
		if code, body, _ := send(cb, "one", "u1", u1, "/v1/tenants/one/licenses/SPB/assign", reliability.NewKey(), `{"users":["u2"]}`); code/100 != 2 {
			t.Fatalf("u1 as License admin assigns on b: %d %s", code, body)
		}
		answer(t, ca.Command(ctx, "one", admin("one"), tk, "PUT", "/v1/tenants/one/users/u1/roles", map[string]any{"roles": []string{}}))
		if code, body, _ := send(cb, "one", "u1", u1, "/v1/tenants/one/licenses/SPB/unassign", reliability.NewKey(), `{"users":["u2"]}`); code != http.StatusForbidden {
			t.Fatalf("u1's role removed on a; b's next command: %d %s", code, body)
		}
		if code, body, _ := send(cb, "one", "u1", u1, "/v1/tenants/one/licenses/SPB/assign", reliability.NewKey(), `{"users":["u2"]}`); code != http.StatusForbidden {
			t.Fatalf("u1's role removed on a; b's no-op command: %d %s", code, body)
		}
		if code, body, _ := raw(t, b.base, u1, "GET", "/v1/tenants/one/licenses", "", ""); code != http.StatusForbidden {
			t.Fatalf("u1's role removed on a; b's next query: %d %s", code, body)
		}
	})

	t.Run("a user deleted on a", func(t *testing.T) {
		answer(t, ca.Command(ctx, "one", admin("one"), tk, "PUT", "/v1/tenants/one/users/u3/roles", map[string]any{"roles": []string{"LicenseAdministrator"}}))
		u3 := tok(t, "one", "u3")
		// b caches u3 as an active License admin.
		if code, body, _ := raw(t, b.base, u3, "GET", "/v1/tenants/one/me", "", ""); code != http.StatusOK && code != http.StatusServiceUnavailable {
			t.Fatalf("u3's /me on b: %d %s", code, body)
		}
		if code, body, _ := send(cb, "one", "u3", u3, "/v1/tenants/one/licenses/SPB/assign", reliability.NewKey(), `{"users":["u3"]}`); code/100 != 2 {
			t.Fatalf("u3 assigns on b: %d %s", code, body)
		}
		answer(t, ca.Command(ctx, "one", admin("one"), tk, "DELETE", "/v1/tenants/one/users/u3", nil))
		if code, body, _ := raw(t, b.base, u3, "GET", "/v1/tenants/one/me", "", ""); code != http.StatusNotFound {
			t.Fatalf("u3 deleted on a; b's /me: %d %s", code, body)
		}
		for _, req := range []struct{ path, body string }{
			{"/v1/tenants/one/licenses/SPB/assign", `{"users":["u4"]}`},
			{"/v1/tenants/one/licenses/SPB/unassign", `{"users":["u2"]}`},
		} {
			if code, body, _ := send(cb, "one", "u3", u3, req.path, reliability.NewKey(), req.body); code != http.StatusForbidden && code != http.StatusUnauthorized && code != http.StatusNotFound {
				t.Fatalf("u3 deleted on a; b's command %s by u3: %d %s", req.path, code, body)
			}
		}
		// The admin's writes for the deleted user on b.
		if code, body, _ := send(cb, "one", "admin", tk, "/v1/tenants/one/licenses/SPB/assign", reliability.NewKey(), `{"users":["u3"]}`); code/100 == 2 {
			t.Fatalf("u3 deleted on a; b assigns u3 a license: %d %s", code, body)
		}
	})

	t.Run("an Idempotency-Key sent to a then b", func(t *testing.T) {
		key := reliability.NewKey()
		body := `{"users":["u5"]}`
		codeA, bodyA, _ := send(ca, "one", "admin", tk, "/v1/tenants/one/licenses/SPB/assign", key, body)
		if codeA/100 != 2 {
			t.Fatalf("first on a: %d %s", codeA, bodyA)
		}
		codeB, bodyB, h := send(cb, "one", "admin", tk, "/v1/tenants/one/licenses/SPB/assign", key, `{ "users" : [ "u5" ] }`)
		if codeB != codeA || h.Get("Idempotent-Replayed") != "true" || !bytes.Equal(bytes.TrimSpace(bodyA), bytes.TrimSpace(bodyB)) {
			t.Fatalf("same key, same body on b: %d %q (replayed %q), first %d %q", codeB, bodyB, h.Get("Idempotent-Replayed"), codeA, bodyA)
		}
		head := c.head("one")
		codeC, bodyC, _ := raw(t, b.base, tk, "POST", "/v1/tenants/one/licenses/SPB/assign", key, `{"users":["u6"]}`)
		if codeC != http.StatusConflict || !strings.Contains(string(bodyC), "idempotency_key_reused") || c.head("one") != head {
			t.Fatalf("same key, other body on b: %d %s (head %d → %d)", codeC, bodyC, head, c.head("one"))
		}
		// Other body first on b (no cache of the key there yet) after a new key on a.
		key2 := reliability.NewKey()
		if code, body, _ := send(ca, "one", "admin", tk, "/v1/tenants/one/licenses/SPB/unassign", key2, `{"users":["u5"]}`); code/100 != 2 {
			t.Fatalf("unassign on a: %d %s", code, body)
		}
		head = c.head("one")
		if code, body, _ := raw(t, b.base, tk, "POST", "/v1/tenants/one/licenses/SPB/unassign", key2, `{"users":["u2"]}`); code != http.StatusConflict || c.head("one") != head {
			t.Fatalf("key2 with another body on b: %d %s (head %d → %d)", code, body, head, c.head("one"))
		}
	})

	t.Run("graph reads on b see a's write", func(t *testing.T) {
		for i := range 10 {
			path, want := "/v1/tenants/one/licenses/SPB/assign", true
			if i%2 == 1 {
				path, want = "/v1/tenants/one/licenses/SPB/unassign", false
			}
			answer(t, ca.Command(ctx, "one", admin("one"), tk, "POST", path, map[string]any{"users": []string{"u7"}}))
			code, body, _ := raw(t, b.base, tk, "GET", "/v1.0/users/u7", "", "")
			if code != http.StatusOK {
				t.Fatalf("graph user on b: %d %s", code, body)
			}
			if got := strings.Contains(string(body), skuOf(t, "SPB")); got != want {
				t.Fatalf("write %d on a; b's graph read holds SPB: %v: %s", i, got, body)
			}
		}
	})

	t.Run("a tenant b saw missing", func(t *testing.T) {
		tk := tok(t, "later", "admin")
		for _, path := range []string{"/v1/tenants/later/licenses", "/v1/tenants/later/me", "/v1.0/users", "/v1/tenants/later/audit"} {
			if code, body, _ := raw(t, b.base, tk, "GET", path, "", ""); code/100 == 2 {
				t.Fatalf("GET %s of a tenant not created: %d %s", path, code, body)
			}
		}
		if code, body, _ := send(cb, "later", "admin", tk, "/v1/tenants/later/subscriptions", reliability.NewKey(), `{"id":"s1","skuId":"SPB","quantity":1}`); code != http.StatusNotFound {
			t.Fatalf("a purchase on b for a tenant not created: %d %s", code, body)
		}
		created, _ := answer(t, ca.Command(ctx, "later", opActor, operator, "POST", "/v1/tenants",
			map[string]any{"id": "later", "name": "later", "globalAdmin": map[string]string{"id": "admin", "userPrincipalName": "admin@later.example", "usageLocation": "US"}}))
		if code, body, _ := raw(t, b.base, tk, "GET", "/v1.0/users", "", ""); code != http.StatusOK {
			t.Fatalf("graph users on b of a tenant just created on a: %d %s", code, body)
		}
		if code, body, _ := send(cb, "later", "admin", tk, "/v1/tenants/later/subscriptions", reliability.NewKey(), `{"id":"s1","skuId":"SPB","quantity":1}`); code/100 != 2 {
			t.Fatalf("a purchase on b for a tenant just created on a: %d %s", code, body)
		}
		readAt(t, b.base, tk, "/v1/tenants/later/me", created)
	})

	t.Run("what a just made is never missing on b", func(t *testing.T) {
		for i := range 15 {
			uid, gid, sid := fmt.Sprintf("n%d", i), fmt.Sprintf("g%d", i), fmt.Sprintf("s-n%d", i)
			answer(t, ca.Command(ctx, "one", admin("one"), tk, "POST", "/v1/tenants/one/users", map[string]any{"id": uid, "userPrincipalName": uid + "@one.example"}))
			answer(t, ca.Command(ctx, "one", admin("one"), tk, "POST", "/v1/tenants/one/groups", map[string]any{"id": gid, "displayName": gid}))
			answer(t, ca.Command(ctx, "one", admin("one"), tk, "POST", "/v1/tenants/one/subscriptions", map[string]any{"id": sid, "skuId": "SPE_E3", "quantity": 1}))
			for _, q := range []struct{ token, path string }{
				{tk, "/v1/tenants/one/users/" + uid},
				{tk, "/v1/tenants/one/groups/" + gid},
				{tk, "/v1/tenants/one/subscriptions/" + sid},
				{tk, "/v1/tenants/one/licenses/SPE_E3"},
				{tok(t, "one", uid), "/v1/tenants/one/me"},
			} {
				if code, body, _ := raw(t, b.base, q.token, "GET", q.path, "", ""); code != http.StatusOK && code != http.StatusServiceUnavailable {
					t.Fatalf("GET %s on b right after a made it: %d %s", q.path, code, body)
				}
			}
		}
	})

	t.Run("the last license raced through both nodes", func(t *testing.T) {
		for round := range 5 {
			// Free every license, then leave exactly one.
			for _, u := range []string{"u0", "u2", "u4", "u5", "u6", "u7"} {
				ca.Command(ctx, "one", admin("one"), tk, "POST", "/v1/tenants/one/licenses/SPB/unassign", map[string]any{"users": []string{u}})
			}
			answer(t, cb.Command(ctx, "one", admin("one"), tk, "POST", "/v1/tenants/one/licenses/SPB/assign", map[string]any{"users": []string{"u0", "u2"}}))
			var wg sync.WaitGroup
			var mu sync.Mutex
			won := 0
			for i, u := range []string{"u4", "u5", "u6", "u7", "u4", "u5"} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cl := ca
					if i%2 == 1 {
						cl = cb
					}
					r := cl.Command(ctx, "one", admin("one"), tk, "POST", "/v1/tenants/one/licenses/SPB/assign", map[string]any{"users": []string{u}})
					if r.Status/100 == 2 {
						if _, types := answer(t, r); changed(types) {
							mu.Lock()
							won++
							mu.Unlock()
						}
					} else if r.Status != http.StatusConflict {
						t.Errorf("assign %s: %d %s", u, r.Status, r.Body)
					}
				}()
			}
			wg.Wait()
			if won != 1 {
				t.Fatalf("round %d: %d assigns of the last license changed the tenant", round, won)
			}
			body, _ := readAt(t, b.base, tk, "/v1/tenants/one/licenses", c.head("one"))
			if got := assigned(t, body); got != 3 {
				t.Fatalf("round %d: %d assigned of 3", round, got)
			}
		}
	})
	c.check(true)
}

// TestProjectionLeaseHolderKilled kills the node holding the projection's
// lease (SIGKILL) while the other writes: the other takes the lease, and
// its read models catch up with nothing lost or doubled.
func TestProjectionLeaseHolderKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers and kills one")
	}
	c := newCluster(t, 2)
	ctx := context.Background()
	c.tenant("lease", 10, 10)
	tk := tok(t, "lease", "admin")
	holder, victim := c.leaseHolder(t)
	survivor := 1 - victim
	cs := c.client(survivor)
	stop := c.load("lease", tk, 10, 4, 3, 0, nil)
	time.Sleep(500 * time.Millisecond)
	c.nodes[victim].kill()
	stop()
	for _, e := range c.ledger.InDoubt() {
		cs.Send(ctx, e)
	}
	v, _ := answer(t, cs.Command(ctx, "lease", admin("lease"), tk, "POST", "/v1/tenants/lease/users", map[string]any{"id": "late", "userPrincipalName": "late@lease.example"}))
	readAt(t, c.nodes[survivor].base, tk, "/v1/tenants/lease/users/late", v)
	if h, _ := c.rdb.Get(ctx, leaseKey).Result(); h == holder {
		t.Fatalf("the killed node %q still holds the lease", h)
	}
	c.check(true)
}

// TestTwoNodesSameKeyAtOnce sends copies of one keyed request through both
// nodes at the same moment: same body, both get the one answer; another
// body, one is decided and the other is refused; the log holds one
// decision either way.
func TestTwoNodesSameKeyAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers")
	}
	c := newCluster(t, 2)
	c.tenant("keys", 6, 3)
	tk := tok(t, "keys", "admin")
	paths := []string{"/v1/tenants/keys/licenses/SPB/assign", "/v1/tenants/keys/licenses/SPB/unassign"}
	raws := map[string]bool{} // command ids sent past the ledger
	for round := range 40 {
		key := reliability.NewKey()
		path := paths[round%2]
		u := fmt.Sprintf("u%d", round%6)
		same := round%4 < 2
		bodies := [2]string{fmt.Sprintf(`{"users":[%q]}`, u), fmt.Sprintf(`{"users":[%q]}`, u)}
		if !same {
			bodies[1] = fmt.Sprintf(`{"users":[%q]}`, fmt.Sprintf("u%d", (round+1)%6))
			raws[api.CommandID("keys", admin("keys"), key)] = true
		}
		head := c.head("keys")
		var wg sync.WaitGroup
		var codes [2]int
		var answers [2][]byte
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if same {
					codes[i], answers[i], _ = send(c.client(i), "keys", "admin", tk, path, key, bodies[i])
				} else {
					codes[i], answers[i], _ = raw(t, c.nodes[i].base, tk, "POST", path, key, bodies[i])
				}
			}()
		}
		wg.Wait()
		var acked []api.CommandAnswer
		for i := range 2 {
			if codes[i]/100 == 2 {
				var a api.CommandAnswer
				if err := json.Unmarshal(answers[i], &a); err != nil {
					t.Fatal(err)
				}
				acked = append(acked, a)
			}
		}
		if same {
			// The ledger checks that both copies got one answer.
			continue
		}
		// Two bodies: at most one decided; the other copy is refused as a
		// reused key, or on its own merits (decided first, wrote nothing).
		switch len(acked) {
		case 2:
			t.Errorf("round %d: one key, two bodies, both acknowledged: %s / %s", round, answers[0], answers[1])
		case 1:
			for i := range 2 {
				if codes[i]/100 != 2 && codes[i]/100 != 4 {
					t.Errorf("round %d: %d %s", round, codes[i], answers[i])
				}
			}
			if got := c.head("keys"); got != acked[0].Version || got-head != uint64(len(acked[0].Events)) {
				t.Errorf("round %d: acknowledged version %d with %d events; the head went %d → %d", round, acked[0].Version, len(acked[0].Events), head, got)
			}
		default:
			if got := c.head("keys"); got != head {
				t.Errorf("round %d: both refused (%d, %d); the head went %d → %d", round, codes[0], codes[1], head, got)
			}
		}
	}
	c.accept = func(id string) bool { return raws[id] || purgeCommand(id) }
	c.check(true)
}

// TestTwoNodesReadsAcrossARebuild has one node rebuild the read models
// into a fresh prefix while both take writes and the other reads without
// minVersion: that node never answers an older version than it did, and
// after the swap the last write is read there with minVersion.
func TestTwoNodesReadsAcrossARebuild(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers")
	}
	c := newCluster(t, 2)
	c.tenant("swap", 20, 10)
	tk := tok(t, "swap", "admin")
	b := c.nodes[1]
	stopLoad := c.load("swap", tk, 20, 4, 5, time.Millisecond, nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var answered, unavailable int
	wg.Add(1)
	go func() {
		defer wg.Done()
		var last uint64
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, path := range []string{"/v1/tenants/swap/licenses", "/v1/tenants/swap/users/u1", "/v1/tenants/swap/users"} {
				code, body, h := raw(t, b.base, tk, "GET", path, "", "")
				if code == http.StatusServiceUnavailable {
					unavailable++
					continue
				}
				if code != http.StatusOK {
					t.Errorf("GET %s on b: %d %s", path, code, body)
					continue
				}
				answered++
				v, _ := strconv.ParseUint(h.Get("X-Tenant-Version"), 10, 64)
				if v < last {
					t.Errorf("b answered %s at version %d after %d", path, v, last)
				}
				last = max(last, v)
			}
		}
	}()
	for range 2 {
		code, body, _ := raw(t, c.nodes[0].base, operator, "POST", "/v1/projections/rebuild", "", "")
		if code != http.StatusOK {
			t.Fatalf("rebuild on a: %d %s", code, body)
		}
	}
	stopLoad()
	v, _ := answer(t, c.client(0).Command(context.Background(), "swap", admin("swap"), tk, "POST", "/v1/tenants/swap/users", map[string]any{"id": "last", "userPrincipalName": "last@swap.example"}))
	readAt(t, b.base, tk, "/v1/tenants/swap/users/last", v)
	close(stop)
	wg.Wait()
	t.Logf("b: %d answers, %d × 503", answered, unavailable)
	c.check(true)
}

// TestProjectionLeaseHolderPaused stops the lease holder (SIGSTOP) past its
// lease while the other node writes, then lets it run again: two nodes
// may then both believe they project; the read models must still equal
// the fold of the log.
func TestProjectionLeaseHolderPaused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers and pauses one")
	}
	c := newCluster(t, 2)
	ctx := context.Background()
	c.tenant("pause", 10, 10)
	tk := tok(t, "pause", "admin")
	holder, victim := c.leaseHolder(t)
	survivor := 1 - victim
	// Load through the victim too, so that it holds unflushed work when
	// it stops.
	stop := c.load("pause", tk, 10, 4, 9, 0, nil)
	time.Sleep(300 * time.Millisecond)
	resume := c.pause(t, victim)
	waitFor(t, "another lease holder", func() bool {
		h, _ := c.rdb.Get(ctx, leaseKey).Result()
		return h != "" && h != holder
	})
	// The survivor's workers wrote meanwhile; the victim's are stuck.
	time.Sleep(time.Second)
	resume()
	time.Sleep(time.Second)
	stop()
	cs := c.client(survivor)
	settle(t, cs, c.ledger)
	v, _ := answer(t, cs.Command(ctx, "pause", admin("pause"), tk, "POST", "/v1/tenants/pause/users", map[string]any{"id": "late", "userPrincipalName": "late@pause.example"}))
	for i := range c.nodes {
		readAt(t, c.nodes[i].base, tk, "/v1/tenants/pause/users/late", v)
	}
	c.check(true)
}

// TestTwoNodesReadYourWritesUnderLoad has workers write through one node
// and read what they wrote through the other with ?minVersion, while the
// others do the same: each worker owns its users, so the read must show
// its own last write; and no node answers a version older than one it had
// answered before the request was sent.
func TestTwoNodesReadYourWritesUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers under load")
	}
	c := newCluster(t, 2)
	const workers, perWorker = 6, 3
	c.tenant("ryw", workers*perWorker, workers*perWorker)
	tk := tok(t, "ryw", "admin")
	spb := skuOf(t, "SPB")
	var mu sync.Mutex
	answered := [2]uint64{} // the highest version each node answered a query at
	var wg sync.WaitGroup
	deadline := time.Now().Add(5 * time.Second)
	var reads, writes int
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			held := map[string]bool{}
			for i := 0; time.Now().Before(deadline); i++ {
				writer, reader := w%2, 1-w%2
				if i%2 == 1 {
					writer, reader = reader, writer
				}
				u := fmt.Sprintf("u%d", w*perWorker+i%perWorker)
				path := "/v1/tenants/ryw/licenses/SPB/assign"
				if held[u] {
					path = "/v1/tenants/ryw/licenses/SPB/unassign"
				}
				r := c.client(writer).Command(context.Background(), "ryw", admin("ryw"), tk, "POST", path, map[string]any{"users": []string{u}})
				if r.Status/100 != 2 {
					t.Errorf("%s %s: %d %s", path, u, r.Status, r.Body)
					return
				}
				a, _ := r.Answer()
				held[u] = !held[u]
				mu.Lock()
				floor := answered[reader]
				writes++
				mu.Unlock()
				q := fmt.Sprintf("/v1/tenants/ryw/users/%s", u)
				if i%3 == 0 { // now and then without minVersion: only monotonic
					code, body, h := raw(t, c.nodes[reader].base, tk, "GET", q, "", "")
					if code == http.StatusOK {
						v, _ := strconv.ParseUint(h.Get("X-Tenant-Version"), 10, 64)
						mu.Lock()
						if v < floor {
							t.Errorf("node %d answered %s at version %d; it had answered %d before", reader, q, v, floor)
						}
						answered[reader] = max(answered[reader], v)
						mu.Unlock()
					} else if code != http.StatusServiceUnavailable {
						t.Errorf("GET %s: %d %s", q, code, body)
					}
					continue
				}
				body, v := readAt(t, c.nodes[reader].base, tk, q, a.Version)
				mu.Lock()
				if v < floor {
					t.Errorf("node %d answered %s at version %d; it had answered %d before", reader, q, v, floor)
				}
				answered[reader] = max(answered[reader], v)
				reads++
				mu.Unlock()
				if has := strings.Contains(string(body), spb); has != held[u] {
					t.Errorf("node %d at minVersion %d (answered %d): %s holds SPB %v, want %v: %s", reader, a.Version, v, u, has, held[u], body)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d writes, %d reads at minVersion", writes, reads)
	c.check(true)
}

// TestPurgesOnceWhenTheLeaseHolderDies kills the projection's lease holder
// (SIGKILL) while held data falls due within seconds: every hold that was
// not released is purged exactly once by the nodes left.
func TestPurgesOnceWhenTheLeaseHolderDies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers and kills one")
	}
	c := newCluster(t, 3, "SEATLEDGER_DATA_HOLD_PERIOD=2s", "SEATLEDGER_SCHEDULER_INTERVAL=200ms")
	ctx := context.Background()
	c.tenant("due", 20, 20)
	tk := tok(t, "due", "admin")
	stop := c.load("due", tk, 20, 6, 13, 5*time.Millisecond, nil)
	time.Sleep(2500 * time.Millisecond) // the first holds fall due
	_, victim := c.leaseHolder(t)
	c.nodes[victim].kill()
	time.Sleep(1500 * time.Millisecond)
	stop()
	settle(t, c.client((victim+1)%3), c.ledger)
	waitFor(t, "every hold released or purged", func() bool {
		open, twice := holds(t, c.store, "due")
		if twice != "" {
			t.Fatalf("%s was purged twice", twice)
		}
		return open == 0
	})
	recs, err := c.store.ReadStream(ctx, tenantstream.Name("due"), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	purged := 0
	for _, r := range recs {
		if r.Type == domain.TypeHeldDataPurged {
			purged++
		}
	}
	if purged == 0 {
		t.Fatal("nothing was purged: the scenario proves nothing")
	}
	t.Logf("%d holds purged once each", purged)
	c.check(true)
}

// TestPausedLeaseHolderAfterRedisLost pauses the projection's lease holder
// (SIGSTOP) under load, empties Redis (FLUSHDB) while it sleeps, lets the
// other node take the lease and rebuild, then wakes the sleeper with what
// it had staged: the read models must still equal the fold of the log.
func TestPausedLeaseHolderAfterRedisLost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers, pauses one and flushes Redis")
	}
	c := newCluster(t, 2)
	ctx := context.Background()
	c.tenant("sleep", 20, 20)
	tk := tok(t, "sleep", "admin")
	_, victim := c.leaseHolder(t)
	survivor := 1 - victim
	stop := c.load("sleep", tk, 20, 4, 17, 0, nil)
	time.Sleep(500 * time.Millisecond)
	resume := c.pause(t, victim)
	if err := c.rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the survivor ready again", func() bool {
		res, err := http.Get(c.nodes[survivor].base + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	resume()
	time.Sleep(2 * time.Second)
	stop()
	settle(t, c.client(survivor), c.ledger)
	c.check(true)
}

// leaseKey is the Redis key naming the projection lease's holder.
const leaseKey = "sl:{lease:projection:readmodels}:holder"

// leaseHolder waits for the projection's lease to have a holder and
// returns it with the index of its node.
func (c *cluster) leaseHolder(t *testing.T) (holder string, node int) {
	t.Helper()
	waitFor(t, "a lease holder", func() bool {
		holder, _ = c.rdb.Get(context.Background(), leaseKey).Result()
		return holder != ""
	})
	for i := range c.nodes {
		if strings.HasPrefix(holder, fmt.Sprintf("node%d:", i)) || holder == fmt.Sprintf("node%d", i) {
			return holder, i
		}
	}
	t.Fatalf("lease holder %q is none of the nodes", holder)
	return "", -1
}

// pause stops node i (SIGSTOP) and returns what lets it run again. The
// test's cleanup lets it run too, so a failed test leaves no stopped
// process behind.
func (c *cluster) pause(t *testing.T, i int) (resume func()) {
	t.Helper()
	p := c.nodes[i].cmd.Process
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Signal(syscall.SIGCONT) })
	return func() {
		t.Helper()
		if err := p.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
}
