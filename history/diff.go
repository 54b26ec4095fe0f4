package history

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/tenantstream"
)

// Change is one entity that differs between two points.
type Change struct {
	Entity string          `json:"entity"` // "user:alice", "product:<sku>", "subscription:s1", "group:g", "held:alice|Exchange", "tenant"
	Kind   string          `json:"kind"`   // added, removed, changed
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
	// Events are the versions in (from, to] that touched the entity.
	Events []uint64 `json:"events"`
}

// Diff is what changed between two versions.
type Diff struct {
	From    uint64   `json:"from"`
	To      uint64   `json:"to"`
	Changes []Change `json:"changes"`
	Events  []Record `json:"events"` // the events between, oldest first (at most 1000)
}

// Entities splits a state into its entities, keyed as in Change.Entity.
func Entities(s State) map[string]any {
	out := map[string]any{"tenant": map[string]any{"tenantId": s.TenantID, "name": s.Name}}
	for _, p := range s.Products {
		out["product:"+p.SkuID] = p
	}
	for _, x := range s.Subscriptions {
		out["subscription:"+x.ID] = x
	}
	for _, u := range s.Users {
		out["user:"+u.ID] = u
	}
	for _, g := range s.Groups {
		out["group:"+g.ID] = g
	}
	for _, h := range s.HeldData {
		out["held:"+h.UserID+"|"+h.Workload] = h
	}
	for _, a := range s.Apps {
		out["app:"+a.SkuID] = a
	}
	if len(s.Installs) > 0 {
		out["installs"] = s.Installs
	}
	return out
}

// DiffStates compares two rendered states entity by entity. Entities are
// compared as typed values first (most are equal: no encoding), then, when
// those differ, by their JSON, which is also what a change carries (a nil
// and an empty list that JSON omits alike are no change).
func DiffStates(a, b State) []Change {
	ea, eb := Entities(a), Entities(b)
	changes := []Change{} // none is [] in JSON, like every list of an answer
	for _, k := range slices.Sorted(maps.Keys(ea)) {
		vb, ok := eb[k]
		if !ok {
			va, _ := eventcodec.Marshal(ea[k])
			changes = append(changes, Change{Entity: k, Kind: "removed", Before: va, Events: []uint64{}})
			continue
		}
		if reflect.DeepEqual(ea[k], vb) {
			continue
		}
		va, _ := eventcodec.Marshal(ea[k])
		jb, _ := eventcodec.Marshal(vb)
		if !bytes.Equal(va, jb) {
			changes = append(changes, Change{Entity: k, Kind: "changed", Before: va, After: jb, Events: []uint64{}})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(eb)) {
		if _, ok := ea[k]; !ok {
			jb, _ := eventcodec.Marshal(eb[k])
			changes = append(changes, Change{Entity: k, Kind: "added", After: jb, Events: []uint64{}})
		}
	}
	return changes
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// Apply applies changes to the entities of a state: Apply(Entities(A),
// DiffStates(A, B)) has the entities of B.
func Apply(entities map[string]json.RawMessage, changes []Change) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(entities))
	for k, v := range entities {
		out[k] = v
	}
	for _, c := range changes {
		switch c.Kind {
		case "removed":
			delete(out, c.Entity)
		default:
			out[c.Entity] = c.After
		}
	}
	return out
}

// maxDiffEvents bounds the events listed in a diff (the changes are complete
// whatever the distance).
const maxDiffEvents = 1000

// shortDiff is the longest span that DiffBetween compares entity by
// entity (diffShort): the time-travel cursor's diff is of one event.
const shortDiff = 16

// DiffBetween compares the tenant at two points and names the events
// responsible for each change. A short span (at most shortDiff events)
// renders only the entities its events can reach (diffShort); a longer
// one, or a short one that reaches further than it could tell beforehand,
// renders the whole state at both points (diffWhole). Both answer the
// same diff.
func (s *Service) DiffBetween(ctx context.Context, tenantID string, from, to uint64) (Diff, error) {
	if from > to {
		return Diff{}, domain.Errorf(domain.CodeInvalidRequest, "from", "from (version %d) is after to (version %d)", from, to)
	}
	if from > 0 && to-from <= shortDiff {
		d, ok, err := s.diffShort(ctx, tenantID, from, to)
		if err != nil || ok {
			return d, err
		}
	}
	return s.diffWhole(ctx, tenantID, from, to)
}

// diffWhole folds once: to from (from the nearest snapshot), renders that
// state, folds on to to and renders again.
func (s *Service) diffWhole(ctx context.Context, tenantID string, from, to uint64) (Diff, error) {
	t := domain.NewTenant()
	if from > 0 {
		var err error
		if t, err = s.StateAt(ctx, tenantID, from); err != nil {
			return Diff{}, err
		}
	}
	// The rendered state shares nothing Evolve changes in place but the
	// installs' counts, so B can be folded on A's tenant without a copy.
	before := Render(s.Catalog, t)
	before.Installs = maps.Clone(before.Installs)
	touched := map[entityKey][]uint64{}
	var userLifecycle []uint64 // deletions and restores: they free and retake licenses and memberships
	d := Diff{From: from, To: to, Events: []Record{}}
	stream := tenantstream.Name(tenantID)
	for next := from + 1; next <= to; {
		recs, err := s.Store.ReadStream(ctx, stream, next, int(min(to-next+1, 4096)))
		if err != nil {
			return Diff{}, err
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			e, err := eventcodec.Decode(r.Data, s.Upcasters)
			if err != nil {
				return Diff{}, err
			}
			e.Version = r.Version
			domain.Evolve(t, e)
			touches(e.Type, targetOf(e.Payload), func(k entityKey) { touched[k] = append(touched[k], r.Version) })
			if e.Type == domain.TypeUserDeleted || e.Type == domain.TypeUserRestored {
				userLifecycle = append(userLifecycle, r.Version)
			}
			if len(d.Events) < maxDiffEvents {
				d.Events = append(d.Events, s.record(e, r.Data))
			}
			next = r.Version + 1
		}
	}
	d.Changes = DiffStates(before, Render(s.Catalog, t))
	attribute(d.Changes, touched, userLifecycle)
	return d, nil
}

// diffShort is DiffBetween of a few events (from > 0): it reads and
// decodes them first, renders at from only the users and groups they can
// reach (reach), folds them and renders the same entities again. Products,
// subscriptions, apps, installs and the tenant are few: always compared.
// When the events reach, at to, an entity they did not reach at from,
// it answers ok false and the caller compares whole states.
func (s *Service) diffShort(ctx context.Context, tenantID string, from, to uint64) (Diff, bool, error) {
	t, err := s.StateAt(ctx, tenantID, from)
	if err != nil {
		return Diff{}, false, err
	}
	var recs []eventstore.RecordedEvent
	if to > from {
		if recs, err = s.Store.ReadStream(ctx, tenantstream.Name(tenantID), from+1, int(to-from)); err != nil {
			return Diff{}, false, err
		}
	}
	evs := make([]domain.Event, len(recs))
	users, groups := map[string]bool{}, map[string]bool{}
	for i, r := range recs {
		if evs[i], err = eventcodec.Decode(r.Data, s.Upcasters); err != nil {
			return Diff{}, false, err
		}
		evs[i].Version = r.Version
		reach(t, evs[i], users, groups)
	}
	before := render(s.Catalog, t, present(t, users), groups)
	before.Installs = maps.Clone(before.Installs)
	touched := map[entityKey][]uint64{}
	var userLifecycle []uint64
	d := Diff{From: from, To: to, Events: []Record{}}
	for i, e := range evs {
		domain.Evolve(t, e)
		touches(e.Type, targetOf(e.Payload), func(k entityKey) { touched[k] = append(touched[k], e.Version) })
		if e.Type == domain.TypeUserDeleted || e.Type == domain.TypeUserRestored {
			userLifecycle = append(userLifecycle, e.Version)
		}
		d.Events = append(d.Events, s.record(e, recs[i].Data))
	}
	afterUsers, afterGroups := map[string]bool{}, map[string]bool{}
	for _, e := range evs {
		reach(t, e, afterUsers, afterGroups)
	}
	for id := range afterUsers {
		if !users[id] {
			return Diff{}, false, nil
		}
	}
	for id := range afterGroups {
		if !groups[id] {
			return Diff{}, false, nil
		}
	}
	d.Changes = DiffStates(before, render(s.Catalog, t, present(t, users), groups))
	attribute(d.Changes, touched, userLifecycle)
	return d, true, nil
}

// reach adds to users and groups those whose rendering event e can change
// in tenant t: its user and the groups the user is in (or was in, for a
// restore), its group and the group's members, and for a product's
// registration or an app's install (which rename a product) every holder
// of the product. A user's held data is rendered with the user.
func reach(t *domain.Tenant, e domain.Event, users, groups map[string]bool) {
	tg := targetOf(e.Payload)
	addUser := func(id string) {
		users[id] = true
		if u := t.Users[id]; u != nil {
			for g := range u.Groups {
				groups[g] = true
			}
			if u.Stash != nil {
				for _, g := range u.Stash.Groups {
					groups[g] = true
				}
			}
		}
	}
	if tg.UserID != "" {
		addUser(tg.UserID)
	}
	if tg.GroupID != "" {
		groups[tg.GroupID] = true
		if g := t.Groups[tg.GroupID]; g != nil {
			for m := range g.Members {
				addUser(m)
			}
		}
	}
	if tg.SkuID != "" && (e.Type == domain.TypeProductRegistered || e.Type == domain.TypeAppInstalled) {
		for id, u := range t.Users {
			if u.Licenses[tg.SkuID] != nil {
				addUser(id)
			}
		}
	}
}

// present is the ids of users that t has, sorted.
func present(t *domain.Tenant, users map[string]bool) []string {
	ids := make([]string, 0, len(users))
	for id := range users {
		if t.Users[id] != nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// attribute names the events responsible for each change.
func attribute(changes []Change, touched map[entityKey][]uint64, userLifecycle []uint64) {
	for i := range changes {
		c := &changes[i]
		k := keyOf(c.Entity)
		if vs := touched[k]; vs != nil {
			c.Events = vs
		} else if vs := touched[entityKey{k.kind, heldUser(k)}]; k.kind == "held" && vs != nil {
			c.Events = vs
		} else if k.kind == "product" || k.kind == "group" {
			// Counts and memberships also change when a user goes or comes back.
			c.Events = append(c.Events, userLifecycle...)
		}
	}
}

// entityKey is Change.Entity split at its first colon: "user", "alice".
// Events are indexed by it without building a string per event.
type entityKey struct{ kind, id string }

func keyOf(entity string) entityKey {
	kind, id, _ := strings.Cut(entity, ":")
	return entityKey{kind, id}
}

// heldUser is the user of a held data entity's id ("alice|Exchange").
func heldUser(k entityKey) string {
	if i := strings.LastIndexByte(k.id, '|'); i >= 0 {
		return k.id[:i]
	}
	return k.id
}

// touches lists the entities an event may change. Held data entities are
// matched through their user ("held:<user>" covers every workload).
func touches(typ string, t Target, add func(entityKey)) {
	if t.UserID != "" {
		add(entityKey{"user", t.UserID})
		add(entityKey{"held", t.UserID})
	}
	if t.SkuID != "" {
		add(entityKey{"product", t.SkuID})
		add(entityKey{"app", t.SkuID})
	}
	if t.GroupID != "" {
		add(entityKey{"group", t.GroupID})
	}
	if t.SubscriptionID != "" {
		add(entityKey{"subscription", t.SubscriptionID})
	}
	switch typ {
	case domain.TypeTenantCreated:
		add(entityKey{"tenant", ""})
	case domain.TypeAppInstalled:
		add(entityKey{"installs", ""})
	}
}
