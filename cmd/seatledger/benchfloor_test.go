package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/seatledger/seatledger/internal/cputime"
)

// BenchmarkHTTPFloor measures what `seatledger bench`'s load costs before
// seatledger does anything: the same 64 wire clients send the same POSTs
// over loopback to a net/http server whose handler reads the body and
// answers a fixed 200 of the size of an assign's answer. Its CPU per
// request (this process: server and clients) is the part of the bench's
// CPU per command that no change to the command path, the store or the
// read side can remove (docs/BENCHMARKS.md, "The HTTP floor").
//
//	go test -run '^$' -bench HTTPFloor -benchtime 200000x ./cmd/seatledger/
func BenchmarkHTTPFloor(b *testing.B) {
	answer := []byte(`{"version":12345,"events":[{"type":"LicenseAssigned","tenant":"bench-1","user":"u1","sku":"SPB"}]}`)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	defer srv.Close()

	const clients = 64
	body := []byte(`{"users":["u1"]}`)
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0 := cputime.Process()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wc := newWireClient(ln.Addr().String())
			defer wc.Close()
			path := fmt.Sprintf("/v1/tenants/bench-%d/licenses/SPB/assign", c) // made once, as the bench's
			for next.Add(1) <= int64(b.N) {
				code, err := wc.do("POST", path, "token", body)
				if err != nil || code != http.StatusOK {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d requests failed", n, b.N)
	}
	b.ReportMetric(float64((cputime.Process()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}
