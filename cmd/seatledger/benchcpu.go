package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/projections"
)

// Values of the profile label projections.ProfileLabel besides the
// projection's own: every goroutine started under one carries it.
const (
	profileHTTP    = "http"    // the HTTP server: requests, middleware, commands
	profileClients = "clients" // the bench's load clients
	profileStore   = "store"   // not ours: Pebble's own label on its background work
)

// cpuSplit is the CPU of the profiled phase by the value of the profile
// label projections.ProfileLabel ("" = no label: the garbage collector's
// background work, the store's commit goroutine, the scheduler, the
// runtime; profileStore: Pebble's background work, which Pebble labels
// itself). Shares, not times: the profile samples the process.
type cpuSplit map[string]float64

// splitCPU reads a CPU profile (runtime/pprof's format) and returns each
// label value's share of its samples.
func splitCPU(r io.Reader) (cpuSplit, error) {
	p, err := profile.Parse(r)
	if err != nil {
		return nil, err
	}
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("not a CPU profile")
	}
	by := map[string]int64{}
	var total int64
	for _, s := range p.Sample {
		v := s.Value[idx]
		total += v
		side := ""
		if l := s.Label[projections.ProfileLabel]; len(l) > 0 {
			side = l[0]
		} else if len(s.Label["pebble"]) > 0 { // Pebble labels its WAL writer, flushes and compactions
			side = profileStore
		}
		by[side] += v
	}
	split := cpuSplit{}
	for k, v := range by {
		if total > 0 {
			split[k] = float64(v) / float64(total)
		}
	}
	return split, nil
}

// String lists the shares, largest first, with names a reader knows.
func (s cpuSplit) String() string {
	names := map[string]string{
		projections.ProfileProjection: "projection", projections.ProfileInProcessRedis: "in-process Redis", profileHTTP: "HTTP server",
		profileClients: "load clients", profileStore: "Pebble (WAL sync, flushes, compactions)", "": "other (GC, the store's commits, runtime)",
	}
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		switch {
		case s[a] > s[b]:
			return -1
		case s[a] < s[b]:
			return 1
		}
		return strings.Compare(a, b)
	})
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		name := names[k]
		if name == "" {
			name = k
		}
		fmt.Fprintf(&b, "%s %.1f%%", name, 100*s[k])
	}
	return b.String()
}

// redisServerCPU is the CPU time a Redis server has used (INFO cpu:
// used_cpu_sys + used_cpu_user), every client's and its own background
// work's.
func redisServerCPU(ctx context.Context, rdb redis.UniversalClient) (time.Duration, error) {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	return parseRedisCPU(info)
}

func parseRedisCPU(info string) (time.Duration, error) {
	var total float64
	found := 0
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok || (k != "used_cpu_sys" && k != "used_cpu_user") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("INFO cpu: %s: %w", k, err)
		}
		total += f
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("INFO cpu: no used_cpu_sys and used_cpu_user")
	}
	return time.Duration(total * float64(time.Second)), nil
}

// profileSink is where the bench's CPU profile of the load goes: to the
// --cpuprofile file if any, and kept for splitCPU.
type profileSink struct {
	buf  bytes.Buffer
	file io.Writer
}

func (p *profileSink) Write(b []byte) (int, error) {
	p.buf.Write(b)
	if p.file != nil {
		return p.file.Write(b)
	}
	return len(b), nil
}

// waitReadSide polls the nodes' GET /v1/projections until a projection
// has written everything the store holds (it runs on one node, the holder
// of its lease), so that the CPU the bench counts includes the read side's
// work for every command of the load, however far behind it was when the
// load ended. It returns how long that took.
func waitReadSide(ctx context.Context, addrs []string, operatorToken string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		for _, addr := range addrs {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/projections", nil)
			if err != nil {
				return 0, err
			}
			req.Header.Set("Authorization", "Bearer "+operatorToken)
			resp, err := client.Do(req)
			if err != nil {
				return 0, err
			}
			var sts []struct {
				Status    string `json:"status"`
				Position  uint64 `json:"position"`
				LagEvents uint64 `json:"lagEvents"`
			}
			err = json.NewDecoder(resp.Body).Decode(&sts)
			resp.Body.Close()
			if err != nil {
				return 0, fmt.Errorf("GET /v1/projections: %d: %w", resp.StatusCode, err)
			}
			for _, st := range sts {
				if st.Status != "idle" && st.Status != "stopped" && st.Position > 0 && st.LagEvents == 0 {
					return time.Since(start), nil
				}
			}
		}
		if time.Since(start) > limit {
			return 0, fmt.Errorf("the read side did not catch up within %v of the load's end", limit)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
