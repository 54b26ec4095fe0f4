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
	var changes []Change
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

// DiffBetween compares the tenant at two points and names the events
// responsible for each change. It folds once: to from (from the nearest
// snapshot), renders that state, folds on to to and renders again.
func (s *Service) DiffBetween(ctx context.Context, tenantID string, from, to uint64) (Diff, error) {
	if from > to {
		return Diff{}, domain.Errorf(domain.CodeInvalidRequest, "from", "from (version %d) is after to (version %d)", from, to)
	}
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
	for i := range d.Changes {
		c := &d.Changes[i]
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
	return d, nil
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
