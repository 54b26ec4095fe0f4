package embedded

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/seatledger/seatledger/eventstore"
)

const crashDirEnv = "SEATLEDGER_CRASH_CHILD_DIR"

// TestCrashChild is the child process of TestCrashRecovery: it appends with
// synced commits from several goroutines until it is killed, printing a line
// per acknowledged event.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestCrashRecovery")
	}
	s, err := Open(dir, Options{})
	if err != nil {
		fmt.Println("open-error", err)
		os.Exit(3)
	}
	ctx := context.Background()
	var mu sync.Mutex
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	var wg sync.WaitGroup
	fmt.Fprintln(os.Stdout, "ready")
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			stream := fmt.Sprintf("crash-%d", g)
			v, err := s.StreamVersion(ctx, stream)
			if err != nil {
				panic(err)
			}
			for i := 0; ; i++ {
				e := evs(1 + (i+g)%3)
				r, err := s.Append(ctx, stream, eventstore.Exactly(v), e)
				if err != nil {
					panic(err)
				}
				// Print only after the append is acknowledged.
				mu.Lock()
				for j, x := range e {
					fmt.Fprintf(out, "ack %s %d %s %d\n", stream, v+uint64(j)+1, x.ID, uint64(r.Position)-uint64(len(e)-1-j))
				}
				out.Flush()
				mu.Unlock()
				v = r.Version
			}
		}(g)
	}
	wg.Wait()
}

type ack struct {
	stream  string
	version uint64
	id      string
	pos     uint64
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dir := t.TempDir()
	ctx := context.Background()
	var all []ack
	rounds := 4
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan []ack, 1)
		ready := make(chan struct{})
		go func() {
			var got []ack
			sc := bufio.NewScanner(stdout)
			first := true
			for sc.Scan() {
				if first {
					close(ready)
					first = false
				}
				f := strings.Fields(sc.Text())
				if len(f) != 5 || f[0] != "ack" {
					continue
				}
				v, err1 := strconv.ParseUint(f[2], 10, 64)
				p, err2 := strconv.ParseUint(f[4], 10, 64)
				if err1 != nil || err2 != nil {
					continue // a line cut by the kill
				}
				got = append(got, ack{f[1], v, f[3], p})
			}
			if first {
				close(ready)
			}
			lines <- got
		}()
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			t.Fatal("child did not start")
		}
		time.Sleep(time.Duration(50+rand.IntN(350)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		acks := <-lines
		if len(acks) == 0 {
			t.Fatalf("round %d: the child acknowledged nothing", round)
		}
		all = append(all, acks...)

		s, err := Open(dir, Options{VerifyOnOpen: true})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		if err := s.Verify(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		log, err := s.ReadAll(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range log {
			if e.Position != eventstore.Position(i+1) {
				t.Fatalf("round %d: global log not contiguous at %d", round, i)
			}
		}
		for _, a := range all {
			if a.pos == 0 || a.pos > uint64(len(log)) {
				t.Fatalf("round %d: acknowledged event %s (%s v%d, position %d) lost; log has %d events", round, a.id, a.stream, a.version, a.pos, len(log))
			}
			e := log[a.pos-1]
			if e.ID != a.id || e.Stream != a.stream || e.Version != a.version {
				t.Fatalf("round %d: position %d holds %s %s v%d, acknowledged %s %s v%d", round, a.pos, e.ID, e.Stream, e.Version, a.id, a.stream, a.version)
			}
		}
		// Every stream is contiguous from 1.
		for g := 0; g < 8; g++ {
			evs, err := s.ReadStream(ctx, fmt.Sprintf("crash-%d", g), 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range evs {
				if e.Version != uint64(i+1) {
					t.Fatalf("stream crash-%d: event %d has version %d", g, i, e.Version)
				}
			}
		}
		t.Logf("round %d: %d acknowledged this round, %d in the log, all present", round, len(acks), len(log))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPowerLoss simulates losing power at random moments with Pebble's
// crashable in-memory file system: the clone keeps only what was fsynced
// (plus a random part of the rest), and every append acknowledged before the
// crash must be in it.
func TestPowerLoss(t *testing.T) {
	for round := 0; round < 3; round++ {
		mem := vfs.NewCrashableMem()
		s, err := Open("/db", Options{FS: mem})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var mu sync.Mutex
		var acked []ack
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				stream := fmt.Sprintf("p%d", g)
				var v uint64
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					e := evs(1 + i%2)
					r, err := s.Append(ctx, stream, eventstore.Exactly(v), e)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					for j, x := range e {
						acked = append(acked, ack{stream, v + uint64(j) + 1, x.ID, uint64(r.Position) - uint64(len(e)-1-j)})
					}
					mu.Unlock()
					v = r.Version
				}
			}(g)
		}
		time.Sleep(time.Duration(20+rand.IntN(80)) * time.Millisecond)
		mu.Lock()
		before := append([]ack(nil), acked...)
		mu.Unlock()
		crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 30, RNG: rand.New(rand.NewPCG(uint64(round), 7))})
		close(stop)
		wg.Wait()
		s.Close()

		s2, err := Open("/db", Options{FS: crashed, VerifyOnOpen: true})
		if err != nil {
			t.Fatalf("round %d: open after power loss: %v", round, err)
		}
		log, err := s2.ReadAll(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range before {
			if a.pos > uint64(len(log)) || log[a.pos-1].ID != a.id || log[a.pos-1].Version != a.version || log[a.pos-1].Stream != a.stream {
				t.Fatalf("round %d: acknowledged event %+v lost after power loss (log has %d)", round, a, len(log))
			}
		}
		t.Logf("round %d: %d acknowledged before the crash, %d survived", round, len(before), len(log))
		s2.Close()
	}
}
