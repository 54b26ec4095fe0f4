package render

import (
	"reflect"
	"testing"
)

// A reused touched set starts empty: reset clears every field.
func TestTouchedResetClearsEverything(t *testing.T) {
	tc := NewTouched()
	tc.meta = true
	tc.added = append(tc.added, "u1")
	for _, m := range []map[string]bool{tc.licenses, tc.subs, tc.apps, tc.users, tc.groups} {
		m["x"] = true
	}
	for _, m := range []map[pair]bool{tc.userLic, tc.members, tc.held} {
		m[pair{"a", "b"}] = true
	}
	tc.before["u1"] = indexedBefore{}
	tc.base, tc.based = 7, true
	tc.keys = append(tc.keys, "k")
	v := reflect.ValueOf(tc).Elem()
	if v.NumField() != 14 {
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
		}
		if !f.IsZero() && f.Len() != 0 {
			t.Errorf("field %s not cleared by reset", v.Type().Field(i).Name)
		}
	}
}
