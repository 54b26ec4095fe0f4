package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/queries"
)

// curlCall is one curl command of docs/QUICKSTART.md with its expectation.
type curlCall struct {
	line       int
	method     string
	url        string
	headers    map[string]string
	body       string
	hasBody    bool
	wantStatus int
	wantCode   string
}

var expectRe = regexp.MustCompile(`#\s*→\s*(\d{3})(?:\s+([a-z_]+))?\s*$`)

// captureRe is a line that keeps what a curl answered in a variable, as
// V=$(curl … | sed -n '…')   # → 200: the curl is run, its status checked.
var captureRe = regexp.MustCompile(`^[A-Z]+=\$\((curl .*) \| sed -n '[^']*'\)(\s*#.*)$`)

// minVersionRe finds the version a query of the page waits for.
var minVersionRe = regexp.MustCompile(`[?&]minVersion=(\d+)`)

// parseQuickstart extracts every curl command of the ```sh blocks.
func parseQuickstart(t *testing.T, doc string, vars map[string]string) []curlCall {
	t.Helper()
	var (
		calls   []curlCall
		inSh    bool
		pending strings.Builder
		startLn int
	)
	sc := bufio.NewScanner(strings.NewReader(doc))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			inSh = !inSh && (trimmed == "```sh" || trimmed == "```bash")
			continue
		}
		if !inSh {
			continue
		}
		if pending.Len() == 0 {
			startLn = n
		}
		if strings.HasSuffix(line, "\\") {
			pending.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		pending.WriteString(line)
		cmd := strings.TrimSpace(pending.String())
		pending.Reset()
		if m := captureRe.FindStringSubmatch(cmd); m != nil {
			cmd = m[1] + m[2]
		}
		if !strings.HasPrefix(cmd, "curl ") {
			continue
		}
		m := expectRe.FindStringSubmatch(cmd)
		if m == nil {
			t.Fatalf("QUICKSTART.md:%d: curl without an expected status comment (# → 200)", startLn)
		}
		status, _ := strconv.Atoi(m[1])
		cmd = strings.TrimSpace(cmd[:len(cmd)-len(m[0])])
		c := parseCurl(t, startLn, cmd, vars)
		c.wantStatus, c.wantCode = status, m[2]
		calls = append(calls, c)
	}
	return calls
}

// shellWords splits a command line like sh: single quotes literal, double
// quotes and bare words with $VAR expansion.
func shellWords(t *testing.T, ln int, s string, vars map[string]string) []string {
	var (
		words []string
		cur   strings.Builder
		inTok bool
	)
	expand := func(i int) int { // s[i] == '$'
		j := i + 1
		brace := j < len(s) && s[j] == '{'
		if brace {
			j++
		}
		k := j
		for k < len(s) && (s[k] == '_' || s[k] >= 'A' && s[k] <= 'Z' || s[k] >= 'a' && s[k] <= 'z' || s[k] >= '0' && s[k] <= '9') {
			k++
		}
		name := s[j:k]
		v, ok := vars[name]
		if !ok {
			t.Fatalf("QUICKSTART.md:%d: unknown variable $%s", ln, name)
		}
		cur.WriteString(v)
		if brace {
			k++
		}
		return k
	}
	for i := 0; i < len(s); {
		switch ch := s[i]; {
		case ch == ' ' || ch == '\t':
			if inTok {
				words = append(words, cur.String())
				cur.Reset()
				inTok = false
			}
			i++
		case ch == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				t.Fatalf("QUICKSTART.md:%d: unterminated quote", ln)
			}
			cur.WriteString(s[i+1 : i+1+end])
			inTok = true
			i += end + 2
		case ch == '"':
			inTok = true
			i++
			for i < len(s) && s[i] != '"' {
				if s[i] == '$' {
					i = expand(i)
					continue
				}
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				cur.WriteByte(s[i])
				i++
			}
			if i >= len(s) {
				t.Fatalf("QUICKSTART.md:%d: unterminated double quote", ln)
			}
			i++
		case ch == '$':
			inTok = true
			i = expand(i)
		default:
			inTok = true
			cur.WriteByte(ch)
			i++
		}
	}
	if inTok {
		words = append(words, cur.String())
	}
	return words
}

func parseCurl(t *testing.T, ln int, cmd string, vars map[string]string) curlCall {
	words := shellWords(t, ln, cmd, vars)
	c := curlCall{line: ln, method: "GET", headers: map[string]string{}}
	for i := 1; i < len(words); i++ {
		w := words[i]
		next := func() string {
			i++
			if i >= len(words) {
				t.Fatalf("QUICKSTART.md:%d: %s needs an argument", ln, w)
			}
			return words[i]
		}
		switch {
		case w == "-s", w == "-i", w == "-S", w == "-sS", w == "--silent", w == "--fail", w == "-f":
		case w == "-X", w == "--request":
			c.method = next()
		case w == "-H", w == "--header":
			k, v, ok := strings.Cut(next(), ":")
			if !ok {
				t.Fatalf("QUICKSTART.md:%d: bad header", ln)
			}
			c.headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
		case w == "-d", w == "--data", w == "--data-raw":
			c.body, c.hasBody = next(), true
			if c.method == "GET" {
				c.method = "POST"
			}
		case w == "-w", w == "-o":
			next()
		case strings.HasPrefix(w, "http://"), strings.HasPrefix(w, "https://"):
			c.url = w
		default:
			t.Fatalf("QUICKSTART.md:%d: curl option %q is not understood by the quickstart test", ln, w)
		}
	}
	if c.url == "" {
		t.Fatalf("QUICKSTART.md:%d: curl without a URL", ln)
	}
	// The headers curl adds itself: with -d and no Content-Type of the
	// line's own, curl sends a form's (as `curl -d` does), not JSON.
	if _, ok := c.headers["Accept"]; !ok {
		c.headers["Accept"] = "*/*"
	}
	if _, ok := c.headers["Content-Type"]; !ok && c.hasBody {
		c.headers["Content-Type"] = "application/x-www-form-urlencoded"
	}
	return c
}

// TestQuickstart runs every curl command of docs/QUICKSTART.md, in order,
// against a test server and checks the status (and code) each announces.
func TestQuickstart(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "QUICKSTART.md"))
	if err != nil {
		t.Fatal(err)
	}
	// The read side, as serve runs it: an in-process Redis, the projection
	// and the query routes.
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	q := queries.New(queries.Config{Redis: rdb})
	e := newEnv(t, func(c *api.Config) {
		c.Queries = q
	})
	proj, err := projections.New(projections.Config{Store: e.store, Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	projDone := make(chan struct{})
	go func() { defer close(projDone); _ = proj.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-projDone })
	// $T, the page's tenant, is contoso here; $V, the version the DELETE
	// answered, is put in when a line uses it.
	vars := map[string]string{"BASE": "http://quickstart.test", "OP": testOperator, "TOKEN": token(t, "contoso", "admin"), "T": "contoso", "V": "$V"}
	calls := parseQuickstart(t, string(doc), vars)
	if len(calls) < 20 {
		t.Fatalf("only %d curl commands found", len(calls))
	}
	sawMissing, sawFreed := false, false
	var deleted uint64 // the version the last DELETE answered
	for _, c := range calls {
		path := strings.TrimPrefix(c.url, vars["BASE"])
		if strings.Contains(path, "$V") {
			if deleted == 0 {
				t.Fatalf("QUICKSTART.md:%d: $V before a DELETE answered", c.line)
			}
			path = strings.ReplaceAll(path, "$V", strconv.FormatUint(deleted, 10))
		}
		var body any
		if c.hasBody {
			body = c.body
		}
		// Only the headers of the line (and curl's own): c.headers replaces
		// the JSON Content-Type e.do would set.
		r := e.do(req{Method: c.method, Path: path, Body: body, Header: c.headers})
		if r.Code != c.wantStatus {
			t.Fatalf("QUICKSTART.md:%d: %s %s: status %d, the page says %d: %s", c.line, c.method, path, r.Code, c.wantStatus, r.Body)
		}
		if c.method == "DELETE" && r.Code < 300 {
			deleted = r.answer(t).Version
		}
		if m := minVersionRe.FindStringSubmatch(path); m != nil {
			if n, _ := strconv.ParseUint(m[1], 10, 64); deleted == 0 || n != deleted {
				t.Fatalf("QUICKSTART.md:%d: minVersion=%s, but the DELETE before it answered version %d: write that", c.line, m[1], deleted)
			}
		}
		if c.method == "GET" && strings.HasPrefix(path, "/v1/tenants/contoso/licenses?") {
			var rows []struct {
				SkuPartNumber              string
				Total, Assigned, Available int
			}
			if err := json.Unmarshal(r.Body, &rows); err != nil || len(rows) != 1 {
				t.Fatalf("QUICKSTART.md:%d: licenses %s", c.line, r.Body)
			}
			if rows[0].SkuPartNumber != "SPB" || rows[0].Total != 13 || rows[0].Assigned != 12 || rows[0].Available != 1 {
				t.Fatalf("QUICKSTART.md:%d: after the delete, want 12 of 13 assigned and 1 available: %+v", c.line, rows[0])
			}
			sawFreed = true
		}
		if c.wantCode != "" {
			p := problem(t, r, c.wantStatus, c.wantCode)
			if c.wantCode == "insufficient_licenses" && p["missing"] == float64(1) {
				sawMissing = true
			}
		}
	}
	if !sawFreed {
		t.Fatal("the quick start never shows the freed license on the Licenses page")
	}
	if !sawMissing {
		t.Fatal("the quick start never shows insufficient_licenses with missing: 1")
	}
}
