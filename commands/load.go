package commands

import (
	"context"
	"sync"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/internal/lru"
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

// catchUp applies the events of tenantID's stream appended after
// st.Version. The tenant is named by the caller, not by st: a state
// decided on before the tenant's creation (a create that lost a race to
// another node's) has no id yet.
func (h *Handler) catchUp(ctx context.Context, st *domain.Tenant, tenantID string) error {
	return tenantstream.FoldFrom(ctx, h.cfg.Store, h.cfg.Upcasters, st, tenantID, 0)
}

// tenantCache is a bounded LRU of tenant states, safe for concurrent use.
type tenantCache struct {
	mu  sync.Mutex
	lru *lru.Cache[string, *domain.Tenant]
}

func newTenantCache(max int) *tenantCache {
	return &tenantCache{lru: lru.New[string, *domain.Tenant](max)}
}

func (c *tenantCache) get(id string) *domain.Tenant {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, _ := c.lru.Get(id)
	return st
}

// evict forgets id's state if it is st.
func (c *tenantCache) evict(id string, st *domain.Tenant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.lru.Peek(id); ok && cur == st {
		c.lru.Remove(id)
	}
}

func (c *tenantCache) put(id string, st *domain.Tenant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Put(id, st)
}
