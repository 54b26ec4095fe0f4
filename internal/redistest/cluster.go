package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// LocalCluster is a Redis Cluster of redis-server processes on loopback
// ports, one master per process, no replicas, no persistence: a master
// killed and restarted comes back empty, owning the same slots (its
// nodes.conf stays in its directory).
type LocalCluster struct {
	// URL names the cluster in the form SEATLEDGER_REDIS_URL accepts.
	URL string

	dir     string
	timeout time.Duration
	mu      sync.Mutex
	nodes   []*node
}

type node struct {
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// ClusterOptions tunes StartCluster.
type ClusterOptions struct {
	Masters int // default 3
	// NodeTimeout is the cluster-node-timeout: how long a master may be
	// unreachable before the others mark it failed (default 1s).
	NodeTimeout time.Duration
}

// StartCluster starts a cluster of redis-server processes (found on PATH)
// on free loopback ports and waits until it serves every slot.
func StartCluster(opts ClusterOptions) (*LocalCluster, error) {
	if opts.Masters <= 0 {
		opts.Masters = 3
	}
	if opts.NodeTimeout <= 0 {
		opts.NodeTimeout = time.Second
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 { // a port picked free may be taken before the server binds it
		c, err := startCluster(bin, opts)
		if err == nil {
			return c, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startCluster(bin string, opts ClusterOptions) (*LocalCluster, error) {
	dir, err := os.MkdirTemp("", "seatledger-redis-cluster-")
	if err != nil {
		return nil, err
	}
	c := &LocalCluster{dir: dir, timeout: opts.NodeTimeout}
	ports, err := freePorts(opts.Masters)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	for i, p := range ports {
		n := &node{port: p, dir: filepath.Join(dir, strconv.Itoa(p))}
		if err := os.Mkdir(n.dir, 0o755); err != nil {
			c.Stop()
			return nil, err
		}
		conf := strings.Join([]string{
			"port " + strconv.Itoa(p),
			"bind 127.0.0.1",
			"protected-mode no",
			"cluster-enabled yes",
			"cluster-config-file nodes.conf",
			"cluster-node-timeout " + strconv.FormatInt(opts.NodeTimeout.Milliseconds(), 10),
			`save ""`,
			"appendonly no",
			"daemonize no",
			"logfile redis.log",
			"dir " + n.dir,
		}, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(n.dir, "redis.conf"), []byte(conf), 0o644); err != nil {
			c.Stop()
			return nil, err
		}
		c.nodes = append(c.nodes, n)
		if err := c.start(bin, i); err != nil {
			c.Stop()
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.join(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	addrs := make([]string, len(c.nodes))
	for i := range c.nodes {
		addrs[i] = c.Addr(i)
	}
	c.URL = "redis://" + addrs[0]
	for i, a := range addrs[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		c.URL += sep + "addr=" + a
	}
	return c, nil
}

// freePorts picks n ports p free on 127.0.0.1 whose cluster bus port
// p+10000 is free too.
func freePorts(n int) ([]int, error) {
	var out []int
	var hold []net.Listener
	defer func() {
		for _, l := range hold {
			l.Close()
		}
	}()
	for tries := 0; len(out) < n; tries++ {
		if tries > 200 {
			return nil, errors.New("redistest: no free port pair found")
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		hold = append(hold, l)
		p := l.Addr().(*net.TCPAddr).Port
		if p+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if err != nil {
			continue
		}
		hold = append(hold, bus)
		out = append(out, p)
	}
	return out, nil
}

func (c *LocalCluster) start(bin string, i int) error {
	n := c.nodes[i]
	cmd := exec.Command(bin, filepath.Join(n.dir, "redis.conf"))
	cmd.Dir = n.dir
	setDeathSignal(cmd) // the servers die with the test process
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	n.cmd, n.done = cmd, done
	rdb := redis.NewClient(&redis.Options{Addr: c.Addr(i), MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := rdb.Ping(context.Background()).Err()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(n.dir, "redis.log"))
			return fmt.Errorf("redistest: redis-server on port %d exited: %s", n.port, lastLines(string(log), 5))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redistest: redis-server on port %d does not answer: %w", n.port, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(ls[max(0, len(ls)-n):], "\n")
}

// join gives each node an equal range of slots, introduces them to each
// other and waits for the cluster to be served.
func (c *LocalCluster) join(ctx context.Context) error {
	per := 16384 / len(c.nodes)
	for i := range c.nodes {
		from, to := i*per, (i+1)*per-1
		if i == len(c.nodes)-1 {
			to = 16383
		}
		rdb := redis.NewClient(&redis.Options{Addr: c.Addr(i)})
		err := rdb.Do(ctx, "cluster", "addslotsrange", from, to).Err()
		if err == nil {
			err = rdb.Do(ctx, "cluster", "set-config-epoch", i+1).Err()
		}
		if err == nil && i > 0 {
			err = rdb.Do(ctx, "cluster", "meet", "127.0.0.1", c.nodes[0].port).Err()
		}
		rdb.Close()
		if err != nil {
			return fmt.Errorf("redistest: join node %d: %w", i, err)
		}
	}
	return c.WaitOK(ctx)
}

// WaitOK waits until every running node says the cluster is ok (every slot
// served) and knows every other node.
func (c *LocalCluster) WaitOK(ctx context.Context) error {
	want := "cluster_known_nodes:" + strconv.Itoa(len(c.nodes))
	for {
		ok := true
		var last string
		for i := range c.nodes {
			rdb := redis.NewClient(&redis.Options{Addr: c.Addr(i), MaxRetries: -1})
			info, err := rdb.ClusterInfo(ctx).Result()
			rdb.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, want) {
				ok, last = false, fmt.Sprintf("node %d: %v %s", i, err, firstLine(info))
				break
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redistest: the cluster is not ok (%s): %w", last, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(l)
}

// Addr is the host:port of node i.
func (c *LocalCluster) Addr(i int) string { return "127.0.0.1:" + strconv.Itoa(c.nodes[i].port) }

// Client returns a new client of the cluster.
func (c *LocalCluster) Client() *redis.ClusterClient {
	opts, err := redis.ParseClusterURL(c.URL)
	if err != nil {
		panic(err)
	}
	return redis.NewClusterClient(opts)
}

// NodeOf returns the node serving key's slot (nodes serve equal ranges of
// slots in order).
func (c *LocalCluster) NodeOf(slot int) int {
	return min(slot/(16384/len(c.nodes)), len(c.nodes)-1)
}

// Kill kills node i (SIGKILL): its data is lost.
func (c *LocalCluster) Kill(i int) {
	c.mu.Lock()
	n := c.nodes[i]
	c.mu.Unlock()
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

// Restart starts node i again, empty, on its port and with its cluster
// configuration: it serves the slots it served before.
func (c *LocalCluster) Restart(i int) error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.start(bin, i)
}

// Stop kills every node and removes their directories.
func (c *LocalCluster) Stop() {
	for i := range c.nodes {
		c.Kill(i)
	}
	os.RemoveAll(c.dir)
}
