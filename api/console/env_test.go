package console_test

import (
	"bytes"
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/api/console"
	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/history"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/queries"
	"github.com/seatledger/seatledger/tenantstream"
)

const operator = "operator-token-for-console-tests"

var secret = []byte("console-test-secret-0123456789abcdef")

// env is the API with the console, over a real embedded store and the
// read models in an in-process Redis, served on a test HTTP server.
// Tenant contoso has Global admin "admin", plain user "alice" and SPE_E3
// bought 5 times, 2 assigned.
type env struct {
	t     testing.TB
	store *embedded.Store
	srv   *httptest.Server
	api   http.Handler
	rdb   *redis.Client
	proj  *projections.Projection
	stop  func() // stops proj (a no-op while held)
}

// newEnv builds the env; queryOpts adjust the query service's Config
// (its waits, say).
func newEnv(t testing.TB, cfg console.Config, queryOpts ...func(*queries.Config)) *env {
	t.Helper()
	st, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	decider := domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy())
	cmds := commands.New(commands.Config{Store: st, Snapshots: st, Decider: decider})
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	e := &env{t: t, store: st, rdb: rdb}
	e.run()
	qc := queries.Config{Redis: rdb}
	for _, o := range queryOpts {
		o(&qc)
	}
	srv := api.New(api.Config{
		Commands: cmds, Decider: decider, JWTSecret: secret, OperatorToken: operator,
		Logger: slog.New(slog.DiscardHandler), Queries: queries.New(qc),
		History: &history.Service{Store: st, Snapshots: st, Catalog: decider.Catalog},
		Console: func(h http.Handler) http.Handler {
			cfg.API = h
			cfg.Logger = slog.New(slog.DiscardHandler)
			return console.New(cfg)
		},
	})
	e.api = srv
	e.srv = httptest.NewServer(srv)
	t.Cleanup(func() {
		e.srv.Close()
		e.stop()
		cmds.Close()
		_ = rdb.Close()
		_ = st.Close()
	})

	e.apiMust(201, "POST", "/v1/tenants", operator, `{"id":"contoso","name":"Contoso","globalAdmin":{"id":"admin","userPrincipalName":"admin@contoso.example","displayName":"Ada Admin","usageLocation":"US"}}`)
	admin := token(t, "contoso", "admin")
	e.apiMust(201, "POST", "/v1/tenants/contoso/users", admin, `{"id":"alice","userPrincipalName":"alice@contoso.example","displayName":"Alice","usageLocation":"US"}`)
	e.apiMust(201, "POST", "/v1/tenants/contoso/users", admin, `{"id":"bob","userPrincipalName":"bob@contoso.example","usageLocation":"US"}`)
	e.apiMust(201, "POST", "/v1/tenants/contoso/subscriptions", admin, `{"id":"s1","skuId":"SPE_E3","quantity":5}`)
	e.apiMust(200, "POST", "/v1/tenants/contoso/licenses/SPE_E3/assign", admin, `{"users":["alice","bob"]}`)
	e.caughtUp()
	return e
}

// run starts the projection into the read models.
func (e *env) run() {
	proj, err := projections.New(projections.Config{Store: e.store, Redis: e.rdb})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); _ = proj.Run(ctx) }()
	e.proj, e.stop = proj, func() { cancel(); <-ran }
}

// hold stops the projection: the read models stay as they are, behind
// every command sent until release, without sleeps deciding anything.
func (e *env) hold() {
	e.t.Helper()
	e.caughtUp()
	e.stop()
	e.stop = func() {}
}

// release runs the projection again and waits until it has caught up.
func (e *env) release() {
	e.t.Helper()
	e.run()
	e.caughtUp()
}

// caughtUp waits until the read models hold every event written.
func (e *env) caughtUp() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.proj.WaitFor(ctx, e.store.LastPosition()); err != nil {
		e.t.Fatal(err)
	}
}

func token(t testing.TB, tenant, user string) string {
	t.Helper()
	tok, err := api.NewToken(secret, tenant, user, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// apiMust calls the JSON API directly (the fixture's commands).
func (e *env) apiMust(want int, method, path, tok, body string) {
	e.t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	e.api.ServeHTTP(w, r)
	if w.Code != want {
		e.t.Fatalf("%s %s: %d, want %d: %s", method, path, w.Code, want, w.Body)
	}
}

// count counts the events of type typ in tenant's stream.
func (e *env) count(tenant, typ string) int {
	e.t.Helper()
	recs, err := e.store.ReadStream(context.Background(), tenantstream.Name(tenant), 1, 1<<20)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		ev, err := domain.DecodeEvent(r.Data, nil)
		if err != nil {
			e.t.Fatal(err)
		}
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// browser is a person's browser: cookies kept, redirects followed.
type browser struct {
	e      *env
	c      *http.Client
	header http.Header // sent with every request (Accept-Language, …)
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar}, header: http.Header{}}
}

// page is an answer as the browser shows it: the final status and URL
// after redirects, and the body.
type page struct {
	Code int
	URL  string
	Body string
}

func (b *browser) do(method, path string, form url.Values) page {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r, err := http.NewRequest(method, b.e.srv.URL+path, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range b.header {
		r.Header[k] = v
	}
	res, err := b.c.Do(r)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	_, _ = io.Copy(&buf, res.Body)
	return page{Code: res.StatusCode, URL: strings.TrimPrefix(res.Request.URL.String(), b.e.srv.URL), Body: buf.String()}
}

func (b *browser) get(path string) page { return b.do("GET", path, nil) }

// submit posts form to action with the hidden fields (csrf, idem) of the
// form of p whose action it is, as a browser submits it.
func (b *browser) submit(p page, action string, fields url.Values) page {
	b.e.t.Helper()
	form := hidden(b.e.t, p.Body, action)
	for k, v := range fields {
		form[k] = v
	}
	return b.do("POST", action, form)
}

var formRE = regexp.MustCompile(`(?s)<form method="post" action="([^"]*)"[^>]*>(.*?)</form>`)
var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)

// hidden answers the hidden fields of the first form of body posting to
// action.
func hidden(t testing.TB, body, action string) url.Values {
	t.Helper()
	for _, m := range formRE.FindAllStringSubmatch(body, -1) {
		if m[1] != action {
			continue
		}
		v := url.Values{}
		for _, h := range hiddenRE.FindAllStringSubmatch(m[2], -1) {
			v.Set(h[1], html.UnescapeString(h[2])) // as a browser reads the attribute
		}
		return v
	}
	t.Fatalf("no form posting to %s in:\n%s", action, body)
	return nil
}

// signIn signs b in with tok and answers the page it lands on.
func (b *browser) signIn(tok string) page {
	b.e.t.Helper()
	return b.submit(b.get("/console/signin"), "/console/signin", url.Values{"token": {tok}})
}
