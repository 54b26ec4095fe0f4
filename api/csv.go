package api

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/queries"
)

// The CSV routes (docs/API.md, Additions: "CSV export and import"): the
// admin center's "Export users" of the Active users page and of a product's
// page, and its "Add multiple users" from a CSV file.

// ---- export

// exportPageSize is how many users an export reads and writes at a time:
// an export holds one page in memory, whatever the tenant's size.
const exportPageSize = queries.MaxLimit

// The export's columns, in the admin center's words.
var (
	userExportColumns = []string{"Display name", "User principal name", "Object Id", "User type",
		"Usage location", "Licenses", "Soft deletion time stamp"}
	holderExportColumns = []string{"Display name", "User principal name", "Object Id", "Assignment paths",
		"Disabled services", "Error"}
)

// exportParams are the query parameters of an export.
var exportParams = []string{"minVersion", "bom"}

// exportUsers is GET /users.csv: every user of the tenant with their
// licenses, one CSV row each, ordered by id.
func (s *Server) exportUsers(c *gin.Context) {
	q := s.cfg.Queries
	s.writeExport(c, "users.csv", userExportColumns,
		func(o queries.Options) (queries.Answer[[]queries.ExportedUser], error) {
			return q.ExportUsers(c.Request.Context(), TenantOf(c), o)
		},
		func(u *queries.ExportedUser) []string {
			names := make([]string, len(u.Licenses))
			for i, l := range u.Licenses {
				names[i] = l.ProductName
			}
			slices.Sort(names)
			deleted := ""
			if u.DeletedAt != nil {
				deleted = u.DeletedAt.UTC().Format(time.RFC3339)
			}
			return []string{u.DisplayName, u.UserPrincipalName, u.ID, u.UserType, u.UsageLocation,
				strings.Join(names, "+"), deleted}
		})
}

// exportLicenseUsers is GET /licenses/{sku}/users.csv: the holders of
// one product, one CSV row each, ordered by id.
func (s *Server) exportLicenseUsers(c *gin.Context) {
	q, sku := s.cfg.Queries, c.Param("sku")
	s.writeExport(c, "licensed-users.csv", holderExportColumns,
		func(o queries.Options) (queries.Answer[[]queries.ExportedUser], error) {
			return q.ExportLicenseUsers(c.Request.Context(), TenantOf(c), sku, o)
		},
		func(u *queries.ExportedUser) []string {
			l := u.Licenses[0]
			paths := make([]string, len(l.Sources))
			for i, src := range l.Sources {
				paths[i] = assignmentPath(src)
			}
			return []string{u.DisplayName, u.UserPrincipalName, u.ID, strings.Join(paths, "+"),
				strings.Join(l.DisabledPlanNames, "+"), l.Error}
		})
}

// assignmentPath says a license's source as the admin center does.
func assignmentPath(source string) string {
	switch {
	case source == "direct":
		return "Direct"
	case source == "selfService":
		return "Self-service"
	case strings.HasPrefix(source, "group:"):
		return "Inherited (" + strings.TrimPrefix(source, "group:") + ")"
	}
	return source
}

// writeExport streams an export: it reads the first page (an error there is
// a problem, as any query's), then writes the header and each page's rows,
// flushing after every page, and reads the next page until the last. An
// error after the first page cannot be a problem any more (the status is
// sent): the connection is cut, so the client sees a truncated body (a
// chunked answer without its last chunk), never a short file that looks
// whole.
func (s *Server) writeExport(c *gin.Context, filename string, columns []string,
	page func(queries.Options) (queries.Answer[[]queries.ExportedUser], error),
	row func(*queries.ExportedUser) []string) {
	o, err := queryOptions(c, exportParams)
	if err != nil {
		WriteProblem(c, err)
		return
	}
	bom := true
	switch v := c.Query("bom"); v {
	case "", "true":
	case "false":
		bom = false
	default:
		WriteProblem(c, invalidRequest("bom", "bom must be true or false, got %q", bounded(v)))
		return
	}
	o.Limit = exportPageSize
	a, err := page(o)
	if err != nil {
		WriteProblem(c, err)
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	h.Set("X-Tenant-Version", strconv.FormatUint(a.Version, 10))
	c.Status(http.StatusOK)
	if bom {
		_, _ = c.Writer.Write(utf8BOM)
	}
	w := csv.NewWriter(c.Writer)
	_ = w.Write(columns)
	for {
		for i := range a.Value {
			_ = w.Write(neutralized(row(&a.Value[i])))
		}
		w.Flush()
		if err := w.Error(); err != nil { // the client went away
			loggerOf(c).Info("csv export stopped", "error", err.Error())
			panic(http.ErrAbortHandler)
		}
		c.Writer.Flush()
		if a.NextCursor == "" {
			return
		}
		o.Cursor, o.MinVersion = a.NextCursor, a.Version
		if a, err = page(o); err != nil {
			loggerOf(c).Error("csv export failed after its first page", "error", err.Error())
			panic(http.ErrAbortHandler)
		}
	}
}

// neutralized protects cells from formula injection (OWASP "CSV
// Injection"): a cell a spreadsheet would read as a formula (it begins with
// = + - @, or a tab or carriage return) gets a leading apostrophe, which
// spreadsheets show as text and do not display.
func neutralized(cells []string) []string {
	for i, s := range cells {
		if s != "" && strings.IndexByte("=+-@\t\r", s[0]) >= 0 {
			cells[i] = "'" + s
		}
	}
	return cells
}

// ---- import

// MaxImportRows is the most users one CSV import may create.
const MaxImportRows = 1000

// importParams are the query parameters of POST /users/import.
var importParams = []string{"dryRun", "importId"}

// The statuses of an imported row.
const (
	rowValid       = "valid"       // dry run: would be created
	rowCreated     = "created"     // created (with its licenses)
	rowAlreadyDone = "alreadyDone" // this import id's row was done before: nothing written
	rowFailed      = "failed"      // refused: nothing written for the row
	rowSkipped     = "skipped"     // every cell blank
)

// ImportAnswer is the answer of POST /users/import.
type ImportAnswer struct {
	ImportID string `json:"importId,omitempty"`
	DryRun   bool   `json:"dryRun"`
	// Version is the tenant's version after the import (before it, for a
	// dry run).
	Version uint64 `json:"version"`
	Rows    int    `json:"rows"`
	// Counts counts the rows of each status.
	Counts map[string]int `json:"counts"`
	// IgnoredColumns are the header's columns the import does not read.
	IgnoredColumns []string       `json:"ignoredColumns"`
	Results        []ImportResult `json:"results"`
}

// ImportResult is what became of one row.
type ImportResult struct {
	// Row is the row's number among the data rows (1: the first after the
	// header); Line is its line in the file.
	Row               int            `json:"row"`
	Line              int            `json:"line"`
	ID                string         `json:"id,omitempty"`
	UserPrincipalName string         `json:"userPrincipalName,omitempty"`
	Status            string         `json:"status"`
	Licenses          []string       `json:"licenses,omitempty"` // skuIds
	Problem           *ImportProblem `json:"problem,omitempty"`
}

// ImportProblem says why a row was refused: the code and detail of the
// problem the same request to POST /users (or assignLicense) would answer,
// and the column at fault.
type ImportProblem struct {
	Code    string `json:"code"`
	Detail  string `json:"detail"`
	Column  string `json:"column,omitempty"`
	Rule    string `json:"rule,omitempty"`
	Missing int    `json:"missing,omitempty"`

	// format and args are Detail before formatting, for translation (as
	// Problem's).
	format string
	args   []any
}

// importProblemf is a row's problem whose detail is format (a literal) with args.
func importProblemf(code, column, format string, args ...any) *ImportProblem {
	return &ImportProblem{Code: code, Column: column, Detail: fmt.Sprintf(format, args...), format: format, args: args}
}

// The columns an import reads, by their normalized header (lower case,
// without spaces, underscores or hyphens); the export's names and the
// admin center's template's ("User name") are among them.
const (
	colUPN      = "User principal name"
	colDisplay  = "Display name"
	colFirst    = "First name"
	colLast     = "Last name"
	colLocation = "Usage location"
	colType     = "User type"
	colLicenses = "Licenses"
	colID       = "Object Id"
)

var importColumns = map[string]string{
	"userprincipalname": colUPN, "username": colUPN, "upn": colUPN,
	"displayname": colDisplay, "firstname": colFirst, "lastname": colLast,
	"usagelocation": colLocation, "usertype": colType, "licenses": colLicenses,
	"objectid": colID, "id": colID,
}

func normalizedHeader(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.NewReplacer(" ", "", "_", "", "-", "").Replace(s)
}

// importRow is a data row read from the file.
type importRow struct {
	row, line int
	user      NewUserRequest
	licenses  []string // as written
	skus      []string // resolved skuIds
	blank     bool
	problem   *ImportProblem
}

// importUsers is POST /users/import: it reads the whole CSV (at most
// MaxBodyBytes, MaxImportRows rows) before doing anything, so a malformed
// file writes nothing; then it checks (dry run) or creates each row's user
// and gives their licenses, each row on its own: a refused row does not
// stop the others.
func (s *Server) importUsers(c *gin.Context) {
	if err := checkQuery(c, importParams...); err != nil {
		WriteProblem(c, err)
		return
	}
	dryRun := false
	switch v := c.Query("dryRun"); v {
	case "", "false":
	case "true":
		dryRun = true
	default:
		WriteProblem(c, invalidRequest("dryRun", "dryRun must be true or false, got %q", bounded(v)))
		return
	}
	// The import id: ?importId, or the Idempotency-Key (the same thing:
	// each row's key is derived from it).
	importID := c.Query("importId")
	key, err := idempotencyKey(c)
	switch {
	case err != nil:
		WriteProblem(c, err)
		return
	case importID != "" && !domain.ValidID(importID):
		WriteProblem(c, invalidRequest("importId", "importId %q must match [A-Za-z0-9._@-]{1,128}", bounded(importID)))
		return
	case importID != "" && key != "" && key != importID:
		WriteProblem(c, invalidRequest(HeaderIdempotencyKey, "Idempotency-Key and importId name the import both: give one, or the same value"))
		return
	case importID == "":
		importID = key
	}
	if importID == "" && !dryRun {
		WriteProblem(c, invalidRequest("importId", "importId (or an Idempotency-Key) is required: it names the import, so that posting the same file again with it creates nothing twice"))
		return
	}
	if err := csvContentType(c.Request.Header.Get("Content-Type")); err != nil {
		WriteProblem(c, err)
		return
	}
	body, err := readBody(c)
	if err != nil {
		WriteProblem(c, err)
		return
	}
	rows, ignored, err := readImport(body)
	if err != nil {
		WriteProblem(c, err)
		return
	}
	ans := ImportAnswer{ImportID: importID, DryRun: dryRun, Rows: len(rows), Counts: map[string]int{},
		IgnoredColumns: ignored, Results: make([]ImportResult, len(rows))}
	run := &importRun{s: s, c: c, tenant: TenantOf(c), actor: ActorOf(c), importID: importID, rows: rows, results: ans.Results}
	if dryRun {
		ans.Version, err = run.check()
	} else {
		ans.Version, err = run.apply()
	}
	if err != nil {
		WriteProblem(c, err)
		return
	}
	lang := requestLang(c)
	for _, r := range ans.Results {
		ans.Counts[r.Status]++
		if r.Problem != nil {
			r.Problem.Detail = localized(lang, r.Problem.Detail, r.Problem.format, r.Problem.args)
		}
	}
	writeJSON(c, http.StatusOK, "application/json", ans)
}

// csvContentType accepts text/csv, with no charset or UTF-8.
func csvContentType(ct string) error {
	media, params, _ := strings.Cut(ct, ";")
	if !strings.EqualFold(strings.TrimSpace(media), "text/csv") {
		return httpErrorf(http.StatusUnsupportedMediaType, domain.CodeInvalidRequest, "Content-Type", "send the users as Content-Type: text/csv, not %q", bounded(ct))
	}
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "charset") && !strings.EqualFold(strings.Trim(v, `"`), "utf-8") {
			return httpErrorf(http.StatusUnsupportedMediaType, domain.CodeInvalidRequest, "Content-Type", "the CSV must be UTF-8, not %q", bounded(v))
		}
	}
	return nil
}

// readImport parses the file: a header naming the columns, then the rows.
// A file that is not CSV is refused naming its line.
func readImport(body []byte) ([]importRow, []string, error) {
	body = bytes.TrimPrefix(body, utf8BOM) // Excel writes one
	if i := invalidUTF8At(body); i >= 0 {
		return nil, nil, invalidRequest("body", "line %d is not UTF-8; save the file as CSV UTF-8", 1+bytes.Count(body[:i], []byte{'\n'}))
	}
	r := csv.NewReader(bytes.NewReader(body))
	header, err := r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, invalidRequest("body", "the CSV is empty: give a header line (User principal name, Display name, …) and a line per user")
		}
		return nil, nil, csvError(err)
	}
	cols := map[string]int{}
	ignored := []string{}
	for i, h := range header {
		name, ok := importColumns[normalizedHeader(h)]
		if !ok {
			if strings.TrimSpace(h) != "" { // Excel pads with empty columns
				ignored = append(ignored, echoCell(h))
			}
			continue
		}
		if _, dup := cols[name]; dup {
			return nil, nil, invalidRequest("body", "line 1: the header names the column %q twice", name)
		}
		cols[name] = i
	}
	if _, ok := cols[colUPN]; !ok {
		return nil, nil, invalidRequest("body", "line 1: the header has no %q column (the first line of the file must name the columns)", colUPN)
	}
	cell := func(rec []string, name string) string {
		if i, ok := cols[name]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var rows []importRow
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, csvError(err)
		}
		line, _ := r.FieldPos(0)
		if len(rows) == MaxImportRows {
			return nil, nil, domain.Errorf(domain.CodeTooManyUsers, "body", "one import creates at most %d users; split the file", MaxImportRows)
		}
		ir := importRow{row: len(rows) + 1, line: line, blank: true}
		for _, v := range rec {
			if strings.TrimSpace(v) != "" {
				ir.blank = false
			}
		}
		ir.user = NewUserRequest{ID: cell(rec, colID), UserPrincipalName: cell(rec, colUPN), DisplayName: cell(rec, colDisplay),
			UserType: cell(rec, colType), UsageLocation: cell(rec, colLocation)}
		if ir.user.DisplayName == "" {
			ir.user.DisplayName = strings.TrimSpace(cell(rec, colFirst) + " " + cell(rec, colLast))
		}
		for _, l := range strings.Split(cell(rec, colLicenses), "+") {
			if l = strings.TrimSpace(l); l != "" {
				ir.licenses = append(ir.licenses, l)
			}
		}
		rows = append(rows, ir)
	}
	if len(rows) == 0 {
		return nil, nil, invalidRequest("body", "the CSV has a header but no users")
	}
	return rows, ignored, nil
}

func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return invalidRequest("body", "line %d, column %d: %v", pe.Line, pe.Column, pe.Err)
	}
	return invalidRequest("body", "the CSV cannot be read: %v", err)
}

// importRun is one import's rows and what became of them.
type importRun struct {
	s        *Server
	c        *gin.Context
	tenant   string
	actor    domain.Actor
	importID string
	rows     []importRow
	results  []ImportResult
}

// prepare resolves the rows against the tenant (t): product names to
// skuIds, a user id for each row, and the rows the file itself refuses
// (blank, no UPN, a UPN or id given twice, an unknown product).
func (run *importRun) prepare(t *domain.Tenant) {
	catalog := run.s.cfg.Decider.Catalog
	upns, ids := map[string]int{}, map[string]int{}
	for i := range run.rows {
		ir := &run.rows[i]
		res := &run.results[i]
		*res = ImportResult{Row: ir.row, Line: ir.line, UserPrincipalName: echoCell(ir.user.UserPrincipalName)}
		switch {
		case ir.blank:
			res.Status = rowSkipped
			continue
		case ir.user.UserPrincipalName == "":
			ir.problem = &ImportProblem{Code: string(domain.CodeInvalidRequest), Column: colUPN, Detail: "the user principal name is required"}
		}
		if ir.user.ID == "" && ir.problem == nil {
			ir.user.ID = newID("user", run.tenant, run.actor, run.rowKey(ir.row))
		}
		res.ID = echoCell(ir.user.ID)
		if ir.problem == nil {
			upn := strings.ToLower(ir.user.UserPrincipalName)
			if first, dup := upns[upn]; dup {
				ir.problem = importProblemf(codeDuplicateInFile, colUPN, "row %d already has user principal name %q", first, bounded(ir.user.UserPrincipalName))
			} else if first, dup := ids[ir.user.ID]; dup {
				ir.problem = importProblemf(codeDuplicateInFile, colID, "row %d already has id %q", first, bounded(ir.user.ID))
			} else {
				upns[upn], ids[ir.user.ID] = ir.row, ir.row
			}
		}
		for _, name := range ir.licenses {
			if ir.problem != nil {
				break
			}
			sku, ok := productSku(catalog, t, name)
			if !ok {
				ir.problem = importProblemf(string(domain.CodeNotFound), colLicenses, "%q is not a product of the catalog or of the tenant (give its name, skuPartNumber or skuId)", bounded(name))
				break
			}
			if !slices.Contains(ir.skus, sku) {
				ir.skus = append(ir.skus, sku)
			}
		}
		res.Licenses = ir.skus
		if ir.problem != nil {
			res.Status, res.Problem = rowFailed, ir.problem
		}
	}
}

// codeDuplicateInFile is the code of a row whose UPN or id an earlier row
// of the same file has.
const codeDuplicateInFile = "duplicate_in_file"

// productSku finds a product by skuId, skuPartNumber or display name
// (case-insensitive): the catalog's, then the tenant's apps.
func productSku(catalog *domain.Catalog, t *domain.Tenant, name string) (string, bool) {
	if p, ok := catalog.Lookup(name); ok {
		return p.SkuID, true
	}
	for i := range catalog.Products {
		if strings.EqualFold(catalog.Products[i].DisplayName, name) {
			return catalog.Products[i].SkuID, true
		}
	}
	for _, id := range slices.Sorted(maps.Keys(t.Apps)) {
		p := t.Apps[id]
		if strings.EqualFold(id, name) || strings.EqualFold(p.SkuPartNumber, name) || strings.EqualFold(p.DisplayName, name) {
			return id, true
		}
	}
	return "", false
}

// rowKey is the idempotency key of a row: the import id and the row's
// number, so posting the same file with the same import id again replays
// each row's first answer instead of creating twice.
func (run *importRun) rowKey(row int) string {
	return "import:" + run.importID + ":row:" + strconv.Itoa(row)
}

// command is a row's command: the user's creation with their licenses, all
// or nothing (as POST /users with "licenses"), stamped with the row's
// derived key and the hash of what the row asks (another file under the
// same import id and row number is refused as idempotency_key_reused).
func (run *importRun) command(ir *importRow, now time.Time) *domain.AddUser {
	add := &domain.AddUser{User: ir.user.toDomain()}
	for _, sku := range ir.skus {
		add.Licenses = append(add.Licenses, domain.LicenseRequest{SkuID: sku, DisabledPlans: []string{}})
	}
	m := domain.Meta(add)
	m.TenantID, m.Actor, m.CorrelationID, m.Now = run.tenant, run.actor, RequestIDOf(run.c), now
	key := run.rowKey(ir.row)
	if run.importID == "" {
		key = "dry-run:" + key
	}
	m.CommandID = CommandID(run.tenant, run.actor, key)
	b, _ := json.Marshal(struct {
		User     any      `json:"user"`
		Licenses []string `json:"licenses,omitempty"`
	}{ir.user, ir.skus})
	m.RequestHash = RequestHash(http.MethodPost, run.c.Request.URL.Path, b)
	return add
}

// problemColumn is the column a row's refusal falls back to when its field
// is none of the user's: the licenses, if the row asks for any.
func problemColumn(ir *importRow) string {
	if len(ir.skus) > 0 {
		return colLicenses
	}
	return ""
}

// check is the dry run: each row's commands decided, in order, against a
// copy of the tenant that takes in the events of the rows before it (so a
// UPN taken by an earlier row, or licenses the earlier rows use up, are
// seen), and nothing written.
func (run *importRun) check() (uint64, error) {
	var version uint64
	err := run.s.cfg.Commands.View(run.c.Request.Context(), run.tenant, func(t *domain.Tenant) error {
		if !t.Exists() {
			return TenantNotFound(run.tenant)
		}
		version = t.Version
		run.prepare(t)
		draft := t.Clone()
		now := time.Now().UTC()
		decide := func(cmd domain.Command) (done bool, err error) {
			// A row this import id already did decides to nothing (a row
			// with other content under its key is refused).
			_, done = draft.CommandRecord(domain.Meta(cmd).CommandID)
			events, err := run.s.cfg.Decider.Decide(draft, cmd)
			if err != nil || done {
				return done, err
			}
			for _, e := range events {
				domain.Evolve(draft, e)
			}
			return false, nil
		}
		for i := range run.rows {
			ir, res := &run.rows[i], &run.results[i]
			if res.Status != "" {
				continue
			}
			done, err := decide(run.command(ir, now))
			switch {
			case err != nil:
				res.Status, res.Problem = rowFailed, rowProblem(err, problemColumn(ir))
			case done:
				res.Status = rowAlreadyDone
			default:
				res.Status = rowValid
			}
		}
		return nil
	})
	return version, err
}

// apply is the real import: for each row, the user's creation with their
// licenses through the command handler, as POST /users with "licenses" and
// the row's derived Idempotency-Key would: all or nothing per row.
func (run *importRun) apply() (uint64, error) {
	ctx := run.c.Request.Context()
	var version uint64
	err := run.s.cfg.Commands.View(ctx, run.tenant, func(t *domain.Tenant) error {
		if !t.Exists() {
			return TenantNotFound(run.tenant)
		}
		version = t.Version
		run.prepare(t)
		return nil
	})
	if err != nil {
		return 0, err
	}
	for i := range run.rows {
		ir, res := &run.rows[i], &run.results[i]
		if res.Status != "" {
			continue
		}
		if err := ctx.Err(); err != nil { // the client went away: stop
			return 0, err
		}
		r, err := run.s.cfg.Commands.Handle(ctx, run.command(ir, time.Time{}))
		if err != nil {
			res.Status, res.Problem = rowFailed, rowProblem(err, problemColumn(ir))
			continue
		}
		version = max(version, r.Version)
		res.Status = rowCreated
		if r.Replayed {
			res.Status = rowAlreadyDone
		}
	}
	return version, nil
}

// rowProblem is a command's refusal as a row's problem, its field named as
// the file's column (fallback when the field is not a column's).
func rowProblem(err error, fallback string) *ImportProblem {
	p, _, _ := toProblem(err)
	out := &ImportProblem{Code: p.Code, Detail: p.Detail, Rule: p.Rule, Missing: p.Missing, format: p.format, args: p.args}
	switch f := strings.TrimPrefix(p.Field, "user."); f {
	case "userPrincipalName":
		out.Column = colUPN
	case "displayName":
		out.Column = colDisplay
	case "usageLocation":
		out.Column = colLocation
	case "userType":
		out.Column = colType
	case "id":
		out.Column = colID
	default:
		out.Column = fallback
	}
	if p.Code == string(domain.CodeIdempotencyKeyReused) {
		out.Column = ""
		out.Detail, out.format, out.args = "this import id's row was already imported with other content; use a new importId for a changed file", "", nil
	}
	return out
}

// maxCellEcho is the longest cell the import's answer repeats whole: the
// longest value any column's field accepts (256 bytes of text).
const maxCellEcho = 256

// echoCell is a cell of the file as the answer repeats it: whole, or, when
// no field could accept it, cut as problems cut input (bounded).
func echoCell(s string) string {
	if len(s) > maxCellEcho {
		return bounded(s)
	}
	return s
}

// invalidUTF8At is the offset of the first byte of b that is not UTF-8, or -1.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}
