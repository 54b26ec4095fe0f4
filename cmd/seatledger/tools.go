package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/seatledger/seatledger/history"
)

func newFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("seatledger "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs
}

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("audit", "Usage: seatledger audit --tenant T [--since TIME] [--until TIME] [--actor A] [--user U] [--sku S] [--type EVENT] [--limit N] [--desc] [--json]\n"+
		"Prints the tenant's audit log, oldest first (--desc: newest first). Times are RFC 3339.", stderr)
	tenant := fs.String("tenant", "", "tenant id (required)")
	since := fs.String("since", "", "only events at or after this time")
	until := fs.String("until", "", "only events at or before this time")
	actor := fs.String("actor", "", "only events by this user id (or operator, system:scheduler; user:<id> for a user named like one)")
	user := fs.String("user", "", "only events about this user")
	sku := fs.String("sku", "", "only events about this product (skuId or part number)")
	typ := fs.String("type", "", "only events of this type, e.g. LicenseAssigned")
	limit := fs.Int("limit", 0, "stop after this many records (0: all)")
	desc := fs.Bool("desc", false, "newest first")
	asJSON := fs.Bool("json", false, "JSON lines instead of a table")
	client := clientFlags(fs)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *tenant == "" {
		fmt.Fprintln(stderr, "seatledger audit: --tenant is required")
		return 2
	}
	c, err := client()
	if err != nil {
		fmt.Fprintln(stderr, "seatledger audit:", err)
		return 2
	}
	q := url.Values{}
	for k, v := range map[string]string{"since": *since, "until": *until, "actor": *actor, "user": *user, "sku": *sku, "type": *typ} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *desc {
		q.Set("order", "desc")
	}
	q.Set("limit", "500")
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	if !*asJSON {
		fmt.Fprintln(tw, "VERSION\tTIME\tACTOR\tTYPE\tSUMMARY")
	}
	n := 0
	for {
		body, hdr, err := c.do(ctx, http.MethodGet, "/v1/tenants/"+url.PathEscape(*tenant)+"/audit?"+q.Encode(), nil)
		if err != nil {
			fmt.Fprintln(stderr, "seatledger audit:", err)
			return 1
		}
		var recs []history.Record
		if err := json.Unmarshal(body, &recs); err != nil {
			fmt.Fprintln(stderr, "seatledger audit: unexpected answer:", err)
			return 1
		}
		for _, r := range recs {
			if *limit > 0 && n >= *limit {
				break
			}
			n++
			if *asJSON {
				b, _ := json.Marshal(r)
				fmt.Fprintln(stdout, string(b))
				continue
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.Version, r.OccurredAt.Format(time.RFC3339), cell(r.Actor.String()), cell(r.Type), cell(r.Summary))
		}
		next := hdr.Get("X-Next-Cursor")
		if next == "" || (*limit > 0 && n >= *limit) {
			break
		}
		q.Set("cursor", next)
	}
	_ = tw.Flush()
	return 0
}

func runState(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("state", "Usage: seatledger state --tenant T [--at TIME | --version N]\nPrints the tenant's whole state (JSON) as it was; without --at/--version, now.", stderr)
	tenant := fs.String("tenant", "", "tenant id (required)")
	at := fs.String("at", "", "a time (RFC 3339)")
	version := fs.Uint64("version", 0, "a version of the tenant's stream")
	client := clientFlags(fs)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *tenant == "" || (*at != "" && *version > 0) {
		fmt.Fprintln(stderr, "seatledger state: --tenant is required, with at most one of --at and --version")
		return 2
	}
	c, err := client()
	if err != nil {
		fmt.Fprintln(stderr, "seatledger state:", err)
		return 2
	}
	q := url.Values{}
	if *at != "" {
		q.Set("at", *at)
	}
	if *version > 0 {
		q.Set("version", fmt.Sprint(*version))
	}
	body, _, err := c.do(ctx, http.MethodGet, "/v1/tenants/"+url.PathEscape(*tenant)+"/state?"+q.Encode(), nil)
	if err != nil {
		fmt.Fprintln(stderr, "seatledger state:", err)
		return 1
	}
	return printIndented(stdout, stderr, body)
}

func printIndented(stdout, stderr io.Writer, body []byte) int {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		fmt.Fprintln(stderr, "unexpected answer:", err)
		return 1
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintln(stdout, string(b))
	return 0
}

func runDiff(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("diff", "Usage: seatledger diff --tenant T --from TIME|VERSION --to TIME|VERSION [--json]\nPrints each entity that changed between the two points and the events responsible.", stderr)
	tenant := fs.String("tenant", "", "tenant id (required)")
	from := fs.String("from", "", "a time (RFC 3339) or a version (required)")
	to := fs.String("to", "", "a time (RFC 3339) or a version (required)")
	asJSON := fs.Bool("json", false, "print the whole diff as JSON")
	client := clientFlags(fs)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *tenant == "" || *from == "" || *to == "" {
		fmt.Fprintln(stderr, "seatledger diff: --tenant, --from and --to are required")
		return 2
	}
	c, err := client()
	if err != nil {
		fmt.Fprintln(stderr, "seatledger diff:", err)
		return 2
	}
	q := url.Values{"from": {*from}, "to": {*to}}
	body, _, err := c.do(ctx, http.MethodGet, "/v1/tenants/"+url.PathEscape(*tenant)+"/state/diff?"+q.Encode(), nil)
	if err != nil {
		fmt.Fprintln(stderr, "seatledger diff:", err)
		return 1
	}
	if *asJSON {
		return printIndented(stdout, stderr, body)
	}
	var d history.Diff
	if err := json.Unmarshal(body, &d); err != nil {
		fmt.Fprintln(stderr, "seatledger diff: unexpected answer:", err)
		return 1
	}
	fmt.Fprintf(stdout, "tenant %s, version %d → %d: %d changes, %d events\n", cell(*tenant), d.From, d.To, len(d.Changes), len(d.Events))
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANGE\tENTITY\tEVENTS")
	for _, ch := range d.Changes {
		vs := make([]string, len(ch.Events))
		for i, v := range ch.Events {
			vs[i] = fmt.Sprint(v)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", cell(ch.Kind), cell(ch.Entity), strings.Join(vs, ","))
	}
	_ = tw.Flush()
	return 0
}

func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("healthcheck", "Usage: seatledger healthcheck [--server URL]\nExits 0 when the server answers GET /healthz with 200.", stderr)
	server := fs.String("server", "http://"+envOr(envAddr, "127.0.0.1:8080"), "base URL")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	base := strings.Replace(*server, "0.0.0.0", "127.0.0.1", 1)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "unhealthy:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(stderr, "unhealthy: HTTP", resp.StatusCode)
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("verify", "Usage: seatledger verify [--server URL]\nAsks the running server to fold every tenant from the event store and compare the result with the read models in Redis.\n"+
		"Shows its progress (tenants checked of the total, rate, time left) on stderr: one line rewritten on a terminal, else a line a phase and every 10 s.", stderr)
	client := clientFlags(fs)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	c, err := client()
	if err != nil {
		fmt.Fprintln(stderr, "seatledger verify:", err)
		return 2
	}
	type report struct {
		Tenants     *int `json:"tenants"`
		Keys        int  `json:"keys"`
		Differences []struct {
			Tenant, Key, Field, Want, Got string
		} `json:"differences"`
		Truncated bool `json:"truncated"`
	}
	var rep *report
	failed := false
	show := newVerifyProgress(stderr)
	err = c.stream(ctx, http.MethodPost, "/v1/projections/verify", nil, func(raw []byte) error {
		var msg struct {
			Progress *verifyProgressLine `json:"progress"`
			Result   *report             `json:"result"`
			Error    string              `json:"error"`
		}
		if err := json.Unmarshal(raw, &msg); err != nil {
			return err
		}
		switch {
		case msg.Progress != nil:
			show.show(*msg.Progress)
		case msg.Error != "":
			failed = true
			show.end()
			fmt.Fprintln(stderr, "seatledger verify:", msg.Error)
		case msg.Result != nil:
			rep = msg.Result
		default: // a server that does not stream answers the report alone
			var r report
			if err := json.Unmarshal(raw, &r); err != nil || r.Tenants == nil {
				return fmt.Errorf("unexpected answer: %.200s", raw)
			}
			rep = &r
		}
		return nil
	})
	show.end()
	if err != nil {
		fmt.Fprintln(stderr, "seatledger verify:", err)
		return 1
	}
	if failed {
		return 1
	}
	if rep == nil || rep.Tenants == nil {
		fmt.Fprintln(stderr, "seatledger verify: the server ended the answer without a report")
		return 1
	}
	for _, d := range rep.Differences {
		fmt.Fprintf(stdout, "DIFF tenant=%s key=%s field=%s\n  want %s\n  got  %s\n", cell(d.Tenant), cell(d.Key), cell(d.Field), cell(d.Want), cell(d.Got))
	}
	fmt.Fprintf(stdout, "verified %d tenants, %d keys: %d differences\n", *rep.Tenants, rep.Keys, len(rep.Differences))
	if len(rep.Differences) > 0 {
		return 1
	}
	return 0
}

// verifyProgressLine is a progress line of POST /v1/projections/verify
// (rebuild.VerifyProgress).
type verifyProgressLine struct {
	Phase         string  `json:"phase"`
	Tenants       int     `json:"tenants"`
	Total         int     `json:"total"`
	Keys          int     `json:"keys"`
	Events        uint64  `json:"events"`
	Differences   int     `json:"differences"`
	TenantsPerSec float64 `json:"tenantsPerSec"`
	ETA           int64   `json:"eta"`
	Elapsed       int64   `json:"elapsed"`
}

func (p verifyProgressLine) String() string {
	var s string
	switch p.Phase {
	case "keys":
		s = fmt.Sprintf("scanning the read-model keys: %d", p.Keys)
	case "log":
		s = fmt.Sprintf("listing the tenants of the log: %d events read", p.Events)
	case "tenants":
		pct := 0.0
		if p.Total > 0 {
			pct = 100 * float64(p.Tenants) / float64(p.Total)
		}
		s = fmt.Sprintf("tenants %d of %d (%.0f%%)  %.0f tenants/s  ETA %v", p.Tenants, p.Total, pct, p.TenantsPerSec, time.Duration(p.ETA).Round(time.Second))
	case "stray":
		s = fmt.Sprintf("looking for stray keys: %d scanned", p.Keys)
	case "done":
		s = fmt.Sprintf("done: %d tenants", p.Tenants)
	default:
		s = p.Phase
	}
	return fmt.Sprintf("verify: %s  %d differences  %v", s, p.Differences, time.Duration(p.Elapsed).Round(time.Second))
}

// progressPrinter shows progress lines on w: rewriting one line on a
// terminal, else printing a line when the phase changes and every 10 s.
type progressPrinter struct {
	w       io.Writer
	term    bool
	phase   string
	printed time.Time
	width   int // of the open line on a terminal (0: none)
}

func newVerifyProgress(w io.Writer) *progressPrinter {
	return &progressPrinter{w: w, term: isTerminal(w)}
}

func (pp *progressPrinter) show(p verifyProgressLine) {
	line := p.String()
	if pp.term {
		fmt.Fprintf(pp.w, "\r%-*s", pp.width, line)
		pp.width = max(pp.width, len(line))
		if p.Phase == "done" {
			pp.end()
		}
		return
	}
	if p.Phase != pp.phase || time.Since(pp.printed) >= 10*time.Second {
		fmt.Fprintln(pp.w, line)
		pp.phase, pp.printed = p.Phase, time.Now()
	}
}

// end finishes a line left open on a terminal.
func (pp *progressPrinter) end() {
	if pp.width > 0 {
		fmt.Fprintln(pp.w)
		pp.width = 0
	}
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("replay", "Usage: seatledger replay [--tenant T]\n"+
		"Asks the running server to rebuild the read models from the start of the event log into a fresh key prefix\n"+
		"while the old one keeps serving, then swap atomically (with --tenant, rebuild one tenant's read models in place).\n"+
		"Prints progress (events/s, ETA) as it goes.", stderr)
	tenant := fs.String("tenant", "", "rebuild only this tenant")
	client := clientFlags(fs)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	c, err := client()
	if err != nil {
		fmt.Fprintln(stderr, "seatledger replay:", err)
		return 2
	}
	path := "/v1/projections/rebuild"
	if *tenant != "" {
		path += "?tenant=" + url.QueryEscape(*tenant)
	}
	failed := false
	err = c.stream(ctx, http.MethodPost, path, nil, func(raw []byte) error {
		var msg struct {
			Progress *struct {
				Phase        string  `json:"phase"`
				Events       uint64  `json:"events"`
				Tenants      int     `json:"tenants"`
				EventsPerSec float64 `json:"eventsPerSec"`
				ETA          int64   `json:"eta"`
			} `json:"progress"`
			Result json.RawMessage `json:"result"`
			Error  string          `json:"error"`
		}
		if err := json.Unmarshal(raw, &msg); err != nil {
			return err
		}
		switch {
		case msg.Progress != nil:
			p := msg.Progress
			fmt.Fprintf(stderr, "%-9s %10d events  %6d tenants  %9.0f events/s  ETA %v\n",
				p.Phase, p.Events, p.Tenants, p.EventsPerSec, time.Duration(p.ETA).Round(time.Second))
		case msg.Error != "":
			failed = true
			fmt.Fprintln(stderr, "seatledger replay:", msg.Error)
		case msg.Result != nil:
			var v any
			_ = json.Unmarshal(msg.Result, &v)
			b, _ := json.MarshalIndent(v, "", "  ")
			fmt.Fprintln(stdout, string(b))
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(stderr, "seatledger replay:", err)
		return 1
	}
	if failed {
		return 1
	}
	return 0
}
