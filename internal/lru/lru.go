// Package lru provides a bounded least-recently-used cache.
//
// A Cache is not safe for concurrent use: a caller shared between
// goroutines guards it with its own lock.
package lru

import "container/list"

// Cache keeps at most Max values; putting one more drops the value used
// least recently (by Get or Put; Peek does not count as a use).
type Cache[K comparable, V any] struct {
	max   int
	ll    *list.List // front: most recently used
	items map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// New returns an empty cache of at most max values (max <= 0 keeps none).
func New[K comparable, V any](max int) *Cache[K, V] {
	return &Cache[K, V]{max: max, ll: list.New(), items: map[K]*list.Element{}}
}

// Get returns the value of key and marks it used.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	if el := c.items[key]; el != nil {
		c.ll.MoveToFront(el)
		return el.Value.(*entry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// Peek returns the value of key without marking it used.
func (c *Cache[K, V]) Peek(key K) (V, bool) {
	if el := c.items[key]; el != nil {
		return el.Value.(*entry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// Put sets the value of key, marks it used, and drops the least recently
// used values beyond the bound.
func (c *Cache[K, V]) Put(key K, val V) {
	if el := c.items[key]; el != nil {
		el.Value.(*entry[K, V]).val = val
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&entry[K, V]{key, val})
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*entry[K, V]).key)
	}
}

// Remove forgets key.
func (c *Cache[K, V]) Remove(key K) {
	if el := c.items[key]; el != nil {
		c.ll.Remove(el)
		delete(c.items, key)
	}
}

// Len is the number of values kept.
func (c *Cache[K, V]) Len() int { return c.ll.Len() }
