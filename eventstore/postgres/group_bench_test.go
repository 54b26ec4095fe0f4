package postgres

import (
	"context"
	"fmt"
	"testing"

	"github.com/seatledger/seatledger/eventstore"
)

// BenchmarkGroupSerial: groups of 32 one-event appends (32 streams,
// Exactly the previous version), one group at a time on one Store: the
// server's cost per group without concurrency: divide the store's
// backends' CPU by b.N (docs/BENCHMARKS.md). Internal API: this file does
// not run against the store of 611acb1, bench_test.go does.
func BenchmarkGroupSerial(b *testing.B) {
	requirePG(b)
	s := openSchema(b, freshSchema(b), Options{})
	defer s.Close()
	ctx := context.Background()
	const k = 32
	vers := make([]uint64, k)
	b.ResetTimer()
	for i := 0; i < b.N; i += k {
		group := make([]*appendReq, k)
		for j := range group {
			group[j] = newReq(ctx, fmt.Sprintf("tenant-%02d", j), eventstore.Exactly(vers[j]), benchEvents(1))
		}
		s.appendGroup(group)
		for j, r := range group {
			<-r.done
			if r.err != nil {
				b.Fatal(r.err)
			}
			vers[j] = r.res.Version
		}
	}
}
