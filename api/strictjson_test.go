package api

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// strictNode nests without end, to reach maxBodyDepth through typed
// objects and arrays alike.
type strictNode struct {
	A *strictNode  `json:"a"`
	L []strictNode `json:"l"`
	N int          `json:"n"`
}

type strictEmbedded struct {
	NewUserRequest
	Extra map[string]any `json:"extra"`
	Any   any            `json:"any"`
	Skip  string         `json:"-"`
}

// strictTypes are the types FuzzStrictScanner checks bodies against: the
// command bodies of every shape (nested objects and arrays, pointers,
// quantity's own UnmarshalJSON, no body), and types without names to
// compare.
var strictTypes = []reflect.Type{
	reflect.TypeOf(&assignLicenseRequest{}), reflect.TypeOf(&manageLicensesRequest{}), reflect.TypeOf(&addUserRequest{}),
	reflect.TypeOf(&createTenantRequest{}), reflect.TypeOf(&purchaseRequest{}), reflect.TypeOf(&patchSubscriptionRequest{}),
	reflect.TypeOf(&licensePlansRequest{}), reflect.TypeOf(&rolesRequest{}), reflect.TypeOf(&noBody{}),
	reflect.TypeOf(&strictNode{}), reflect.TypeOf(&strictEmbedded{}), reflect.TypeOf((*any)(nil)),
	reflect.TypeOf(map[string]any{}), reflect.TypeOf([]LicenseRequest{}), reflect.TypeOf(""), nil,
}

// strictBodies are representative command bodies, valid and not.
func strictBodies() map[string]string {
	var users []string
	for i := range 20 {
		users = append(users, fmt.Sprintf(`"user-%02d@contoso.example"`, i))
	}
	return map[string]string{
		"assignLicense":  `{"addLicenses":[{"skuId":"SPE_E5","disabledPlans":["SWAY","YAMMER_ENTERPRISE"]}],"removeLicenses":["SPB"]}`,
		"manageLicenses": `{"users":[` + strings.Join(users, ",") + `],"mode":"replace","addLicenses":[{"skuId":"SPB","disabledPlans":[]},{"skuId":"SPE_E5","disabledPlans":["SWAY"]}]}`,
		"addUser": `{"id":"u-4711","userPrincipalName":"jörg.müller@contoso.example","displayName":"Jörg Müller",` +
			`"userType":"Member","usageLocation":"DE","licenses":[{"skuId":"SPB","disabledPlans":["SWAY"]},{"skuId":"POWER_BI_PRO","disabledPlans":[]}]}`,
		"invalidLarge": `{"users":[` + strings.Repeat(`"someone@contoso.example",`, 2000) + `"last\u00e9"],"mode":"add","addLicenses":[{"skuId":"SPB","SKUID":"x"}]}`,
	}
}

func strictSeeds() []string {
	seeds := []string{`{"id":"g2","displayName":"G"}`, `{"id":"g3","displayName":"G","id":"g4"}`, `{"ID":"g5","displayName":"G"}`,
		"{\"displayName\":\"\xc3\x28\"}", `{"displayName":"\ud800"}`, "{\"id\":\"a\xffb\"}", `{"quantity":1e2}`, `{"quantity":1e400}`,
		`{"quantity":-0.5e-400,"a":1}`, `{"\u0061ddLicenses":[],"addLicenses":[]}`, `{"\ud800":1,"\udc00":2}`, `{"":1,"":2}`, `{"":{"a":1,"a":2}}`,
		`{"bogus" 1}`, `{"bogus"`, `{"a":1,}`, `[1,]`, `[,1]`, `[1 2]`, `{"a":[01]}`, `{"a":tru}`, `{"a":"\x"}`, "{\"a\":\"\x01\"}",
		`{"l":[{"l":[{"a":{"a":null}}]}]}`, `"abc"`, `  {"n":1}  trailing`, `{"a":{}}]`, `{"addLicenses":[{"disabledplans":[]}]}`,
		`{"extra":{"k":1,"k":2}}`, `{"Extra":{}}`, `{"-":1}`, `{"Skip":1}`, `{"id":"x","ID":"y"}`}
	seeds = append(seeds, strings.Repeat(`{"a":`, 31)+`{}`+strings.Repeat(`}`, 31), strings.Repeat(`{"a":`, 32)+`{}`+strings.Repeat(`}`, 32),
		strings.Repeat(`[`, 33)+strings.Repeat(`]`, 33), `{"l":`+strings.Repeat(`[`, 32)+`,`, `{"l":`+strings.Repeat(`[`, 31)+`1 2`,
		strings.Repeat(`{"a":`, 32)+`1`, strings.Repeat(`{"a":`, 33), `{"n":`+strings.Repeat("9", 310)+`}`,
		`{"`+strings.Repeat("k", 100)+`":1}`, `{"a\u0007b":1,"a\u0007b":2}`, `{"extra":{"`+strings.Repeat("é", 40)+`":1,"`+strings.Repeat("é", 40)+`":2}}`)
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf(`"k%d":%d`, i, i))
	}
	seeds = append(seeds, `{"extra":{`+strings.Join(many, ",")+`,"k39":0}}`, `{"extra":{`+strings.Join(many, ",")+`,"k3":0}}`)
	for _, b := range strictBodies() {
		seeds = append(seeds, b)
	}
	return seeds
}

// strictSame fails t unless checkStrict decides body as the walk over
// encoding/json's Token did (checkStrictOld): both accept, or both refuse
// with the same problem.
func strictSame(t *testing.T, body []byte, typ reflect.Type) {
	t.Helper()
	got, want := checkStrict(body, typ), checkStrictOld(body, typ)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%v %q:\n got %#v\nwant %#v", typ, body, got, want)
	}
}

func TestStrictScannerSeeds(t *testing.T) {
	for _, s := range strictSeeds() {
		for _, typ := range strictTypes {
			strictSame(t, []byte(s), typ)
		}
	}
}

// TestStrictScannerAllocatesNothing: the check of an accepted command body
// allocates nothing (the walk over Token allocated per token: 64 times
// for assignLicense).
func TestStrictScannerAllocatesNothing(t *testing.T) {
	bodies := strictBodies()
	for name, typ := range map[string]reflect.Type{"assignLicense": reflect.TypeOf(&assignLicenseRequest{}),
		"manageLicenses": reflect.TypeOf(&manageLicensesRequest{}), "addUser": reflect.TypeOf(&addUserRequest{})} {
		body := []byte(bodies[name])
		if err := checkStrict(body, typ); err != nil {
			t.Fatalf("%s refused: %v", name, err)
		}
		if n := testing.AllocsPerRun(100, func() { _ = checkStrict(body, typ) }); n >= 1 {
			t.Errorf("%s: %v allocations per check, want 0", name, n)
		}
	}
}

// FuzzStrictScanner holds checkStrict's byte scanner to the walk over
// encoding/json's Token it replaced: on any bytes and any of strictTypes,
// the same acceptance or the same problem (field and detail).
func FuzzStrictScanner(f *testing.F) {
	for i, s := range strictSeeds() {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, ti uint8, body []byte) {
		strictSame(t, body, strictTypes[int(ti)%len(strictTypes)])
	})
}

// BenchmarkStrictJSON measures the strict check of representative command
// bodies: the byte scanner (new) against the walk over Token (old).
func BenchmarkStrictJSON(b *testing.B) {
	bodies := strictBodies()
	cases := []struct {
		name string
		typ  reflect.Type
	}{
		{"assignLicense", reflect.TypeOf(&assignLicenseRequest{})},
		{"manageLicenses", reflect.TypeOf(&manageLicensesRequest{})},
		{"addUser", reflect.TypeOf(&addUserRequest{})},
		{"invalidLarge", reflect.TypeOf(&manageLicensesRequest{})},
	}
	for _, impl := range []struct {
		name  string
		check func([]byte, reflect.Type) error
	}{{"old", checkStrictOld}, {"new", checkStrict}} {
		for _, c := range cases {
			body := []byte(bodies[c.name])
			b.Run(c.name+"/impl="+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					_ = impl.check(body, c.typ)
				}
			})
		}
	}
}
