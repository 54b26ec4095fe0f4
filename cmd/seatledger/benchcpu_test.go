package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seatledger/seatledger/projections"
)

// TestParseRedisCPU: the Redis server's CPU is its user and system time
// from INFO cpu (children's and per-thread lines aside).
func TestParseRedisCPU(t *testing.T) {
	info := "# CPU\r\nused_cpu_sys:9.712070\r\nused_cpu_user:161.059534\r\nused_cpu_sys_children:1.5\r\n" +
		"used_cpu_user_children:2.5\r\nused_cpu_sys_main_thread:9.708297\r\nused_cpu_user_main_thread:160.996957\r\n"
	got, err := parseRedisCPU(info)
	if err != nil {
		t.Fatal(err)
	}
	if want := 170771604 * time.Microsecond; got != want {
		t.Fatalf("CPU %v, want %v", got, want)
	}
	if _, err := parseRedisCPU("# CPU\r\nused_cpu_sys:1\r\n"); err == nil {
		t.Fatal("INFO without used_cpu_user: no error")
	}
}

// TestSplitCPUByLabel: the split gives each profile label value its share
// of the samples, unlabelled work under "".
func TestSplitCPUByLabel(t *testing.T) {
	if testing.Short() {
		t.Skip("profiles the CPU for a second")
	}
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Skipf("CPU profiler busy: %v", err)
	}
	spin := func(d time.Duration) {
		x := 0
		for end := time.Now().Add(d); time.Now().Before(end); x++ {
		}
		_ = x
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go pprof.Do(context.Background(), pprof.Labels(projections.ProfileLabel, projections.ProfileProjection), func(context.Context) {
		defer wg.Done()
		spin(time.Second)
	})
	go func() {
		defer wg.Done()
		spin(time.Second)
	}()
	wg.Wait()
	pprof.StopCPUProfile()
	split, err := splitCPU(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if split[projections.ProfileProjection] < 0.2 || split[""] < 0.2 || split[projections.ProfileProjection]+split[""] > 1.0001 {
		t.Fatalf("split %v: want both spinners at a fair share", split)
	}
	if s := split.String(); !strings.Contains(s, "projection ") || !strings.Contains(s, "other (GC, the store's commits, runtime) ") {
		t.Fatalf("split reads %q", s)
	}
}

// TestWaitReadSideWaitsForTheProjection: the bench's CPU figure runs until
// a projection reports it has written everything (idle ones, as on a node
// without the lease, do not count), and gives up after its limit.
func TestWaitReadSideWaitsForTheProjection(t *testing.T) {
	var polls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/projections" || r.Header.Get("Authorization") != "Bearer op" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		lag := 0
		if polls.Add(1) < 5 {
			lag = 100
		}
		fmt.Fprintf(w, `[{"status":"idle","position":0,"lagEvents":0},{"status":"running","position":900,"lagEvents":%d}]`, lag)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if _, err := waitReadSide(context.Background(), []string{addr}, "op", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := polls.Load(); n != 5 {
		t.Fatalf("returned after %d polls, want 5 (the first without lag)", n)
	}
	polls.Store(-1000)
	if _, err := waitReadSide(context.Background(), []string{addr}, "op", 100*time.Millisecond); err == nil {
		t.Fatal("a projection that never catches up: no error")
	}
}
