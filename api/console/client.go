package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// problem is a problem+json answer of the API (docs/API.md "Problems"), as
// a page shows it in its message bar.
type problem struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Field  string `json:"field"`
	// Missing and Plans are the facts of insufficient_licenses and
	// mutually_exclusive_plans a page's headline is built from
	// (problemHeadline, licenses.go).
	Missing int      `json:"missing"`
	Plans   []string `json:"plans"`
	// Headline is the console's own words for the problem, shown above
	// its detail (render sets it: problemHeadline).
	Headline string `json:"-"`
}

func (p *problem) Error() string { return fmt.Sprintf("%d %s: %s", p.Status, p.Code, p.Detail) }

// recorder is the ResponseWriter of an in-process API call.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

// call sends one request to the API as the session's person: their token,
// their language, and idemKey as Idempotency-Key when not empty. body is
// sent as JSON when not nil.
func (c *Console) call(ctx context.Context, s *session, method, path string, body any, idemKey string) (*recorder, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return nil, err
	}
	req.RemoteAddr = "127.0.0.1:0" // in-process
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.Token)
	req.Header.Set("Accept-Language", string(s.Lang))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	w := &recorder{header: http.Header{}}
	c.cfg.API.ServeHTTP(w, req)
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w, nil
}

// answerError is nil for a 2xx answer, else the answer's problem (a
// *problem, also for an answer that is not problem+json).
func answerError(w *recorder) error {
	if w.code < 300 {
		return nil
	}
	p := &problem{Status: w.code}
	if strings.HasPrefix(w.header.Get("Content-Type"), "application/problem+json") {
		_ = json.Unmarshal(w.body.Bytes(), p)
		p.Status = w.code
	}
	// An answer without a detail is shown with the console's own words
	// for its status (layout.html, "problem.status").
	return p
}

// get reads path into out (a JSON answer) and answers its headers (e.g.
// X-Next-Cursor). An answer of the API that is not 2xx is a *problem.
func (c *Console) get(ctx context.Context, s *session, path string, out any) (http.Header, error) {
	w, err := c.call(ctx, s, http.MethodGet, path, nil, "")
	if err != nil {
		return nil, err
	}
	if err := answerError(w); err != nil {
		return w.header, err
	}
	if out != nil {
		if err := json.Unmarshal(w.body.Bytes(), out); err != nil {
			return w.header, fmt.Errorf("console: GET %s: %w", path, err)
		}
	}
	return w.header, nil
}
