// Package projections keeps seatledger's Redis read models up to date from
// the event store's global log.
//
// A Watermill router reads the log through Subscriber (ordered, at-least-once,
// resumable from a checkpoint Position). The projector folds each event into
// an in-memory domain.Tenant (a bounded LRU; a miss is folded from the store)
// and re-renders, from that state and with the domain's views, every read
// model entity the event touched. A tenant's changes and its applied version
// are written in one Lua call that does nothing when the tenant's applied
// version is already at or past the change: re-delivery is a no-op.
//
// The key layout and the rows written under it are the readmodel package's
// (see docs/READMODELS.md): this package writes through it, and queries and
// the scheduler read through it without importing this package.
package projections
