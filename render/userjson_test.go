package render

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
	"github.com/seatledger/seatledger/internal/cputime"
	"github.com/seatledger/seatledger/readmodel"
)

// viewGen makes random user views: strings with what encoding/json
// escapes (HTML characters, control characters, invalid UTF-8, U+2028),
// slices nil, empty or full, optional fields set or not, times with
// nanoseconds, zones and years at and past what MarshalJSON accepts.
type viewGen struct {
	rng   *rand.Rand
	extra []string // strings of the fuzzer
}

var genStrings = []string{"", "a", "u1@live0001.example", "Élodie <Durand> & co", "\u2028\u2029", "\x00\x1f\x7f", "\xff\xfe",
	"\xe2\x80", "\"\\/", "\t\n\r\b\f", "😀 ☃", "GlobalAdministrator", "group:g1", "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46",
	"\u00e9\u0301", "\ufffd", "a\u2029b<>&"}

func (g *viewGen) str() string {
	if len(g.extra) > 0 && g.rng.IntN(3) == 0 {
		return g.extra[g.rng.IntN(len(g.extra))]
	}
	return genStrings[g.rng.IntN(len(genStrings))]
}

func (g *viewGen) strs() []string {
	switch g.rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	out := make([]string, 1+g.rng.IntN(4))
	for i := range out {
		out[i] = g.str()
	}
	return out
}

func (g *viewGen) time() time.Time {
	years := []int{2026, 1970, 0, 1, 9999, 10000, -1, 1999}
	zones := []*time.Location{time.UTC, time.FixedZone("", 5*3600+1800), time.FixedZone("", -(23*3600 + 59*60)),
		time.FixedZone("", 24*3600), time.FixedZone("", 90), time.Local}
	y := years[0]
	if g.rng.IntN(4) == 0 {
		y = years[g.rng.IntN(len(years))]
	}
	ns := []int{0, 123456789, 100000000, 1, 999999999, 120000}[g.rng.IntN(6)]
	t := time.Date(y, time.Month(1+g.rng.IntN(12)), 1+g.rng.IntN(28), g.rng.IntN(24), g.rng.IntN(60), g.rng.IntN(60), ns, time.UTC)
	if g.rng.IntN(3) == 0 {
		t = t.In(zones[g.rng.IntN(len(zones))])
	}
	return t
}

func (g *viewGen) timeP() *time.Time {
	if g.rng.IntN(2) == 0 {
		return nil
	}
	t := g.time()
	return &t
}

func (g *viewGen) view() readmodel.UserView {
	v := readmodel.UserView{
		UserProfile: readmodel.UserProfile{ID: g.str(), UserPrincipalName: g.str(), DisplayName: g.str(), UserType: g.str(),
			UsageLocation: g.str(), Status: g.str(), DeletedAt: g.timeP()},
		Groups: g.strs(), EnabledServices: g.strs(), AutoAssignedServices: g.strs(),
		RetentionHold: g.rng.IntN(2) == 0, RestorableUntil: g.timeP(),
	}
	if rs := g.strs(); rs != nil {
		v.Roles = []domain.Role{}
		for _, r := range rs {
			v.Roles = append(v.Roles, domain.Role(r))
		}
	}
	if g.rng.IntN(5) > 0 {
		v.Licenses = []domain.LicenseView{}
		for range g.rng.IntN(4) {
			v.Licenses = append(v.Licenses, domain.LicenseView{SkuID: g.str(), SkuPartNumber: g.str(), DisabledPlans: g.strs(),
				EnabledPlans: g.strs(), Sources: g.strs(), State: g.str(), Error: g.str(), ErrorDetail: g.str(), ErrorGroups: g.strs()})
		}
	}
	if g.rng.IntN(5) > 0 {
		v.HeldData = []readmodel.HeldRow{}
		for range g.rng.IntN(3) {
			v.HeldData = append(v.HeldData, readmodel.HeldRow{UserID: g.str(), Workload: g.str(), HeldSince: g.time(),
				PurgeAfter: g.time(), Retained: g.rng.IntN(2) == 0, Reason: g.str()})
		}
	}
	return v
}

// checkUserViewJSON compares appendUserView's bytes with those of the
// encoder the projection used before (eventcodec.Marshal, which the read
// models hold), and their meaning with encoding/json's (decoded, the
// same view; the bytes differ only in \b and \f, see appendJSONString).
// Where the encoders fail, appendUserView must refuse and leave its
// buffer as it was.
func checkUserViewJSON(t *testing.T, v *readmodel.UserView) {
	t.Helper()
	want, err := eventcodec.Marshal(v)
	std, stdErr := json.Marshal(v)
	if (err == nil) != (stdErr == nil) {
		t.Fatalf("eventcodec.Marshal: %v, encoding/json: %v", err, stdErr)
	}
	for i := range v.HeldData { // the purge list's rows (Renderer.held)
		checkHeldRowJSON(t, &v.HeldData[i])
	}
	prefix := []byte("prefix")
	got, ok := appendUserView(append([]byte(nil), prefix...), v)
	if err != nil {
		if ok || !bytes.Equal(got, prefix) {
			t.Fatalf("the encoders fail (%v) but appendUserView gave %q, %v", err, got, ok)
		}
		return
	}
	if !ok {
		t.Fatalf("appendUserView refused %#v, which eventcodec encodes as %s", v, want)
	}
	got = got[len(prefix):]
	if !bytes.Equal(got, want) {
		t.Fatalf("appendUserView:\n got %s\nwant %s", got, want)
	}
	var a, b readmodel.UserView
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if err := json.Unmarshal(std, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("appendUserView's %s reads as %#v,\nencoding/json's %s as %#v", got, a, std, b)
	}
}

// checkHeldRowJSON is checkUserViewJSON for a held row alone.
func checkHeldRowJSON(t *testing.T, h *readmodel.HeldRow) {
	t.Helper()
	want, err := eventcodec.Marshal(h)
	prefix := []byte("prefix")
	got, ok := appendHeldRow(append([]byte(nil), prefix...), h)
	if err != nil {
		if ok || !bytes.Equal(got, prefix) {
			t.Fatalf("eventcodec fails (%v) but appendHeldRow gave %q, %v", err, got, ok)
		}
		return
	}
	if !ok || !bytes.Equal(got[len(prefix):], want) {
		t.Fatalf("appendHeldRow: %s, %v\nwant %s", got, ok, want)
	}
}

// TestUserViewJSONMatches: the hand-written encoding of the user view is
// encoding/json's, byte for byte, on 20,000 random views and on the views
// of the benchmark's tenant.
func TestUserViewJSONMatches(t *testing.T) {
	g := &viewGen{rng: rand.New(rand.NewPCG(22, 1))}
	for range 20000 {
		v := g.view()
		checkUserViewJSON(t, &v)
	}
	ten := benchTenant()
	for _, u := range ten.Users {
		v := UserViewOf(domain.DefaultCatalog(), ten, u)
		checkUserViewJSON(t, &v)
	}
}

// TestRendererWritesTheUserViewAsBefore: the projection's renderer writes
// the user view and the held rows with the bytes of encoding/json, into
// its arena or not,
// and a view encoding/json cannot encode still panics as before.
func TestRendererWritesTheUserViewAsBefore(t *testing.T) {
	cat, ten := domain.DefaultCatalog(), benchTenant()
	for _, arena := range []*JSONArena{nil, {}} {
		sink := NewMapSink()
		r := NewRenderer(cat, ten, sink, arena)
		for id, u := range ten.Users {
			r.user(id, false)
			want, err := json.Marshal(UserViewOf(cat, ten, u))
			if err != nil {
				t.Fatal(err)
			}
			if got := sink.Hashes[readmodel.Users][id]; got != string(want) {
				t.Fatalf("arena %v, %s:\n got %s\nwant %s", arena != nil, id, got, want)
			}
		}
	}
	for _, arena := range []*JSONArena{nil, {}} {
		sink := NewMapSink()
		NewRenderer(cat, ten, sink, arena).held("rich", "Exchange")
		want, err := json.Marshal(readmodel.HeldRow{UserID: "rich", Workload: "Exchange", HeldSince: ten.Users["rich"].Holds["Exchange"].HeldSince,
			PurgeAfter: ten.Users["rich"].Holds["Exchange"].PurgeAfter, Reason: "licenseRemoved"})
		if err != nil {
			t.Fatal(err)
		}
		if got := sink.Hashes[readmodel.Held][readmodel.HeldMember("rich", "Exchange")]; got != string(want) {
			t.Fatalf("held row, arena %v:\n got %s\nwant %s", arena != nil, got, want)
		}
	}
	ten.Users["gone"].DeletedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	defer func() {
		if recover() == nil {
			t.Fatal("a view encoding/json cannot encode did not panic")
		}
	}()
	NewRenderer(cat, ten, NewMapSink(), &JSONArena{}).user("gone", false)
}

// FuzzUserViewJSON: random views (from seed) with the fuzzer's strings in
// their fields encode as encoding/json encodes them.
func FuzzUserViewJSON(f *testing.F) {
	f.Add(uint64(1), "<script>&", "\u2028")
	f.Add(uint64(2), "\xff", "é\x00")
	f.Fuzz(func(t *testing.T, seed uint64, a, b string) {
		g := &viewGen{rng: rand.New(rand.NewPCG(seed, 0)), extra: []string{a, b}}
		for range 4 {
			v := g.view()
			checkUserViewJSON(t, &v)
		}
	})
}

// BenchmarkUserViewJSON encodes the user views of benchTenant: by hand
// (appendUserView) and as the projection did before (eventcodec).
func BenchmarkUserViewJSON(b *testing.B) {
	ten := benchTenant()
	for _, id := range []string{"bench", "rich"} {
		v := UserViewOf(domain.DefaultCatalog(), ten, ten.Users[id])
		benchUserViewJSON(b, id, v)
	}
}

func benchUserViewJSON(b *testing.B, id string, v readmodel.UserView) {
	b.Run(id+"/hand", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		cpu0 := cputime.Process()
		for b.Loop() {
			buf, _ = appendUserView(buf[:0], &v)
		}
		reportCPU(b, cputime.Process()-cpu0)
	})
	b.Run(id+"/eventcodec", func(b *testing.B) {
		var buf, scratch []byte
		b.ReportAllocs()
		cpu0 := cputime.Process()
		for b.Loop() {
			buf, _ = eventcodec.AppendMarshal(buf[:0], &scratch, &v)
		}
		reportCPU(b, cputime.Process()-cpu0)
	})
}

// TestUserViewJSONKnowsEveryField: appendUserView writes the fields below,
// in this order; a field added to one of these types must be added to it
// too (and here).
func TestUserViewJSONKnowsEveryField(t *testing.T) {
	for _, c := range []struct {
		v    any
		tags []string
	}{
		{readmodel.UserView{}, []string{"", "groups", "licenses", "enabledServices", "autoAssignedServices", "heldData", "retentionHold",
			"restorableUntil,omitempty"}},
		{readmodel.UserProfile{}, []string{"id", "userPrincipalName", "displayName", "userType", "usageLocation,omitempty", "status",
			"deletedAt,omitempty", "roles"}},
		{domain.LicenseView{}, []string{"skuId", "skuPartNumber,omitempty", "disabledPlans", "enabledPlans", "sources", "state",
			"error,omitempty", "errorDetail,omitempty", "errorGroups,omitempty"}},
		{readmodel.HeldRow{}, []string{"userId", "workload", "heldSince", "purgeAfter", "retained", "reason,omitempty"}},
	} {
		typ := reflect.TypeOf(c.v)
		var tags []string
		for i := range typ.NumField() {
			tags = append(tags, typ.Field(i).Tag.Get("json"))
		}
		if !reflect.DeepEqual(tags, c.tags) {
			t.Errorf("%s has the fields %q; appendUserView writes %q: change it", typ, tags, c.tags)
		}
	}
}
