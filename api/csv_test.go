package api_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/queries"
)

const contoso = "/v1/tenants/contoso"

// readCSV checks an export's answer (200, text/csv, a leading BOM) and
// parses it.
func readCSV(t *testing.T, r resp) [][]string {
	t.Helper()
	if r.Code != http.StatusOK {
		t.Fatalf("status %d: %s", r.Code, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	if !bytes.HasPrefix(r.Body, []byte("\xef\xbb\xbf")) {
		t.Fatalf("no UTF-8 byte order mark: %q", r.Body[:min(len(r.Body), 16)])
	}
	recs, err := csv.NewReader(bytes.NewReader(r.Body[3:])).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, r.Body)
	}
	return recs
}

// byColumn maps each data row's first cell... by the value of column col.
func byColumn(t *testing.T, recs [][]string, col string) map[string]map[string]string {
	t.Helper()
	i := slices.Index(recs[0], col)
	if i < 0 {
		t.Fatalf("no column %q in %q", col, recs[0])
	}
	out := map[string]map[string]string{}
	for _, rec := range recs[1:] {
		m := map[string]string{}
		for j, h := range recs[0] {
			m[h] = rec[j]
		}
		out[rec[i]] = m
	}
	return out
}

// importCSV posts a CSV file to users/import with query.
func importCSV(e *env, tok, query, file string) resp {
	e.t.Helper()
	return e.do(req{Method: "POST", Path: contoso + "/users/import?" + query, Token: tok, Body: file,
		Header: map[string]string{"Content-Type": "text/csv"}})
}

func importAnswer(t *testing.T, r resp) api.ImportAnswer {
	t.Helper()
	if r.Code != http.StatusOK {
		t.Fatalf("import: status %d: %s", r.Code, r.Body)
	}
	var a api.ImportAnswer
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatalf("import answer: %v: %s", err, r.Body)
	}
	return a
}

func TestCSVExportUsersColumnsEscapingAndInjection(t *testing.T) {
	e, _ := queryEnv(t, queries.Config{})
	admin := token(t, "contoso", "admin")
	names := map[string]string{
		"f1": "=HYPERLINK(\"http://evil\",\"x\")",
		"f2": "+1 555",
		"f3": "-2",
		"f4": "@SUM(A1)",
		"f5": `Doe, "Jr"`,
		"f6": "Zoë Ångström",
	}
	for _, id := range slices.Sorted(maps.Keys(names)) {
		e.must(201, req{Method: "POST", Path: contoso + "/users", Token: admin, Body: map[string]any{
			"id": id, "userPrincipalName": id + "@contoso.example", "displayName": names[id], "usageLocation": "FR"}})
	}
	e.buy("contoso", "admin", "s4", "POWER_BI_PRO", 3)
	e.must(200, req{Method: "POST", Path: contoso + "/users/f6/assignLicense", Token: admin,
		Body: `{"addLicenses":[{"skuId":"SPE_E3"},{"skuId":"POWER_BI_PRO"}],"removeLicenses":[]}`})
	e.must(200, req{Method: "DELETE", Path: contoso + "/users/f5", Token: admin})
	e.must(201, req{Method: "POST", Path: contoso + "/users", Token: admin, Body: `{"id":"export","userPrincipalName":"export@contoso.example"}`})
	v := e.version("contoso")
	// The export's path is no user's: a user may be called "export".
	if u := e.must(200, req{Method: "GET", Path: contoso + "/users/export?minVersion=" + strconv.FormatUint(v, 10), Token: admin}).JSON(t); u["id"] != "export" {
		t.Fatalf("GET users/export: %v", u)
	}

	r := e.do(req{Method: "GET", Path: contoso + "/users.csv?minVersion=" + strconv.FormatUint(v, 10), Token: admin})
	recs := readCSV(t, r)
	want := []string{"Display name", "User principal name", "Object Id", "User type", "Usage location", "Licenses", "Soft deletion time stamp"}
	if !slices.Equal(recs[0], want) {
		t.Fatalf("columns %q, want %q", recs[0], want)
	}
	if got := len(recs) - 1; got != 1+12+6+1 {
		t.Fatalf("%d rows, want 20 (admin, u01-u12, f1-f6, export)", got)
	}
	rows := byColumn(t, recs, "Object Id")
	for id, name := range names {
		got := rows[id]["Display name"]
		if strings.ContainsRune("=+-@", rune(name[0])) {
			name = "'" + name
		}
		if got != name {
			t.Errorf("%s: Display name %q, want %q", id, got, name)
		}
	}
	if got := rows["f6"]["Licenses"]; got != "Microsoft 365 E3+Power BI Pro" {
		t.Errorf("f6 Licenses %q, want the product names joined with +", got)
	}
	if got := rows["u07"]["Licenses"]; got != "Power BI Pro" { // from group g1
		t.Errorf("u07 Licenses %q", got)
	}
	if got := rows["u01"]["Licenses"]; got != "Microsoft 365 E3" {
		t.Errorf("u01 Licenses %q", got)
	}
	if got := rows["u12"]["Licenses"]; got != "" {
		t.Errorf("u12 Licenses %q, want none", got)
	}
	if r := rows["f6"]; r["User principal name"] != "f6@contoso.example" || r["Usage location"] != "FR" || r["User type"] != "Member" {
		t.Errorf("f6 row %v", r)
	}
	if rows["f5"]["Soft deletion time stamp"] == "" || rows["f6"]["Soft deletion time stamp"] != "" {
		t.Errorf("soft deletion: f5 %q, f6 %q", rows["f5"]["Soft deletion time stamp"], rows["f6"]["Soft deletion time stamp"])
	}

	// ?bom=false leaves the byte order mark out (for programs).
	r = e.do(req{Method: "GET", Path: contoso + "/users.csv?bom=false", Token: admin})
	if r.Code != 200 || !bytes.HasPrefix(r.Body, []byte("Display name,")) {
		t.Fatalf("bom=false: %d %q", r.Code, r.Body[:min(len(r.Body), 20)])
	}
	// An unknown parameter is refused as on every route.
	problem(t, e.do(req{Method: "GET", Path: contoso + "/users.csv?limit=5", Token: admin}), 400, "invalid_request")
	// A user without an admin role cannot export.
	problem(t, e.do(req{Method: "GET", Path: contoso + "/users.csv", Token: token(t, "contoso", "u01")}), 403, "not_allowed_for_role")
}

func TestCSVExportProductHolders(t *testing.T) {
	e, head := queryEnv(t, queries.Config{})
	admin := token(t, "contoso", "admin")
	mv := "?minVersion=" + strconv.FormatUint(head, 10)
	recs := readCSV(t, e.do(req{Method: "GET", Path: contoso + "/licenses/POWER_BI_PRO/users.csv" + mv, Token: admin}))
	want := []string{"Display name", "User principal name", "Object Id", "Assignment paths", "Disabled services", "Error"}
	if !slices.Equal(recs[0], want) {
		t.Fatalf("columns %q, want %q", recs[0], want)
	}
	rows := byColumn(t, recs, "Object Id")
	if len(rows) != 3 || rows["u07"]["Assignment paths"] != "Inherited (g1)" || rows["u07"]["User principal name"] != "u07@contoso.example" {
		t.Fatalf("Power BI holders: %v", rows)
	}
	recs = readCSV(t, e.do(req{Method: "GET", Path: contoso + "/licenses/05e9a617-0261-4cee-bb44-138d3ef5d965/users.csv" + mv, Token: admin}))
	rows = byColumn(t, recs, "Object Id")
	if len(rows) != 6 || rows["u01"]["Assignment paths"] != "Direct" || rows["u07"] != nil {
		t.Fatalf("SPE_E3 holders: %v", rows)
	}
	problem(t, e.do(req{Method: "GET", Path: contoso + "/licenses/NOPE/users.csv", Token: admin}), 404, "not_found")
}

// chunkRecorder records how much an answer writes between two flushes.
type chunkRecorder struct {
	*httptest.ResponseRecorder
	pending, largest, flushes int
}

func (w *chunkRecorder) Write(b []byte) (int, error) {
	w.pending += len(b)
	return w.ResponseRecorder.Write(b)
}

func (w *chunkRecorder) Flush() {
	w.flushes++
	w.largest = max(w.largest, w.pending)
	w.pending = 0
	w.ResponseRecorder.Flush()
}

// An export of many users is written a page at a time, each page flushed
// before the next is read: what the server holds is bounded by a page, not
// by the tenant.
func TestCSVExportStreamsInPages(t *testing.T) {
	e, _ := queryEnv(t, queries.Config{})
	admin := token(t, "contoso", "admin")
	var version uint64
	for batch := range 2 {
		var b strings.Builder
		b.WriteString("User principal name,Display name,Usage location\n")
		for i := range 750 {
			fmt.Fprintf(&b, "bulk%d-%03d@contoso.example,Bulk user %d %d with a long display name to fill the page,US\n", batch, i, batch, i)
		}
		a := importAnswer(t, importCSV(e, admin, "importId=bulk"+strconv.Itoa(batch), b.String()))
		if a.Counts["created"] != 750 {
			t.Fatalf("batch %d: %v", batch, a.Counts)
		}
		version = a.Version
	}
	hr := httptest.NewRequest("GET", contoso+"/users.csv?minVersion="+strconv.FormatUint(version, 10), nil)
	hr.Header.Set("Authorization", "Bearer "+admin)
	w := &chunkRecorder{ResponseRecorder: httptest.NewRecorder()}
	e.srv.ServeHTTP(w, hr)
	w.largest = max(w.largest, w.pending) // what was written after the last flush
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	recs, err := csv.NewReader(bytes.NewReader(w.Body.Bytes()[3:])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	const users = 1 + 12 + 1500
	if len(recs)-1 != users {
		t.Fatalf("%d rows, want %d", len(recs)-1, users)
	}
	total := w.Body.Len()
	pages := (users + queries.MaxLimit - 1) / queries.MaxLimit
	if w.flushes < pages {
		t.Errorf("%d flushes for %d pages", w.flushes, pages)
	}
	// No flush carried more than a page's rows (plus the header).
	if limit := total/pages + total/10; w.largest > limit {
		t.Errorf("largest write between flushes %d bytes of %d in all: more than a page (%d)", w.largest, total, limit)
	}
	t.Logf("%d bytes in %d flushes, largest %d", total, w.flushes, w.largest)
}

func TestCSVImportDryRunReportsEveryRowAndWritesNothing(t *testing.T) {
	e, _ := queryEnv(t, queries.Config{})
	admin := token(t, "contoso", "admin")
	e.buy("contoso", "admin", "s4", "POWER_BI_PRO", 3) // 2 go to g1's members in error, 1 is free
	before := e.version("contoso")
	file := "\xef\xbb\xbfUser name,First name,Last name,Usage location,Licenses,Department\r\n" +
		"ann@contoso.example,Ann,Lee,US,Microsoft 365 E3,Sales\r\n" + // row 1: fine (Excel's line ends)
		",No,Upn,US,,Sales\n" + // 2: no UPN
		"not-an-upn,Bad,Upn,US,,\n" + // 3: invalid UPN
		"ANN@contoso.example,Ann,Again,US,,\n" + // 4: duplicate of row 1
		"u01@contoso.example,Taken,Upn,US,,\n" + // 5: already exists
		"bob@contoso.example,Bob,Far,XX,,\n" + // 6: unknown usage location
		"cy@contoso.example,Cy,Nope,US,Microsoft 999 Z9,\n" + // 7: unknown product
		"dee@contoso.example,Dee,Pbi,US,POWER_BI_PRO,\n" + // 8: Power BI Pro: its one license is free
		"eve@contoso.example,Eve,Pbi,US,POWER_BI_PRO,\n" + // 9: ...and row 8 took it
		",,,,,\n" + // 10: blank
		"fay@contoso.example,Fay,Nowhere,,SPE_E3,\n" // 11: a license needs a usage location
	a := importAnswer(t, importCSV(e, admin, "dryRun=true", file))
	if !a.DryRun || a.Rows != 11 || !slices.Equal(a.IgnoredColumns, []string{"Department"}) {
		t.Fatalf("answer %+v", a)
	}
	want := []struct{ status, code, column string }{
		{"valid", "", ""},
		{"failed", "invalid_request", "User principal name"},
		{"failed", "invalid_request", "User principal name"},
		{"failed", "duplicate_in_file", "User principal name"},
		{"failed", "already_exists", "User principal name"},
		{"failed", "invalid_request", "Usage location"},
		{"failed", "not_found", "Licenses"},
		{"valid", "", ""},
		{"failed", "insufficient_licenses", "Licenses"},
		{"skipped", "", ""},
		{"failed", "usage_location_required", "Licenses"},
	}
	for i, w := range want {
		r := a.Results[i]
		code, column := "", ""
		if r.Problem != nil {
			code, column = r.Problem.Code, r.Problem.Column
		}
		if r.Row != i+1 || r.Line != i+2 || r.Status != w.status || code != w.code || column != w.column {
			t.Errorf("row %d: %+v %+v, want %v", i+1, r, r.Problem, w)
		}
	}
	if a.Counts["valid"] != 2 || a.Counts["failed"] != 8 || a.Counts["skipped"] != 1 {
		t.Errorf("counts %v", a.Counts)
	}
	// Empty header cells (Excel pads a sheet's columns) are not columns.
	if a := importAnswer(t, importCSV(e, admin, "dryRun=true", "User principal name,,\nzed@contoso.example,,\n")); len(a.IgnoredColumns) != 0 || a.Results[0].Status != "valid" {
		t.Fatalf("padded file: %s", mustJSON(a))
	}
	if after := e.version("contoso"); after != before {
		t.Fatalf("a dry run wrote: version %d → %d", before, after)
	}
}

func TestCSVImportCreatesPerRowAndResumesWithTheImportID(t *testing.T) {
	e, _ := queryEnv(t, queries.Config{})
	admin := token(t, "contoso", "admin")
	e.buy("contoso", "admin", "s4", "POWER_BI_PRO", 3) // 2 go to g1's members in error, 1 is free
	file := "User principal name,Display name,Usage location,Licenses,Object Id\n" +
		"ann@contoso.example,Ann Lee,US,Microsoft 365 E3+Power BI Pro,\n" +
		"bob@contoso.example,Bob,XX,,\n" + // bad usage location: refused, the others go on
		"cy@contoso.example,Cy,GB,,cy\n" +
		"dee@contoso.example,Dee,GB,Power BI Pro,dee\n" // Power BI's one license went to ann: no dee either (all or nothing)
	a := importAnswer(t, importCSV(e, admin, "importId=hr-2026-12", file))
	statuses := func(a api.ImportAnswer) []string {
		out := []string{}
		for _, r := range a.Results {
			out = append(out, r.Status)
		}
		return out
	}
	if got := statuses(a); !slices.Equal(got, []string{"created", "failed", "created", "failed"}) {
		t.Fatalf("statuses %v: %s", got, mustJSON(a))
	}
	if p := a.Results[3].Problem; p.Code != "insufficient_licenses" || p.Column != "Licenses" {
		t.Errorf("dee's problem %+v", p)
	}
	ann := a.Results[0].ID
	v := a.Version
	// The refused row's user was not created without their licenses.
	e.must(404, req{Method: "GET", Path: contoso + "/users/dee?minVersion=" + strconv.FormatUint(v, 10), Token: admin})
	u := e.must(200, req{Method: "GET", Path: contoso + "/users/" + ann + "?minVersion=" + strconv.FormatUint(v, 10), Token: admin}).JSON(t)
	if u["userPrincipalName"] != "ann@contoso.example" || len(u["licenses"].([]any)) != 2 {
		t.Fatalf("ann: %v", u)
	}
	e.must(200, req{Method: "GET", Path: contoso + "/users/cy?minVersion=" + strconv.FormatUint(v, 10), Token: admin})
	added := countType(e.events("contoso"), domain.TypeUserAdded)

	// The same file with the same import id: nothing is created again.
	again := importAnswer(t, importCSV(e, admin, "importId=hr-2026-12", file))
	if got := statuses(again); !slices.Equal(got, []string{"alreadyDone", "failed", "alreadyDone", "failed"}) {
		t.Fatalf("re-run statuses %v", got)
	}
	if again.Results[0].ID != ann {
		t.Errorf("re-run named ann %s, first %s", again.Results[0].ID, ann)
	}
	if n := countType(e.events("contoso"), domain.TypeUserAdded); n != added {
		t.Fatalf("re-run added users: %d → %d", added, n)
	}
	// The Idempotency-Key names the import as well as ?importId does.
	keyed := e.do(req{Method: "POST", Path: contoso + "/users/import", Token: admin, Body: file,
		Header: map[string]string{"Content-Type": "text/csv", "Idempotency-Key": "hr-2026-12"}})
	if got := statuses(importAnswer(t, keyed)); !slices.Equal(got, []string{"alreadyDone", "failed", "alreadyDone", "failed"}) {
		t.Fatalf("keyed re-run statuses %v", got)
	}
	// A dry run with the import id says so too.
	dry := importAnswer(t, importCSV(e, admin, "dryRun=true&importId=hr-2026-12", file))
	if got := statuses(dry); !slices.Equal(got, []string{"alreadyDone", "failed", "alreadyDone", "failed"}) {
		t.Fatalf("dry re-run statuses %v", got)
	}

	// Fixed, the refused row goes in; the done ones stay done.
	fixed := strings.Replace(file, "Bob,XX", "Bob,DE", 1)
	third := importAnswer(t, importCSV(e, admin, "importId=hr-2026-12", fixed))
	if got := statuses(third); !slices.Equal(got, []string{"alreadyDone", "created", "alreadyDone", "failed"}) {
		t.Fatalf("fixed re-run statuses %v", got)
	}
	if n := countType(e.events("contoso"), domain.TypeUserAdded); n != added+1 {
		t.Fatalf("fixed re-run: %d users added, want 1", n-added)
	}
	// Another content under a done row's key is refused, not applied.
	changed := strings.Replace(fixed, "Cy,GB", "Cy,FR", 1)
	fourth := importAnswer(t, importCSV(e, admin, "importId=hr-2026-12", changed))
	if p := fourth.Results[2].Problem; fourth.Results[2].Status != "failed" || p == nil || p.Code != "idempotency_key_reused" {
		t.Fatalf("changed row: %+v", fourth.Results[2])
	}
}

func TestCSVImportRefusals(t *testing.T) {
	e, _ := queryEnv(t, queries.Config{})
	admin := token(t, "contoso", "admin")
	ok := "User principal name\nann@contoso.example\n"
	before := e.version("contoso")

	// Roles: as POST /users, a Global or User admin.
	for _, q := range []string{"importId=x", "dryRun=true"} {
		problem(t, importCSV(e, token(t, "contoso", "u01"), q, ok), 403, "not_allowed_for_role")
	}
	problem(t, importCSV(e, token(t, "fabrikam", "admin"), "importId=x", ok), 404, "not_found")

	// A malformed file is refused whole, naming its line.
	p := problem(t, importCSV(e, admin, "importId=x", "User principal name,Display name\nann@contoso.example,Ann\nbob@contoso.example,Bo\"b\"\n"), 400, "invalid_request")
	if d := p["detail"].(string); !strings.Contains(d, "line 3") {
		t.Errorf("detail %q does not name line 3", d)
	}
	p = problem(t, importCSV(e, admin, "importId=x", "User principal name,Display name\nann@contoso.example,Ann\nbob@contoso.example,Bob,extra\n"), 400, "invalid_request")
	if d := p["detail"].(string); !strings.Contains(d, "line 3") {
		t.Errorf("detail %q does not name line 3", d)
	}
	p = problem(t, importCSV(e, admin, "importId=x", "User principal name\nann@contoso.example\nb\xffb@contoso.example\n"), 400, "invalid_request")
	if d := p["detail"].(string); !strings.Contains(d, "line 3") {
		t.Errorf("detail %q does not name line 3", d)
	}
	problem(t, importCSV(e, admin, "importId=x", "Display name\nAnn\n"), 400, "invalid_request")
	problem(t, importCSV(e, admin, "importId=x", ""), 400, "invalid_request")
	problem(t, importCSV(e, admin, "importId=x", "User principal name\n"), 400, "invalid_request")
	problem(t, importCSV(e, admin, "", ok), 400, "invalid_request") // no import id
	problem(t, importCSV(e, admin, "importId=a/b", ok), 400, "invalid_request")
	problem(t, e.do(req{Method: "POST", Path: contoso + "/users/import?importId=x", Token: admin, Body: ok,
		Header: map[string]string{"Content-Type": "text/csv", "Idempotency-Key": "y"}}), 400, "invalid_request")
	problem(t, e.do(req{Method: "POST", Path: contoso + "/users/import?importId=x", Token: admin, Body: ok}), 415, "invalid_request") // JSON content type

	// Bounds: rows, then bytes.
	var b strings.Builder
	b.WriteString("User principal name\n")
	for i := range api.MaxImportRows + 1 {
		fmt.Fprintf(&b, "n%d@contoso.example\n", i)
	}
	problem(t, importCSV(e, admin, "importId=x", b.String()), 400, "too_many_users")
	big := "User principal name,Display name\n" + strings.Repeat("ann@contoso.example,"+strings.Repeat("a", 200)+"\n", 6000)
	problem(t, importCSV(e, admin, "importId=x", big), 413, "invalid_request")

	if after := e.version("contoso"); after != before {
		t.Fatalf("refused imports wrote: version %d → %d", before, after)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestCSVImportEchoesBoundedCells: the import's answer repeats the file's
// cells it reports on (an ignored column's name, a row's user principal
// name and id), but not a cell longer than any value a field accepts
// (256 bytes): that is cut as problems cut input, so a 1 MiB file does
// not come back whole.
func TestCSVImportEchoesBoundedCells(t *testing.T) {
	e, _ := queryEnv(t, queries.Config{})
	admin := token(t, "contoso", "admin")
	long := strings.Repeat("z", 5000)
	file := "User principal name,Object Id," + long + "\n" +
		long + "@contoso.example,ok1,\n" +
		"ok2@contoso.example," + long + ",\n"
	r := importCSV(e, admin, "dryRun=true", file)
	a := importAnswer(t, r)
	if strings.Contains(string(r.Body), strings.Repeat("z", 300)) {
		t.Fatalf("the answer repeats a long cell whole (%d bytes)", len(r.Body))
	}
	if len(a.IgnoredColumns) != 1 || !strings.HasPrefix(a.IgnoredColumns[0], "zzz") ||
		a.Results[0].Status != "failed" || !strings.HasPrefix(a.Results[0].UserPrincipalName, "zzz") ||
		a.Results[1].Status != "failed" || !strings.HasPrefix(a.Results[1].ID, "zzz") {
		t.Fatalf("answer %+v", a)
	}
}
