package commands

import (
	"container/list"
	"context"
	"sync"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/tenantstream"
)

// load returns the tenant's state: from the cache, else from the newest
// snapshot and the events after it. fresh reports that it was read from
// the store by this call, so it is at least as new as the stream's head
// when the call began; a cached state may be behind it on a shared store
// (see atHead). The caller holds the tenant's lock.
func (h *Handler) load(ctx context.Context, tenantID string) (st *domain.Tenant, fresh bool, err error) {
	if st := h.cache.get(tenantID); st != nil {
		return st, !h.shared, nil
	}
	st, err = tenantstream.Fold(ctx, h.cfg.Store, h.cfg.Snapshots, h.cfg.Upcasters, tenantID, 0)
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
	return tenantstream.FoldFrom(ctx, h.cfg.Store, h.cfg.Upcasters, st, st.ID, 0)
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
