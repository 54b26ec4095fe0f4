package commands

import (
	"container/list"
	"context"
	"fmt"
	"sync"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
	"github.com/seatledger/seatledger/eventstore"
)

// readBatch is how many events one read of a stream returns.
const readBatch = 4096

// load returns the tenant's state: from the cache, else from the newest
// snapshot and the events after it. fresh reports that it was read from
// the store by this call, so it is at least as new as the stream's head
// when the call began; a cached state may be behind it on a shared store
// (see atHead). The caller holds the tenant's lock.
func (h *Handler) load(ctx context.Context, tenantID string) (st *domain.Tenant, fresh bool, err error) {
	if st := h.cache.get(tenantID); st != nil {
		return st, !h.shared, nil
	}
	st, err = Fold(ctx, h.cfg.Store, h.cfg.Snapshots, h.cfg.Upcasters, tenantID, 0)
	if err != nil {
		return nil, false, err
	}
	if st.Exists() {
		h.cache.put(tenantID, st)
	}
	return st, true, nil
}

// catchUp applies the events appended after st.Version.
func (h *Handler) catchUp(ctx context.Context, st *domain.Tenant) error {
	return foldFrom(ctx, h.cfg.Store, h.cfg.Upcasters, st, streamOf(st), 0)
}

func streamOf(st *domain.Tenant) string { return StreamName(st.ID) }

// Fold computes a tenant's state at version upTo (0: the latest) from the
// newest snapshot at or below it (if snaps is not nil) and the events after.
// Snapshots are a cache: Fold with snaps nil gives the same state.
func Fold(ctx context.Context, store eventstore.Store, snaps eventstore.SnapshotStore, ups domain.Upcasters, tenantID string, upTo uint64) (*domain.Tenant, error) {
	st := domain.NewTenant()
	stream := StreamName(tenantID)
	if snaps != nil {
		snap, ok, err := snaps.LoadSnapshot(ctx, stream, upTo)
		if err != nil {
			return nil, fmt.Errorf("load snapshot of tenant %s: %w", tenantID, err)
		}
		if ok && snap.Schema == SnapshotSchema {
			if s, err := eventcodec.UnmarshalSnapshot(snap.Data); err == nil && s.Version == snap.Version {
				st = s
			}
			// An unreadable snapshot is ignored: the events are the truth.
		}
	}
	if err := foldFrom(ctx, store, ups, st, stream, upTo); err != nil {
		return nil, err
	}
	return st, nil
}

// foldFrom applies the events of stream after st.Version, up to upTo (0: all).
func foldFrom(ctx context.Context, store eventstore.Store, ups domain.Upcasters, st *domain.Tenant, stream string, upTo uint64) error {
	for {
		if upTo > 0 && st.Version >= upTo {
			return nil
		}
		n := readBatch
		if upTo > 0 && upTo-st.Version < uint64(n) {
			n = int(upTo - st.Version)
		}
		recs, err := store.ReadStream(ctx, stream, st.Version+1, n)
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		for _, r := range recs {
			if r.Version != st.Version+1 {
				return fmt.Errorf("read %s: expected version %d, got %d: the stream has a gap", stream, st.Version+1, r.Version)
			}
			e, err := eventcodec.Decode(r.Data, ups)
			if err != nil {
				return fmt.Errorf("%s version %d: %w", stream, r.Version, err)
			}
			e.Version = r.Version
			domain.Evolve(st, e)
		}
		if len(recs) < n {
			return nil
		}
	}
}

// tenantCache is a bounded LRU of tenant states.
type tenantCache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List
	items map[string]*list.Element
}

type cacheEntry struct {
	id string
	st *domain.Tenant
}

func newTenantCache(max int) *tenantCache {
	return &tenantCache{max: max, ll: list.New(), items: map[string]*list.Element{}}
}

func (c *tenantCache) get(id string) *domain.Tenant {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.items[id]; el != nil {
		c.ll.MoveToFront(el)
		return el.Value.(*cacheEntry).st
	}
	return nil
}

// evict forgets id's state if it is st.
func (c *tenantCache) evict(id string, st *domain.Tenant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.items[id]; el != nil && el.Value.(*cacheEntry).st == st {
		c.ll.Remove(el)
		delete(c.items, id)
	}
}

func (c *tenantCache) put(id string, st *domain.Tenant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.items[id]; el != nil {
		el.Value.(*cacheEntry).st = st
		c.ll.MoveToFront(el)
		return
	}
	c.items[id] = c.ll.PushFront(&cacheEntry{id, st})
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*cacheEntry).id)
	}
}
