package postgres

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/seatledger/seatledger/eventstore"
)

const (
	// maxGroup caps how many appends of one process share a transaction.
	maxGroup = 64
	// groupTimeout bounds a shared transaction (it runs under no caller's
	// ctx, since its callers may give up independently).
	groupTimeout = 30 * time.Second
	// visiblePoll is how often the visibility waiter asks for the horizon
	// while appends wait for it and no local commit prompts it sooner.
	visiblePoll = time.Millisecond
	// notifyGap is the least time between two NOTIFYs of one Store.
	notifyGap = 2 * time.Millisecond
)

// Outcomes of append_events.
const (
	outcomeWritten  = 0
	outcomeRetry    = 1
	outcomeConflict = 2
	outcomeAgain    = 3 // run again in a new transaction
	// maxAgain bounds how many new transactions one append may take.
	maxAgain = 20
)

type appendReq struct {
	ctx      context.Context
	stream   string
	expected eventstore.ExpectedVersion
	ids      []pgtype.UUID
	types    []string
	data     [][]byte

	res  eventstore.AppendResult
	err  error
	done chan struct{}
}

func validText(what, s string) error {
	if strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) {
		return fmt.Errorf("eventstore: %s %q is not valid UTF-8 text without NUL bytes", what, s)
	}
	return nil
}

func validStream(stream string) error {
	if stream == "" {
		return errors.New("eventstore: empty stream name")
	}
	return validText("stream name", stream)
}

// Append implements eventstore.Store.
//
// Concurrent appends of one Store share transactions (group commit: one
// round trip and one WAL flush for up to 64 appends, Options.Writers such
// transactions at a time); each append is still checked and applied on its
// own. Append returns once its events are in the global log (ReadAll and
// subscriptions see them), or after Options.VisibleWait if a transaction
// that began before its own is still running (see the package doc); the
// append is committed either way. If ctx ends or the connection breaks
// while the append commits, Append returns an error and the append may or
// may not have happened: retry it with the same event IDs.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if err := validStream(stream); err != nil {
		return eventstore.AppendResult{}, err
	}
	if expected < eventstore.Any {
		return eventstore.AppendResult{}, fmt.Errorf("eventstore: invalid expected version %d", int64(expected))
	}
	if len(events) > maxTxEvents {
		return eventstore.AppendResult{}, fmt.Errorf("%w: %d events in one append, the PostgreSQL store takes at most %d",
			eventstore.ErrTooLarge, len(events), maxTxEvents)
	}
	r := &appendReq{
		ctx: ctx, stream: stream, expected: expected,
		ids:   make([]pgtype.UUID, len(events)),
		types: make([]string, len(events)),
		data:  make([][]byte, len(events)),
		done:  make(chan struct{}),
	}
	seen := make(map[[16]byte]struct{}, len(events))
	for i, e := range events {
		id, err := uuid.Parse(e.ID)
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("eventstore: event ID %q is not a UUID: %v", e.ID, err)
		}
		if _, dup := seen[id]; dup {
			return eventstore.AppendResult{}, fmt.Errorf("eventstore: event ID %s appears twice in one append", e.ID)
		}
		if err := validText("event type", e.Type); err != nil {
			return eventstore.AppendResult{}, err
		}
		seen[id] = struct{}{}
		r.ids[i] = pgtype.UUID{Bytes: id, Valid: true}
		r.types[i] = e.Type
		r.data[i] = e.Data
		if r.data[i] == nil {
			r.data[i] = []byte{}
		}
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	if s.isClosed() {
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return eventstore.AppendResult{}, ctx.Err()
	case <-s.closedCh:
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	select {
	case <-r.done:
		return r.res, r.err
	case <-ctx.Done():
		return eventstore.AppendResult{}, ctx.Err()
	case <-s.appendsDone:
		select {
		case <-r.done:
			return r.res, r.err
		default:
			return eventstore.AppendResult{}, eventstore.ErrClosed
		}
	}
}

// writer is one of the goroutines that commit this Store's appends, a group
// at a time. Groups of other writers and other processes commit at the same
// time: nothing but two appends to one stream makes one wait for another.
func (s *Store) writer() {
	defer s.writers.Done()
	group := make([]*appendReq, 0, maxGroup)
	var carry *appendReq // taken, but would have made the group too large
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-s.reqs:
			case <-s.closedCh:
				for {
					select {
					case r := <-s.reqs:
						r.err = eventstore.ErrClosed
						close(r.done)
					default:
						return
					}
				}
			}
		}
		group = append(group[:0], first)
		events := len(first.ids)
		// Appends released together (a group's callers, woken by its
		// commit) come back together, but the first of them reaches this
		// writer before the others have run: let them queue up, or the
		// group is that one append, a transaction and WAL flush of its
		// own. Costs a pass of the scheduler when nothing else waits.
		runtime.Gosched()
	fill:
		for len(group) < maxGroup {
			select {
			case r := <-s.reqs:
				if events+len(r.ids) > maxTxEvents {
					carry = r
					break fill
				}
				group = append(group, r)
				events += len(r.ids)
			default:
				break fill
			}
		}
		live := group[:0]
		for _, r := range group {
			if err := r.ctx.Err(); err != nil {
				r.err = err
				close(r.done)
				continue
			}
			live = append(live, r)
		}
		// One order of streams in every group: two groups that append to
		// the same streams wait for each other in that order, never in a
		// cycle. The sort is stable: appends to one stream keep their
		// arrival order.
		slices.SortStableFunc(live, func(a, b *appendReq) int { return strings.Compare(a.stream, b.stream) })
		switch len(live) {
		case 0:
		case 1:
			s.appendOne(live[0])
		default:
			s.appendGroup(live)
		}
		for i := range group {
			group[i] = nil
		}
	}
}

func (s *Store) args(r *appendReq, idx int) []any {
	return []any{r.stream, int64(r.expected), r.ids, r.types, r.data, int32(idx)}
}

// answer is what append_events returns.
type answer struct {
	outcome           int32
	version, position int64
	xid               int64
	clear             bool
	xmin              int64 // the horizon when the statement began
}

func (a *answer) dest() []any {
	return []any{&a.outcome, &a.version, &a.position, &a.xid, &a.clear, &a.xmin}
}

// result turns append_events' answer into r's result, and remembers the
// stream's last event.
func (s *Store) result(r *appendReq, a answer) {
	if a.outcome == outcomeConflict {
		r.err = &eventstore.ConflictError{Stream: r.stream, Expected: r.expected, Actual: uint64(a.version)}
		return
	}
	r.res = eventstore.AppendResult{Version: uint64(a.version), Position: eventstore.Position(a.position)}
	if len(r.ids) > 0 {
		s.heads.saw(r.stream, a.version, a.position)
	}
}

// maxKnownHeads bounds how many streams' last events a Store remembers.
const maxKnownHeads = 1 << 16

// knownHeads remembers, per stream, the version and position of the last
// event this Store appended to it (or found stored by an idempotent
// retry). Events are never removed, so each entry stays true: version v
// of the stream exists at that position. An append expecting exactly v
// then needs no read of the stream's head: its INSERT of version v+1
// succeeds only if v is still the head, and its transaction, which takes
// its id after that event committed, gets larger positions.
type knownHeads struct {
	mu sync.Mutex
	m  map[string]knownHead
}

type knownHead struct{ version, position int64 }

func (k *knownHeads) saw(stream string, version, position int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if h, ok := k.m[stream]; ok && h.version >= version {
		return
	}
	if len(k.m) >= maxKnownHeads {
		clear(k.m)
	}
	k.m[stream] = knownHead{version, position}
}

// known is the position of the stream's event at the expected version, if
// this Store knows it (version 0: the stream's start, position 0).
func (k *knownHeads) known(stream string, expected eventstore.ExpectedVersion) pgtype.Int8 {
	if expected == eventstore.NoStream {
		return pgtype.Int8{Int64: 0, Valid: true}
	}
	if expected < 0 {
		return pgtype.Int8{}
	}
	k.mu.Lock()
	h, ok := k.m[stream]
	k.mu.Unlock()
	if !ok || h.version != int64(expected) {
		return pgtype.Int8{}
	}
	return pgtype.Int8{Int64: h.position, Valid: true}
}

// appendOne runs one append as a single statement (its own transaction),
// again in a new one as long as append_events asks for it.
func (s *Store) appendOne(r *appendReq) {
	var a answer
	for try := 1; ; try++ {
		if err := s.pool.QueryRow(r.ctx, s.qAppend, s.args(r, 0)...).Scan(a.dest()...); err != nil {
			r.err = s.mapErr(r.ctx, "append", err)
			close(r.done)
			return
		}
		if a.outcome != outcomeAgain {
			break
		}
		if try == maxAgain {
			r.err = fmt.Errorf("%w: postgres append: stream %q: lost %d races with other appends", eventstore.ErrUnavailable, r.stream, try)
			close(r.done)
			return
		}
	}
	s.result(r, a)
	s.seeHorizon(a.xmin)
	s.settle([]*appendReq{r}, a.xid, a.clear)
}

// appendGroup runs several appends in one transaction, one statement
// (append_batch: set-based for the appends that need no check beyond the
// stream's head, append_events for the others). Refused appends
// (conflicts) are answers, not errors, so they do not abort the others.
// Each append gets its own range of indexes in the transaction (positions).
func (s *Store) appendGroup(group []*appendReq) {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	if done, err := s.appendKnown(ctx, group); done {
		return
	} else if err != nil {
		s.failGroup(group, err)
		return
	}
	var (
		streams  = make([]string, len(group))
		expected = make([]int64, len(group))
		counts   = make([]int32, len(group))
		known    = make([]pgtype.Int8, len(group))
		ids      []pgtype.UUID
		types    []string
		data     [][]byte
	)
	for i, r := range group {
		streams[i], expected[i], counts[i] = r.stream, int64(r.expected), int32(len(r.ids))
		known[i] = s.heads.known(r.stream, r.expected)
		ids = append(ids, r.ids...)
		types = append(types, r.types...)
		data = append(data, r.data...)
	}
	var (
		outcomes            []int32
		versions, positions []int64
		xid, xmin           int64
		clear               bool
	)
	err := s.pool.QueryRow(ctx, s.qBatch, streams, expected, counts, ids, types, data, known, s.eventsRel).
		Scan(&outcomes, &versions, &positions, &xid, &clear, &xmin)
	if err == nil && (len(outcomes) != len(group) || len(versions) != len(group) || len(positions) != len(group)) {
		err = fmt.Errorf("append_batch answered %d outcomes for %d appends", len(outcomes), len(group))
	}
	if err == nil {
		s.seeHorizon(xmin)
		var done, again []*appendReq
		for i, r := range group {
			if outcomes[i] == outcomeAgain {
				again = append(again, r)
				continue
			}
			s.result(r, answer{outcome: outcomes[i], version: versions[i], position: positions[i]})
			done = append(done, r)
		}
		s.settle(done, xid, clear)
		for _, r := range again {
			s.appendOne(r)
		}
		return
	}
	var pe *pgconn.PgError
	switch {
	case s.isClosed():
		err = eventstore.ErrClosed
	case ctx.Err() != nil:
		err = fmt.Errorf("%w: postgres append: no answer within %v: %v", eventstore.ErrUnavailable, groupTimeout, err)
	case errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001"):
		// A deadlock with a transaction that is no group of ours, or an
		// append that kept losing races: alone, each append waits for one
		// stream only.
		err = nil
	default:
		err = classify("append", err)
	}
	if err != nil && (errors.Is(err, eventstore.ErrUnavailable) || errors.Is(err, eventstore.ErrClosed)) {
		s.failGroup(group, err)
		return
	}
	// Something in the group was refused by the server: nothing was
	// committed, so run the appends one by one to fail only that one.
	for _, r := range group {
		s.appendOne(r)
	}
}

// failGroup completes every append of a group with err.
func (s *Store) failGroup(group []*appendReq, err error) {
	for _, r := range group {
		r.err = err
		close(r.done)
	}
}

// appendKnown commits a group through append_known if every append in it
// has a known head and a stream of its own (the group is sorted by
// stream): one INSERT, nothing read or decided. done reports that the
// group is complete; a non-nil err that the server cannot be reached
// (the group fails); neither, that the group must go through
// append_batch (a version taken by another Store, a stored ID, a replaced
// table: nothing was written).
func (s *Store) appendKnown(ctx context.Context, group []*appendReq) (done bool, err error) {
	var (
		n    int
		maxp int64
	)
	for i, r := range group {
		if len(r.ids) == 0 || (i > 0 && group[i-1].stream == r.stream) {
			return false, nil
		}
		k := s.heads.known(r.stream, r.expected)
		if !k.Valid {
			return false, nil
		}
		maxp = max(maxp, k.Int64)
		n += len(r.ids)
	}
	a, err := s.callKnown(ctx, group, n, maxp)
	if err != nil {
		var pe *pgconn.PgError
		switch {
		case s.isClosed():
			return false, eventstore.ErrClosed
		case ctx.Err() != nil:
			return false, fmt.Errorf("%w: postgres append: no answer within %v: %v", eventstore.ErrUnavailable, groupTimeout, err)
		case errors.As(err, &pe):
			return false, nil
		}
		if err = classify("append", err); errors.Is(err, eventstore.ErrUnavailable) {
			return false, err
		}
		return false, nil
	}
	s.seeHorizon(a.xmin)
	if !a.baseValid {
		return false, nil
	}
	pos := a.base
	for _, r := range group {
		pos += int64(len(r.ids))
		s.result(r, answer{version: int64(r.expected) + int64(len(r.ids)), position: pos - 1})
	}
	older := a.older
	if older == nil {
		older = []int64{} // known: none (clear)
	}
	s.settleOlder(group, a.xid, a.clear, older)
	return true, nil
}

// settle completes committed appends: at once if their transaction (xid,
// 0 if it wrote nothing) is already below the visibility horizon (clear),
// else once it is, or after Options.VisibleWait.
func (s *Store) settle(reqs []*appendReq, xid int64, clear bool) {
	s.settleOlder(reqs, xid, clear, nil)
}

// settleOlder is settle for a transaction that also told which older
// transactions were still running at its end (older; nil if it did not
// tell): it enters the global log once those have ended, and this Store
// sees the ends of its own transactions without asking the server.
func (s *Store) settleOlder(reqs []*appendReq, xid int64, clear bool, older []int64) {
	if xid == 0 {
		release(reqs)
		return
	}
	if clear {
		// No older transaction was running at its end, and it has
		// committed: every transaction id up to its own has ended.
		s.seeHorizon(xid + 1)
	}
	s.visMu.Lock()
	ready, entered := s.endedLocked(xid)
	waiting := false
	if !clear {
		if older = s.stillRunningLocked(older); older != nil && len(older) == 0 {
			ready, entered = append(ready, reqs...), true
		} else {
			waiting = true
			// reqs may be the writer's buffer, reused for its next group.
			s.pending = append(s.pending, pendingVis{xid: xid, reqs: slices.Clone(reqs), older: older,
				deadline: time.Now().Add(s.opts.VisibleWait)})
		}
	}
	s.visMu.Unlock()
	if clear {
		release(reqs)
	}
	release(ready)
	if clear || entered {
		s.published()
	}
	if waiting {
		// Notifications of other processes' appends prompt the waiter.
		s.startListener()
	}
	// A commit may be what pending appends wait for.
	select {
	case s.visKick <- struct{}{}:
	default:
	}
}

// endedLocked records that this Store's transaction xid has ended
// (committed), and returns the appends of pending transactions that
// waited for nothing else, and whether any such transaction entered the
// global log. s.visMu is held.
func (s *Store) endedLocked(xid int64) (ready []*appendReq, entered bool) {
	s.ended[s.endedNext] = xid
	s.endedNext = (s.endedNext + 1) % len(s.ended)
	keep := s.pending[:0]
	for _, p := range s.pending {
		if i := slices.Index(p.older, xid); i >= 0 {
			p.older = slices.Delete(p.older, i, i+1)
			if len(p.older) == 0 {
				ready, entered = append(ready, p.reqs...), true
				continue
			}
		}
		keep = append(keep, p)
	}
	clear(s.pending[len(keep):])
	s.pending = keep
	return ready, entered
}

// stillRunningLocked removes from older the transactions known to have
// ended: below the horizon seen, or this Store's own that ended lately.
// nil stays nil (not known). s.visMu is held.
func (s *Store) stillRunningLocked(older []int64) []int64 {
	if older == nil {
		return nil
	}
	h := s.seenXmin.Load()
	return slices.DeleteFunc(older, func(x int64) bool {
		return x < h || slices.Contains(s.ended[:], x)
	})
}

// pendingVis is a committed transaction whose events are not yet in the
// global log: a transaction with a smaller id was still running.
type pendingVis struct {
	xid      int64
	reqs     []*appendReq // nil once released after VisibleWait
	deadline time.Time
	// older are the transactions with smaller ids that were running when
	// it ended and have not been seen to end since (nil: not known, wait
	// for the horizon).
	older []int64
}

// visibility is the goroutine that completes pending appends when the
// horizon (the oldest running transaction id, pg_snapshot_xmin) passes
// their transaction, and announces them to subscribers.
func (s *Store) visibility() {
	defer close(s.visDone)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var lastPoll time.Time
	for {
		s.visMu.Lock()
		n := len(s.pending)
		s.visMu.Unlock()
		if n == 0 {
			select {
			case <-s.visKick:
				continue
			case <-s.visStop:
				return
			}
		}
		stopping := false
		select {
		case <-s.visStop:
			stopping = true
		default:
		}
		// What this Store's append statements saw of the horizon releases
		// most waiting appends under load; the server is asked at most
		// once per visiblePoll for the others.
		left := s.releaseBelow(s.seenXmin.Load(), false)
		if left > 0 && (stopping || time.Since(lastPoll) >= visiblePoll) {
			lastPoll = time.Now()
			var h int64
			if err := s.pool.QueryRow(s.rootCtx, s.qHorizon).Scan(&h); err == nil {
				s.seeHorizon(h)
			}
			s.releaseBelow(s.seenXmin.Load(), stopping)
		}
		if stopping {
			return
		}
		timer.Reset(visiblePoll)
		select {
		case <-s.visKick:
		case <-timer.C:
		case <-s.visStop:
		}
		timer.Stop()
	}
}

// releaseBelow completes the pending appends whose transactions are below
// horizon (and announces them), those past their VisibleWait, and all of
// them if the Store is stopping. It returns how many transactions are
// still waiting to enter the global log.
func (s *Store) releaseBelow(horizon int64, stopping bool) int {
	now := time.Now()
	published := false
	s.visMu.Lock()
	keep := s.pending[:0]
	for _, p := range s.pending {
		if p.xid < horizon {
			release(p.reqs)
			published = true
			continue
		}
		if stopping {
			release(p.reqs)
			continue
		}
		if p.reqs != nil && now.After(p.deadline) {
			release(p.reqs)
			p.reqs = nil
		}
		keep = append(keep, p)
	}
	clear(s.pending[len(keep):])
	s.pending = keep
	s.visMu.Unlock()
	if published {
		s.published()
	}
	return len(keep)
}

// seeHorizon records a horizon (every transaction id below it has ended)
// for the visibility waiter. Horizons only grow.
func (s *Store) seeHorizon(xmin int64) {
	for {
		cur := s.seenXmin.Load()
		if xmin <= cur || s.seenXmin.CompareAndSwap(cur, xmin) {
			return
		}
	}
}

// release completes appends whose results are set.
func release(reqs []*appendReq) {
	for _, r := range reqs {
		close(r.done)
	}
}

// published wakes this process's subscriptions and has the notifier tell
// other processes' that new events are in the global log.
func (s *Store) published() {
	s.wake()
	select {
	case s.notifyKick <- struct{}{}:
	default:
	}
}

// notifier sends one NOTIFY at a time, outside the append transactions: a
// transaction that notifies holds a database-wide lock from its commit's
// start to its end, which would make appends commit one at a time again.
// Kicks that arrive while it sends are merged into the next one.
func (s *Store) notifier() {
	defer close(s.notifierDone)
	for {
		select {
		case <-s.notifyKick:
		case <-s.closedCh:
			return
		}
		// Best effort: subscribers poll if a notification is lost. The
		// payload names this Store, whose own listener ignores it, and the
		// horizon it knows, which may release other Stores' waiting
		// appends without asking the server.
		payload := s.token + " " + strconv.FormatInt(s.seenXmin.Load(), 10)
		_, _ = s.pool.Exec(s.rootCtx, "SELECT pg_notify($1, $2)", s.n.channel, payload)
		// Under load a Store publishes after every group commit; every
		// notification wakes every listening process (its subscriptions
		// read, its visibility waiter may ask for the horizon). One per
		// notifyGap carries the same news for far less of the server.
		select {
		case <-time.After(notifyGap):
		case <-s.closedCh:
			return
		}
	}
}
