package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/seatledger/seatledger/api"
)

// heldCommand is a command whose handler is running, reading a body that
// the test has not sent yet: it is in flight for as long as the test wants.
type heldCommand struct {
	body     string
	reading  chan struct{} // closed when the server asks for the body (100 Continue)
	send     *io.PipeWriter
	answered chan heldAnswer
}

type heldAnswer struct {
	status int
	body   []byte
	err    error
}

// holdCommand sends the headers of a command with Expect: 100-continue on
// a connection of its own. The server answers 100 Continue when the
// handler starts reading the body (net/http), which the client then waits
// for; release sends it.
func holdCommand(addr, token, path, body string) *heldCommand {
	h := &heldCommand{body: body, reading: make(chan struct{}), answered: make(chan heldAnswer, 1)}
	pr, pw := io.Pipe()
	h.send = pw
	trace := &httptrace.ClientTrace{Got100Continue: func() { close(h.reading) }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "POST", "http://"+addr+path, pr)
	req.ContentLength = int64(len(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Expect", "100-continue")
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute, DisableKeepAlives: true}}
	go func() {
		res, err := client.Do(req)
		if err != nil {
			h.answered <- heldAnswer{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		h.answered <- heldAnswer{status: res.StatusCode, body: b, err: err}
	}()
	return h
}

func (h *heldCommand) release() {
	go func() {
		_, _ = io.WriteString(h.send, h.body)
		_ = h.send.Close()
	}()
}

// TestBinarySIGTERMFinishesInFlightCommands: commands in flight when the
// serve process gets SIGTERM are answered with success; the process exits
// 0 within its shutdown timeout; after a restart on the same data directory
// the events the commands answered are in the store.
func TestBinarySIGTERMFinishesInFlightCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	const shutdownTimeout = 10 * time.Second
	dir := t.TempDir()
	p := startBinary(t, dir, "SEATLEDGER_SHUTDOWN_TIMEOUT="+shutdownTimeout.String())
	s := p.server(t)
	s.contoso()

	held := []*heldCommand{
		holdCommand(p.addr, s.admin, "/v1/tenants/contoso/users", `{"id":"late","userPrincipalName":"late@contoso.example","usageLocation":"US"}`),
		holdCommand(p.addr, s.admin, "/v1/tenants/contoso/groups", `{"id":"late-group","displayName":"Late"}`),
		holdCommand(p.addr, s.admin, "/v1/tenants/contoso/subscriptions", `{"id":"late-sub","skuId":"SPB","quantity":2}`),
	}
	for _, h := range held {
		select {
		case <-h.reading:
		case a := <-h.answered:
			t.Fatalf("answered before its body was sent: %d %s %v", a.status, a.body, a.err)
		case <-time.After(30 * time.Second):
			t.Fatal("the server never read the command's body")
		}
	}

	signaled := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.wait() }()
	p.stderr.wait(t, "shutting down", shutdownTimeout)
	// Shutdown has closed the listener: no new connection, so the server is
	// draining while the commands are still waiting for their bodies.
	for deadline := time.Now().Add(shutdownTimeout); ; {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts connections after it logged shutting down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-exited:
		t.Fatalf("the server exited (%v) with commands in flight:\n%s", err, p.stderr)
	default:
	}

	var answers []api.CommandAnswer
	for _, h := range held {
		h.release()
		var a heldAnswer
		select {
		case a = <-h.answered:
		case <-time.After(shutdownTimeout):
			t.Fatalf("no answer %s after the command's body was sent\n%s", shutdownTimeout, p.stderr)
		}
		if a.err != nil || a.status != http.StatusCreated {
			t.Fatalf("in-flight command answered %d %s (%v), want 201\n%s", a.status, a.body, a.err, p.stderr)
		}
		var ans api.CommandAnswer
		if err := json.Unmarshal(a.body, &ans); err != nil || len(ans.Events) == 0 {
			t.Fatalf("not a command answer: %s", a.body)
		}
		answers = append(answers, ans)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v, want 0\n%s", err, p.stderr)
		}
		if took := time.Since(signaled); took >= shutdownTimeout {
			t.Fatalf("shutdown took %s, over SEATLEDGER_SHUTDOWN_TIMEOUT=%s", took, shutdownTimeout)
		}
	case <-time.After(shutdownTimeout):
		t.Fatalf("still running %s after the commands were answered\n%s", shutdownTimeout, p.stderr)
	}
	p.stderr.wait(t, "stopped", time.Second)

	// Restart on the same directory: each answered command's events are in
	// the store, as answered.
	admin := s.admin // same dev secret: the token still holds
	s = startBinary(t, dir).server(t)
	s.admin = admin
	for _, ans := range answers {
		from := ans.Version - uint64(len(ans.Events)) + 1
		body := s.must(http.StatusOK, "GET", fmt.Sprintf("/v1/tenants/contoso/events?fromVersion=%d&limit=%d", from, len(ans.Events)), s.admin, "")
		var stored []json.RawMessage
		if err := json.Unmarshal(body, &stored); err != nil || len(stored) != len(ans.Events) {
			t.Fatalf("events from version %d: %s", from, body)
		}
		for i := range stored {
			if !sameJSON(stored[i], ans.Events[i]) {
				t.Fatalf("version %d after the restart:\n%s\nthe command answered:\n%s", from+uint64(i), stored[i], ans.Events[i])
			}
		}
	}
}

// sameJSON reports whether two JSON documents hold the same value.
func sameJSON(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}
