package domain

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// scenario is the given/when/then helper: given a history (commands decided
// and applied, or raw events), when a command, then events or an error.
type scenario struct {
	t       *testing.T
	d       *Decider
	state   *Tenant
	history []Event
	now     time.Time
	seq     int
}

const tenantID = "contoso"

var day0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func newScenario(t *testing.T) *scenario {
	t.Helper()
	return &scenario{t: t, d: NewDecider(DefaultCatalog(), DefaultPolicy()), state: NewTenant(), now: day0}
}

// tenant is the common background: contoso with Global admin "admin" (US).
func tenant(t *testing.T) *scenario {
	s := newScenario(t)
	s.Given(&CreateTenant{CommandMeta: CommandMeta{Actor: Actor{Operator: true}}, Name: "Contoso",
		GlobalAdmin: NewUser{ID: "admin", UserPrincipalName: "admin@contoso.com", UsageLocation: "US"}})
	return s
}

func (s *scenario) prepare(cmd Command) {
	m := Meta(cmd)
	if m.TenantID == "" {
		m.TenantID = tenantID
	}
	if m.CommandID == "" {
		s.seq++
		m.CommandID = "cmd-" + itoa(s.seq)
	}
	if m.Actor.String() == "" && !m.Actor.Operator {
		m.Actor = Actor{UserID: "admin"}
	}
	if m.Now.IsZero() {
		m.Now = s.now
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// Given decides and applies commands; each must succeed.
func (s *scenario) Given(cmds ...Command) *scenario {
	s.t.Helper()
	for _, c := range cmds {
		s.prepare(c)
		evs, err := s.d.Decide(s.state, c)
		if err != nil {
			s.t.Fatalf("given %s: %v", c.CommandName(), err)
		}
		s.apply(evs)
	}
	return s
}

func (s *scenario) apply(evs []Event) {
	for _, e := range evs {
		s.state = Evolve(s.state, e)
		s.history = append(s.history, e)
	}
}

// At moves the scenario's clock.
func (s *scenario) At(t time.Time) *scenario { s.now = t; return s }

// After moves the clock forward.
func (s *scenario) After(d time.Duration) *scenario { s.now = s.now.Add(d); return s }

type outcome struct {
	s      *scenario
	events []Event
	err    error
}

// When decides cmd against the history (and applies its events on success).
func (s *scenario) When(cmd Command) *outcome {
	s.t.Helper()
	s.prepare(cmd)
	before := normal(s.t, s.state)
	evs, err := s.d.Decide(s.state, cmd)
	if !reflect.DeepEqual(before, normal(s.t, s.state)) {
		s.t.Fatalf("Decide changed the state it was given")
	}
	if err == nil {
		s.apply(evs)
	}
	return &outcome{s: s, events: evs, err: err}
}

// Then expects exactly these payloads, in order.
func (o *outcome) Then(want ...Payload) *scenario {
	o.s.t.Helper()
	if o.err != nil {
		o.s.t.Fatalf("want events, got error %v", o.err)
	}
	got := make([]Payload, len(o.events))
	for i, e := range o.events {
		got[i] = e.Payload
	}
	if len(want) == 0 {
		want = []Payload{}
	}
	if !reflect.DeepEqual(got, want) {
		o.s.t.Fatalf("events differ\n got: %#v\nwant: %#v", got, want)
	}
	return o.s
}

// ThenContains expects the decided events to include these payloads.
func (o *outcome) ThenContains(want ...Payload) *scenario {
	o.s.t.Helper()
	if o.err != nil {
		o.s.t.Fatalf("want events, got error %v", o.err)
	}
	for _, w := range want {
		found := false
		for _, e := range o.events {
			found = found || reflect.DeepEqual(e.Payload, w)
		}
		if !found {
			o.s.t.Fatalf("no event %#v among %d events: %#v", w, len(o.events), o.events)
		}
	}
	return o.s
}

// ThenError expects a refusal with the code (and no events).
func (o *outcome) ThenError(code ErrorCode) *Error {
	o.s.t.Helper()
	if o.err == nil {
		o.s.t.Fatalf("want error %s, got %d events: %#v", code, len(o.events), o.events)
	}
	var de *Error
	if !errors.As(o.err, &de) {
		o.s.t.Fatalf("want *domain.Error %s, got %T %v", code, o.err, o.err)
	}
	if de.Code != code {
		o.s.t.Fatalf("want error %s, got %v", code, o.err)
	}
	if len(o.events) != 0 {
		o.s.t.Fatalf("a refused command returned events")
	}
	return de
}

// ---- shorthands for commands in tests

func as(actor string, c Command) Command { Meta(c).Actor = Actor{UserID: actor}; return c }

func addUser(id, loc string) *AddUser {
	return &AddUser{User: NewUser{ID: id, UserPrincipalName: id + "@contoso.com", UsageLocation: loc}}
}

func addGuest(id string) *AddUser {
	return &AddUser{User: NewUser{ID: id, UserPrincipalName: id + "@fabrikam.com", UserType: UserTypeGuest, UsageLocation: "US"}}
}

func buy(id, sku string, qty int) *PurchaseSubscription {
	return &PurchaseSubscription{SubscriptionID: id, SkuID: sku, Quantity: qty}
}

func assign(sku string, users ...string) *AssignLicenses {
	return &AssignLicenses{SkuID: sku, Users: users}
}

func unassign(sku string, users ...string) *UnassignLicenses {
	return &UnassignLicenses{SkuID: sku, Users: users}
}

func roles(user string, rs ...Role) *SetAdminRoles { return &SetAdminRoles{UserID: user, Roles: rs} }

// sku returns the skuId of a catalog part number.
func sku(t *testing.T, part string) string {
	t.Helper()
	p, ok := DefaultCatalog().Lookup(part)
	if !ok {
		t.Fatalf("catalog has no %s", part)
	}
	return p.SkuID
}

func planID(t *testing.T, part, plan string) string {
	t.Helper()
	p, _ := DefaultCatalog().Lookup(part)
	sp, ok := p.Plan(plan)
	if !ok {
		t.Fatalf("%s has no plan %s", part, plan)
	}
	return sp.ID
}
