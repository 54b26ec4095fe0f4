package queries

import "sync"

// highWater remembers, per tenant, the highest applied version this process
// has answered, so that a later answer is never older (monotonic reads per
// node). Memory is bounded: tenants live in two generations of at most max/2
// entries each; when the newer one is full, the older is dropped and the
// newer becomes the older. A tenant not answered for that long is forgotten,
// and only then can its next answer be older than a forgotten one.
type highWater struct {
	mu        sync.Mutex
	half      int
	cur, prev map[string]uint64
}

func newHighWater(limit int) *highWater {
	half := max(1, limit/2)
	return &highWater{half: half, cur: make(map[string]uint64), prev: map[string]uint64{}}
}

// get returns the highest version answered for tenant (0: none known).
func (h *highWater) get(tenant string) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v, ok := h.cur[tenant]; ok {
		return v
	}
	return h.prev[tenant]
}

// observe records that version of tenant was answered.
func (h *highWater) observe(tenant string, version uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.cur[tenant]
	if !ok {
		v = h.prev[tenant]
	}
	if version < v {
		version = v
	}
	if !ok && len(h.cur) >= h.half {
		h.prev, h.cur = h.cur, make(map[string]uint64, h.half)
	}
	h.cur[tenant] = version
}
