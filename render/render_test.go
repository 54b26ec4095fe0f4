package render

import (
	"fmt"
	"reflect"
	"testing"
)

// A reused touched set starts empty: reset clears every field.
func TestTouchedResetClearsEverything(t *testing.T) {
	tc := NewTouched()
	tc.meta = true
	tc.added = append(tc.added, "u1")
	for _, s := range []*set[string]{&tc.licenses, &tc.subs, &tc.apps, &tc.users, &tc.groups, &tc.beforeIDs} {
		for i := range 2 * setSpill { // indexed too
			s.add(fmt.Sprint("x", i))
		}
	}
	for _, s := range []*set[pair]{&tc.userLic, &tc.members, &tc.held} {
		s.add(pair{"a", "b"})
	}
	tc.befores = append(tc.befores, indexedBefore{})
	tc.base, tc.based = 7, true
	tc.keys = append(tc.keys, "k")
	v := reflect.ValueOf(tc).Elem()
	if v.NumField() != 15 {
		t.Fatalf("touched has %d fields: set the new one above and clear it in reset", v.NumField())
	}
	tc.Reset()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Bool, reflect.Uint64:
			if !f.IsZero() {
				t.Errorf("field %s not cleared by reset", v.Type().Field(i).Name)
			}
			continue
		case reflect.Struct: // a set
			if f.FieldByName("list").Len() != 0 || !f.FieldByName("pos").IsNil() {
				t.Errorf("set %s not cleared by reset", v.Type().Field(i).Name)
			}
			continue
		}
		if !f.IsZero() && f.Len() != 0 {
			t.Errorf("field %s not cleared by reset", v.Type().Field(i).Name)
		}
	}
}

// A set holds each element once, in the order first added, before and
// after it outgrows its slice and indexes its elements.
func TestSetKeepsEachElementOnceInOrder(t *testing.T) {
	var s set[pair]
	var want []pair
	for round := range 2 {
		for i := range 3 * setSpill {
			p := pair{fmt.Sprint("u", i%(2*setSpill)), "sku"}
			added, wantAdded := s.add(p), round == 0 && i < 2*setSpill
			if added != wantAdded {
				t.Fatalf("round %d: add(%v) = %v, want %v", round, p, added, wantAdded)
			}
			if wantAdded {
				want = append(want, p)
			}
			if !s.has(p) || s.list[s.find(p)] != p {
				t.Fatalf("round %d: %v not found after add", round, p)
			}
		}
		if s.has(pair{"u", "other"}) {
			t.Fatal("has an element never added")
		}
	}
	if !reflect.DeepEqual(s.list, want) || s.len() != len(want) {
		t.Fatalf("list = %v, want %v", s.list, want)
	}
	s.reset()
	if s.len() != 0 || s.has(want[0]) || s.pos != nil {
		t.Fatal("reset set not empty")
	}
	if !s.add(want[0]) {
		t.Fatal("add after reset: not added")
	}
}
