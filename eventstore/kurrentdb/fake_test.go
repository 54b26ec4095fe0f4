package kurrentdb

// An in-test gRPC server that speaks the client's own generated protocol
// stubs (streams service only) over an in-memory log, with scripted faults,
// and a loopback TCP proxy that refuses, drops or stalls connections. They
// test the Store's lifecycle (no hang, no panic, no permanent death, mapped
// errors, recovery); they do not claim to reproduce the server's semantics.

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type fakeEvent struct {
	id, typ, stream string
	rev             uint64
	pos             uint64
	data, meta      []byte
}

// fakeLog is the state fake servers share (a "cluster" of fakes shares one).
type fakeLog struct {
	mu      sync.Mutex
	events  []fakeEvent
	deleted map[string]bool   // tombstoned streams
	offset  map[string]uint64 // first revision of a soft-deleted stream
	changed chan struct{}     // closed and replaced on every append
}

func newFakeLog() *fakeLog {
	return &fakeLog{deleted: map[string]bool{}, offset: map[string]uint64{}, changed: make(chan struct{})}
}

type fakeServer struct {
	api.UnimplementedStreamsServer
	log *fakeLog
	t   *testing.T

	addr string
	srv  *grpc.Server

	// scripted faults
	readPanic      atomic.Bool  // stream reads answer a message the client cannot handle
	subPanic       atomic.Bool  // subscriptions send an event without a stream
	subDropAfter   atomic.Int32 // > 0: a subscription fails Unavailable after that many events
	unavailable    atomic.Int32 // that many next calls fail Unavailable at once
	notLeader      atomic.Int32 // that many next calls answer not-leader, pointing at leader
	leader         string       // host:port of the leader for not-leader answers
	maxAppend      int          // > 0: appends larger refused like the server's MaxAppendSize
	appends        atomic.Int32 // appends that reached the server
	calls          atomic.Int32
	leaderRequired atomic.Int32 // calls that carried requires-leader=true
}

func startFake(t *testing.T, log *fakeLog, addr string) *fakeServer {
	t.Helper()
	f := &fakeServer{log: log, t: t}
	f.listen(addr)
	t.Cleanup(f.stop)
	return f
}

// listen (re)starts the server on addr ("" picks a port).
func (f *fakeServer) listen(addr string) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var l net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger briefly after a stop
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		f.t.Fatal(err)
	}
	f.addr = l.Addr().String()
	f.srv = grpc.NewServer()
	api.RegisterStreamsServer(f.srv, f)
	go f.srv.Serve(l)
}

func (f *fakeServer) stop() { f.srv.Stop() }

// restart stops the server (every connection and stream ends) and starts
// it again on the same address after down.
func (f *fakeServer) restart(down time.Duration) {
	f.srv.Stop()
	time.Sleep(down)
	f.listen(f.addr)
}

func (f *fakeServer) url() string { return connURL(f.addr) }

func connURL(addr string) string {
	return "kurrentdb://" + addr + "?tls=false&maxDiscoverAttempts=1&discoveryInterval=10&gossipTimeout=1"
}

// fault answers the scripted call-level faults.
func (f *fakeServer) fault(ctx context.Context, md metadata.MD) error {
	f.calls.Add(1)
	if v := md.Get("requires-leader"); len(v) > 0 && v[0] == "true" {
		f.leaderRequired.Add(1)
	}
	if f.notLeader.Add(-1) >= 0 {
		host, port, _ := net.SplitHostPort(f.leader)
		_ = grpc.SetTrailer(ctx, metadata.Pairs("exception", "not-leader", "leader-endpoint-host", host, "leader-endpoint-port", port))
		return status.Error(codes.NotFound, "Leader info available")
	}
	f.notLeader.Store(max(f.notLeader.Load(), 0))
	if f.unavailable.Add(-1) >= 0 {
		return status.Error(codes.Unavailable, "server is not ready")
	}
	f.unavailable.Store(max(f.unavailable.Load(), 0))
	return nil
}

func (f *fakeServer) Append(st grpc.ClientStreamingServer[api.AppendReq, api.AppendResp]) error {
	first, err := st.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	stream := string(opts.GetStreamIdentifier().GetStreamName())
	var msgs []*api.AppendReq_ProposedMessage
	size := 0
	for {
		m, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		pm := m.GetProposedMessage()
		size += len(pm.GetData()) + len(pm.GetCustomMetadata())
		msgs = append(msgs, pm)
	}
	// Like the server, answer once the whole append was read.
	md, _ := metadata.FromIncomingContext(st.Context())
	if err := f.fault(st.Context(), md); err != nil {
		return err
	}
	f.appends.Add(1)
	if f.maxAppend > 0 && size > f.maxAppend {
		return status.Errorf(codes.InvalidArgument, "Maximum Append Size of %d Exceeded.", f.maxAppend)
	}
	l := f.log
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.deleted[stream] {
		_ = grpc.SetTrailer(st.Context(), metadata.Pairs("exception", "stream-deleted", "stream-name", stream))
		return status.Error(codes.FailedPrecondition, "stream deleted")
	}
	cur := int64(-1)
	for _, e := range l.events {
		if e.stream == stream {
			cur = int64(e.rev)
		}
	}
	if r, ok := opts.GetExpectedStreamRevision().(*api.AppendReq_Options_Revision); ok && int64(r.Revision) != cur {
		return st.SendAndClose(&api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: &api.AppendResp_WrongExpectedVersion{
			CurrentRevisionOption: &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(max(cur, 0))}}}})
	}
	if _, ok := opts.GetExpectedStreamRevision().(*api.AppendReq_Options_NoStream); ok && cur >= 0 {
		return st.SendAndClose(&api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: &api.AppendResp_WrongExpectedVersion{
			CurrentRevisionOption: &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(cur)}}}})
	}
	if cur < 0 {
		cur = int64(l.offset[stream]) - 1
	}
	var pos uint64
	for _, m := range msgs {
		cur++
		pos = uint64(len(l.events)+1) * 100
		l.events = append(l.events, fakeEvent{id: m.GetId().GetString_(), typ: m.GetMetadata()["type"], stream: stream,
			rev: uint64(cur), pos: pos, data: m.GetData(), meta: m.GetCustomMetadata()})
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return st.SendAndClose(&api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
		CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(cur)},
		PositionOption:        &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{CommitPosition: pos, PreparePosition: pos}},
	}}})
}

func (e fakeEvent) proto(noStream bool) *api.ReadResp {
	re := &api.ReadResp_ReadEvent_RecordedEvent{
		Id:               &shared.UUID{Value: &shared.UUID_String_{String_: e.id}},
		StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(e.stream)},
		StreamRevision:   e.rev, CommitPosition: e.pos, PreparePosition: e.pos,
		Metadata:       map[string]string{"type": e.typ, "content-type": "application/json", "created": strconv.FormatInt(time.Now().UnixNano()/100, 10)},
		Data:           e.data,
		CustomMetadata: e.meta,
	}
	if noStream {
		re.StreamIdentifier = nil
	}
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{Event: re,
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: e.pos}}}}
}

func (f *fakeServer) Read(req *api.ReadReq, st grpc.ServerStreamingServer[api.ReadResp]) error {
	md, _ := metadata.FromIncomingContext(st.Context())
	if err := f.fault(st.Context(), md); err != nil {
		return err
	}
	o := req.GetOptions()
	if o.GetSubscription() != nil {
		return f.subscribe(o, st)
	}
	count := o.GetCount()
	back := o.GetReadDirection() == api.ReadReq_Options_Backwards
	l := f.log
	l.mu.Lock()
	var out []fakeEvent
	if so := o.GetStream(); so != nil {
		stream := string(so.GetStreamIdentifier().GetStreamName())
		if l.deleted[stream] {
			l.mu.Unlock()
			_ = grpc.SetTrailer(st.Context(), metadata.Pairs("exception", "stream-deleted", "stream-name", stream))
			return status.Error(codes.FailedPrecondition, "stream deleted")
		}
		for _, e := range l.events {
			if e.stream != stream {
				continue
			}
			switch r := so.GetRevisionOption().(type) {
			case *api.ReadReq_Options_StreamOptions_Revision:
				if (!back && e.rev < r.Revision) || (back && e.rev > r.Revision) {
					continue
				}
			}
			out = append(out, e)
		}
	} else {
		from := uint64(0)
		if p, ok := o.GetAll().GetAllOption().(*api.ReadReq_Options_AllOptions_Position); ok {
			from = p.Position.GetCommitPosition()
		}
		for _, e := range l.events {
			if back || e.pos >= from {
				out = append(out, e)
			}
		}
	}
	l.mu.Unlock()
	if back {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	if uint64(len(out)) > count {
		out = out[:count]
	}
	if o.GetStream() != nil && len(out) == 0 {
		return st.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
			StreamIdentifier: o.GetStream().GetStreamIdentifier()}}})
	}
	for _, e := range out {
		if err := st.Send(e.proto(false)); err != nil {
			return err
		}
	}
	if f.readPanic.Load() {
		// Newer servers end a stream read with its last position; the
		// client has no case for it.
		return st.Send(&api.ReadResp{Content: &api.ReadResp_LastStreamPosition{LastStreamPosition: 7}})
	}
	return nil
}

func (f *fakeServer) subscribe(o *api.ReadReq_Options, st grpc.ServerStreamingServer[api.ReadResp]) error {
	if err := st.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{SubscriptionId: "sub"}}}); err != nil {
		return err
	}
	from := uint64(0)
	if p, ok := o.GetAll().GetAllOption().(*api.ReadReq_Options_AllOptions_Position); ok {
		from = p.Position.GetCommitPosition()
	}
	sent := int32(0)
	for {
		l := f.log
		l.mu.Lock()
		var out []fakeEvent
		for _, e := range l.events {
			if e.pos >= from {
				out = append(out, e)
			}
		}
		changed := l.changed
		l.mu.Unlock()
		for _, e := range out {
			if n := f.subDropAfter.Load(); n > 0 && sent >= n {
				return status.Error(codes.Unavailable, "node shutting down")
			}
			if err := st.Send(e.proto(f.subPanic.Load())); err != nil {
				return err
			}
			sent++
			from = e.pos + 1
		}
		select {
		case <-changed:
		case <-st.Context().Done():
			return st.Context().Err()
		}
	}
}

func (f *fakeServer) Delete(ctx context.Context, req *api.DeleteReq) (*api.DeleteResp, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if err := f.fault(ctx, md); err != nil {
		return nil, err
	}
	stream := string(req.GetOptions().GetStreamIdentifier().GetStreamName())
	l := f.log
	l.mu.Lock()
	defer l.mu.Unlock()
	kept := l.events[:0]
	last := int64(-1)
	for _, e := range l.events {
		if e.stream == stream {
			last = int64(e.rev)
			continue
		}
		kept = append(kept, e)
	}
	l.events = kept
	l.offset[stream] = uint64(last + 1)
	return &api.DeleteResp{}, nil
}

// proxy is a loopback TCP proxy in front of target with a switchable mode.
type proxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	mode  string // "pass", "refuse", "drop", "stall"
	l     net.Listener
	conns []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target, mode: "pass"}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = l.Addr().String()
	p.l = l
	go p.accept(l)
	t.Cleanup(func() { p.set("refuse") })
	return p
}

func (p *proxy) url() string { return connURL(p.addr) }

// set switches the mode; every open connection is cut.
func (p *proxy) set(mode string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	if mode == "refuse" && p.l != nil {
		p.l.Close()
		p.l = nil
	}
	if mode != "refuse" && p.l == nil {
		var l net.Listener
		var err error
		for i := 0; i < 50; i++ {
			if l, err = net.Listen("tcp", p.addr); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			p.t.Error(err)
			return
		}
		p.l = l
		go p.accept(l)
	}
	p.mode = mode
}

func (p *proxy) accept(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		mode := p.mode
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		switch mode {
		case "drop":
			c.Close()
		case "stall":
			// hold it open, say nothing
		default:
			go p.pipe(c)
		}
	}
}

func (p *proxy) pipe(c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, u)
	p.mu.Unlock()
	go func() { io.Copy(u, c); u.Close() }()
	io.Copy(c, u)
	c.Close()
}
