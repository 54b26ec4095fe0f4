package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// operatorClient talks to a running seatledger with the operator token: the
// operator tools (audit, state, diff, verify, replay) go through the server,
// which owns the event store (the embedded store admits one process) and,
// with the zero-setup run, the in-process Redis.
type operatorClient struct {
	base  string
	token string
	http  *http.Client
}

// clientFlags adds --server, --token and --data-dir to fs.
func clientFlags(fs *flag.FlagSet) func() (*operatorClient, error) {
	addr := envOr(envAddr, "127.0.0.1:8080")
	server := fs.String("server", "http://"+addr, "base URL of a running seatledger (default from "+envAddr+")")
	token := fs.String("token", "", "operator token (default: "+envOperatorToken+", else the data directory's dev secret)")
	dataDir := fs.String("data-dir", envOr(envDataDir, "./data"), "data directory holding dev-secrets.json ("+envDataDir+")")
	return func() (*operatorClient, error) {
		tok := *token
		if tok == "" {
			tok = getenv(envOperatorToken)
		}
		if tok == "" {
			s, ok, err := readDevSecrets(*dataDir)
			if err != nil {
				return nil, err
			}
			if !ok || s.OperatorToken == "" {
				return nil, fmt.Errorf("no operator token: pass --token, set %s, or run from the directory of the server's %s", envOperatorToken, *dataDir)
			}
			tok = s.OperatorToken
		}
		return &operatorClient{base: strings.TrimRight(*server, "/"), token: tok, http: &http.Client{Timeout: 10 * time.Minute}}, nil
	}
}

// apiError is a problem+json answer.
type apiError struct {
	Status int
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

func (e *apiError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Detail)
}

// do sends a request and returns the answer's body and headers, or an error
// for a non-2xx answer.
func (c *operatorClient) do(ctx context.Context, method, path string, body any) ([]byte, http.Header, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("is seatledger running at %s? %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{Status: resp.StatusCode}
		_ = json.Unmarshal(b, e)
		return nil, nil, e
	}
	return b, resp.Header, nil
}

// streamIdleTimeout is how long stream waits for the next line of a long
// operation (the server sends progress about every second, after at most
// 30 s of waiting for the projection to catch up).
var streamIdleTimeout = 2 * time.Minute

// stream sends a request and hands each line of the answer to fn as it
// arrives (for long operations that report progress). It has no overall
// time limit, but gives up when no line arrived for streamIdleTimeout.
func (c *operatorClient) stream(ctx context.Context, method, path string, body any, fn func(line []byte) error) error {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := time.AfterFunc(streamIdleTimeout, func() {
		cancel(fmt.Errorf("%s sent nothing for %v", c.base, streamIdleTimeout))
	})
	defer idle.Stop()
	fail := func(err error) error {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return cause
		}
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/x-ndjson")
	hc := *c.http
	hc.Timeout = 0 // the idle timer bounds it
	resp, err := hc.Do(req)
	if err != nil {
		return fail(fmt.Errorf("is seatledger running at %s? %w", c.base, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		e := &apiError{Status: resp.StatusCode}
		_ = json.Unmarshal(b, e)
		return e
	}
	dec := json.NewDecoder(resp.Body)
	for {
		idle.Reset(streamIdleTimeout)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			return nil
		} else if err != nil {
			return fail(err)
		}
		if err := fn(raw); err != nil {
			return err
		}
	}
}

// parseFlags parses fs and turns the outcome into an exit code (-1: go on).
func parseFlags(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected arguments: %s\n", fs.Name(), strings.Join(fs.Args(), " "))
		return 2
	}
	return -1
}
