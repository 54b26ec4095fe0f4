package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/queries"
	"github.com/seatledger/seatledger/readmodel"
	"github.com/seatledger/seatledger/scheduler"
)

const tday = 24 * time.Hour

// termsEnv is an env with the query routes over an in-process Redis kept
// by the projection, and the scheduler with its command bus, all on the
// env's clock (the real time plus e.offset): a test moves time by moving
// the offset, and ticks the scheduler.
type termsEnv struct {
	*env
	proj  *projections.Projection
	sched *scheduler.Scheduler
	admin string
}

func newTermsEnv(t *testing.T) *termsEnv {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	e := newEnv(t, func(c *api.Config) { c.Queries = queries.New(queries.Config{Redis: rdb}) })
	proj, err := projections.New(projections.Config{Store: e.store, Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pubsub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	if err := scheduler.AddProcessor(router, func(string) (message.Subscriber, error) { return pubsub, nil }, e.cmds, nil); err != nil {
		t.Fatal(err)
	}
	projDone, routerDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(projDone); _ = proj.Run(ctx) }()
	go func() { defer close(routerDone); _ = router.Run(ctx) }()
	<-router.Running()
	bus, err := scheduler.NewBus(pubsub)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-projDone; <-routerDone })
	rs := scheduler.RedisSchedule{RDB: rdb}
	s := scheduler.New(scheduler.Config{Schedule: rs, Lifecycle: rs, Bus: bus,
		Clock: func() time.Time { return time.Now().Add(time.Duration(e.offset.Load())) }})
	e.createTenant("contoso")
	return &termsEnv{env: e, proj: proj, sched: s, admin: token(t, "contoso", "admin")}
}

// later moves the clock of the commands and the scheduler on by d.
func (e *termsEnv) later(d time.Duration) { e.offset.Add(int64(d)) }

// synced waits until the read models applied every event.
func (e *termsEnv) synced() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.proj.WaitFor(ctx, e.store.LastPosition()); err != nil {
		e.t.Fatal(err)
	}
}

// tick runs the scheduler once on synced read models and waits until
// contoso's stream grew by want events (want 0: nothing may be due).
func (e *termsEnv) tick(want uint64) {
	e.t.Helper()
	e.synced()
	before := e.version("contoso")
	n, err := e.sched.TickSubscriptions(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	if want == 0 && n != 0 {
		e.t.Fatalf("the scheduler sent %d subscriptions with nothing due", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.version("contoso") < before+want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := e.version("contoso") - before; got != want {
		e.t.Fatalf("the scheduler appended %d events, want %d", got, want)
	}
	e.synced()
}

// subscription reads GET /subscriptions/{id} once the read models are synced.
func (e *termsEnv) subscription(id string) (readmodel.SubscriptionRow, map[string]any) {
	e.t.Helper()
	e.synced()
	r := e.must(http.StatusOK, req{Method: "GET", Path: "/v1/tenants/contoso/subscriptions/" + id, Token: e.admin})
	var row readmodel.SubscriptionRow
	if err := json.Unmarshal(r.Body, &row); err != nil {
		e.t.Fatal(err)
	}
	return row, r.JSON(e.t)
}

// eventData returns the data of the answer's first event of type typ.
func eventData(t *testing.T, r resp, typ string) map[string]any {
	t.Helper()
	for _, raw := range r.answer(t).Events {
		var ev struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type == typ {
			return ev.Data
		}
	}
	t.Fatalf("no %s event in %s", typ, r.Body)
	return nil
}

// TestCancelWithinTheWindowOverHTTP: POST …/cancel refunds and disables a
// subscription within 168 h of its purchase; after that it is a problem
// that says to turn off recurring billing, which PATCH does (R16).
func TestCancelWithinTheWindowOverHTTP(t *testing.T) {
	e := newTermsEnv(t)
	const c = "/v1/tenants/contoso/subscriptions"
	e.must(201, req{Method: "POST", Path: c, Token: e.admin, Body: `{"id":"early","skuId":"SPB","quantity":5}`})
	e.must(201, req{Method: "POST", Path: c, Token: e.admin, Body: `{"id":"late","skuId":"SPB","quantity":5}`})
	late, raw := e.subscription("late")
	if late.Term != "P1Y" || !late.RecurringBilling || !late.CancellationWindowEnd.Equal(late.TermStart.Add(168*time.Hour)) ||
		!late.TermEnd.Equal(late.TermStart.AddDate(1, 0, 0)) || late.Status != "Enabled" {
		t.Fatalf("a purchase's term: %s", raw)
	}

	e.later(6 * tday)
	r := e.must(200, req{Method: "POST", Path: c + "/early/cancel", Token: e.admin})
	if d := eventData(t, r, domain.TypeSubscriptionCancelled); d["refund"] != true || d["previous"] != "Enabled" {
		t.Fatalf("a cancel within the window refunds: %v", d)
	}
	if early, _ := e.subscription("early"); early.Status != "Disabled" || early.RecurringBilling || early.DeleteAt.IsZero() {
		t.Fatalf("a cancelled subscription: %+v", early)
	}
	problem(t, e.do(req{Method: "POST", Path: c + "/early/cancel", Token: e.admin}), 400, "invalid_request")

	e.later(2 * tday) // 8 days after the purchase
	p := problem(t, e.do(req{Method: "POST", Path: c + "/late/cancel", Token: e.admin}), 409, "cancellation_window_passed")
	if p["rule"] != "R16" || !strings.Contains(p["detail"].(string), "turn off recurring billing") ||
		p["type"] != domain.ProblemTypeBase+"cancellation_window_passed" {
		t.Fatalf("outside the window: %v", p)
	}
	r = e.must(200, req{Method: "PATCH", Path: c + "/late", Token: e.admin, Body: `{"recurringBilling":false}`})
	if d := eventData(t, r, domain.TypeSubscriptionRecurringBillingSet); d["enabled"] != false {
		t.Fatalf("%v", d)
	}
	if late, _ := e.subscription("late"); late.RecurringBilling || late.Status != "Enabled" {
		t.Fatalf("recurring billing off, the subscription runs to its term's end: %+v", late)
	}

	// Bodies: one change per PATCH, a term that exists; a non-billing admin
	// cannot cancel; the old PATCH {"status":"Deleted"} still deletes.
	problem(t, e.do(req{Method: "PATCH", Path: c + "/late", Token: e.admin, Body: `{"recurringBilling":true,"quantity":3}`}), 400, "invalid_request")
	problem(t, e.do(req{Method: "PATCH", Path: c + "/late", Token: e.admin, Body: `{"recurringBilling":"yes"}`}), 400, "invalid_request")
	pr := problem(t, e.do(req{Method: "POST", Path: c, Token: e.admin, Body: `{"id":"w","skuId":"SPB","quantity":1,"term":"P2W"}`}), 400, "invalid_request")
	if pr["field"] != "term" {
		t.Fatalf("%v", pr)
	}
	e.addUser("contoso", "admin", "lena", "US", "Member")
	e.must(200, req{Method: "PUT", Path: "/v1/tenants/contoso/users/lena/roles", Token: e.admin, Body: `{"roles":["LicenseAdministrator"]}`})
	e.must(201, req{Method: "POST", Path: c, Token: e.admin, Body: `{"id":"fresh","skuId":"SPB","quantity":1}`})
	problem(t, e.do(req{Method: "POST", Path: c + "/fresh/cancel", Token: token(t, "contoso", "lena")}), 403, "not_allowed_for_role")
	problem(t, e.do(req{Method: "POST", Path: c + "/nope/cancel", Token: e.admin}), 404, "not_found")
	e.must(200, req{Method: "PATCH", Path: c + "/late", Token: e.admin, Body: `{"status":"Deleted"}`})
	if late, _ := e.subscription("late"); late.Status != "Deleted" {
		t.Fatalf("PATCH status Deleted: %+v", late)
	}
	problem(t, e.do(req{Method: "GET", Path: c + "/nope", Token: e.admin}), 404, "not_found")
}

// TestTermLifecycleOverHTTP: with recurring billing off a term ends
// Expired (the licenses still count), 30 days later Disabled (assigned,
// out of the total), 90 days later Deleted; with it on the term renews.
// The scheduler drives it on the injected clock; the subscription view,
// the Licenses page and time travel show it (R17).
func TestTermLifecycleOverHTTP(t *testing.T) {
	e := newTermsEnv(t)
	const c = "/v1/tenants/contoso"
	e.addUser("contoso", "admin", "alice", "US", "Member")
	e.addUser("contoso", "admin", "bob", "US", "Member")
	e.must(201, req{Method: "POST", Path: c + "/subscriptions", Token: e.admin, Body: `{"id":"m","skuId":"SPB","quantity":1,"term":"P1M","recurringBilling":false}`})
	e.must(201, req{Method: "POST", Path: c + "/subscriptions", Token: e.admin, Body: `{"id":"keep","skuId":"EXCHANGESTANDARD","quantity":2,"term":"P1M"}`})
	e.must(201, req{Method: "POST", Path: c + "/subscriptions", Token: e.admin, Body: `{"id":"try","skuId":"POWER_BI_PRO","quantity":3,"kind":"Trial"}`})
	e.must(200, req{Method: "POST", Path: c + "/licenses/SPB/assign", Token: e.admin, Body: `{"users":["alice"]}`})
	m, _ := e.subscription("m")
	keep, _ := e.subscription("keep")
	try, raw := e.subscription("try")
	if d := m.TermEnd.Sub(m.TermStart); m.Term != "P1M" || m.RecurringBilling || d < 28*tday || d > 31*tday {
		t.Fatalf("monthly without billing: %+v", m)
	}
	if try.RecurringBilling || !try.TrialEnd.Equal(try.TermStart.Add(30*tday)) || raw["cancellationWindowEnd"] != nil {
		t.Fatalf("a trial: %s", raw)
	}
	// The list answers the same rows.
	var rows []readmodel.SubscriptionRow
	if err := json.Unmarshal(e.must(200, req{Method: "GET", Path: c + "/subscriptions", Token: e.admin}).Body, &rows); err != nil || len(rows) != 3 || rows[0] != keep {
		t.Fatalf("list: %v %+v", err, rows)
	}
	e.tick(0) // nothing due yet

	// The end of the term: m Expired, keep renewed, the trial (30 days) Expired.
	e.offset.Store(int64(m.TermEnd.Sub(m.TermStart) + time.Minute))
	e.tick(3)
	m, _ = e.subscription("m")
	if m.Status != "Expired" || !m.DisableAt.Equal(m.TermEnd.Add(30*tday)) {
		t.Fatalf("expired: %+v", m)
	}
	if k, _ := e.subscription("keep"); k.Status != "Enabled" || !k.TermStart.Equal(keep.TermEnd) || !k.TermEnd.After(keep.TermEnd) ||
		!k.CancellationWindowEnd.Equal(keep.TermEnd.Add(168*time.Hour)) {
		t.Fatalf("renewed: %+v (was %+v)", k, keep)
	}
	// A renewal opens a new cancellation window (R16).
	r := e.must(200, req{Method: "POST", Path: c + "/subscriptions/keep/cancel", Token: e.admin})
	if d := eventData(t, r, domain.TypeSubscriptionCancelled); d["refund"] != true {
		t.Fatalf("cancelled after its renewal: %v", d)
	}
	licenseTotal := func() (total, assigned int) {
		var rows []readmodel.LicenseRow
		_ = json.Unmarshal(e.must(200, req{Method: "GET", Path: c + "/licenses", Token: e.admin}).Body, &rows)
		for _, r := range rows {
			if r.SkuPartNumber == "SPB" {
				return r.Total, r.Assigned
			}
		}
		return -1, -1
	}
	if total, assigned := licenseTotal(); total != 1 || assigned != 1 {
		t.Fatalf("an Expired subscription still counts: %d/%d", assigned, total)
	}
	e.tick(0) // a second tick finds nothing due: nothing appended

	// 30 days on: Disabled. Alice keeps the license; it leaves the total.
	e.later(30 * tday)
	e.tick(2) // m Disabled, and the trial too
	if m, _ = e.subscription("m"); m.Status != "Disabled" || !m.DeleteAt.Equal(m.TermEnd.Add(120*tday)) || !m.DisableAt.IsZero() {
		t.Fatalf("disabled: %+v", m)
	}
	if total, assigned := licenseTotal(); total != 0 || assigned != 1 {
		t.Fatalf("a Disabled subscription's licenses stay assigned, out of the total: %d/%d", assigned, total)
	}
	alice := e.must(200, req{Method: "GET", Path: c + "/users/alice", Token: e.admin})
	if !strings.Contains(string(alice.Body), `"skuPartNumber":"SPB"`) {
		t.Fatalf("alice lost her license: %s", alice.Body)
	}
	problem(t, e.do(req{Method: "POST", Path: c + "/licenses/SPB/assign", Token: e.admin, Body: `{"users":["bob"]}`}), 409, "insufficient_licenses")
	problem(t, e.do(req{Method: "PATCH", Path: c + "/subscriptions/m", Token: e.admin, Body: `{"quantity":5}`}), 400, "invalid_request")

	// 90 days on: Deleted (the cancelled one too), and the scheduler has
	// nothing more to do for them.
	e.later(90 * tday)
	e.tick(3)
	e.later(400 * tday)
	e.tick(0)
	if m, _ = e.subscription("m"); m.Status != "Deleted" {
		t.Fatalf("deleted: %+v", m)
	}
	// Time travel shows the term at a past point.
	st := e.must(200, req{Method: "GET", Path: c + "/state?at=" + m.TermEnd.Add(tday).Format(time.RFC3339), Token: e.admin})
	var state struct {
		Subscriptions []struct {
			ID, Status string
			DisableAt  time.Time
		}
	}
	if err := json.Unmarshal(st.Body, &state); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range state.Subscriptions {
		if s.ID == "m" {
			found = s.Status == "Expired" && s.DisableAt.Equal(m.TermEnd.Add(30*tday))
		}
	}
	if !found {
		t.Fatalf("state a day after the term: %s", st.Body)
	}
}

// TestReactivateOverHTTP: PATCH recurringBilling true on a Disabled
// subscription starts a new term and gives the licenses back (R17).
func TestReactivateOverHTTP(t *testing.T) {
	e := newTermsEnv(t)
	const c = "/v1/tenants/contoso/subscriptions"
	e.must(201, req{Method: "POST", Path: c, Token: e.admin, Body: `{"id":"m","skuId":"SPB","quantity":4,"term":"P1M"}`})
	e.must(200, req{Method: "POST", Path: c + "/m/cancel", Token: e.admin})
	e.later(10 * tday)
	r := e.must(200, req{Method: "PATCH", Path: c + "/m", Token: e.admin, Body: `{"recurringBilling":true}`})
	d := eventData(t, r, domain.TypeSubscriptionRenewed)
	if d["reactivated"] != true || d["previous"] != "Disabled" {
		t.Fatalf("%v", d)
	}
	start, err := time.Parse(time.RFC3339Nano, fmt.Sprint(d["termStart"]))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := e.subscription("m")
	if m.Status != "Enabled" || !m.RecurringBilling || !m.DeleteAt.IsZero() || !m.TermStart.Equal(start) ||
		!m.CancellationWindowEnd.Equal(start.Add(168*time.Hour)) {
		t.Fatalf("reactivated: %+v, event %v", m, d)
	}
	var rows []readmodel.LicenseRow
	_ = json.Unmarshal(e.must(200, req{Method: "GET", Path: "/v1/tenants/contoso/licenses", Token: e.admin}).Body, &rows)
	if len(rows) != 1 || rows[0].Total != 4 {
		t.Fatalf("the licenses are back: %+v", rows)
	}
}
