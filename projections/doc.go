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
// Why Watermill: the live projector is a Watermill router with one consumer
// handler. The router gives it what it would otherwise hand-write and test
// again: the retry middleware with backoff for a failing event, panic
// recovery, Ack/Nack redelivery, and an orderly close. Its price is that
// events reach the handler as messages: Subscriber packs a batch of the
// store's log into one message payload and the handler decodes it in the
// same process (DecodeBatch). The bulk pass of a replay (package rebuild)
// does not go through Watermill: it reads the log in large batches itself.
// Between nodes, Watermill on Redis Streams carries the scheduler's purge commands.
//
// Jobs, one file each: projector.go (the run loop, staging, flushing),
// manager.go (the supervisor serve runs), subscriber.go (the store's log as
// Watermill messages), metrics.go, redis.go (OpenRedis, the in-process
// Redis). The renderer (state to read-model writes) and the Redis scripts
// are package render's; the rebuild tools (Replay, Tenant, Verify) are
// package rebuild's, which runs this projector as a replay's tail without
// importing it; the prefix tools (list, dump, compare, delete the keys of
// a prefix) are readmodel's.
//
// The key layout and the rows written under it are the readmodel package's
// (see docs/READMODELS.md): this package writes through it, and queries and
// the scheduler read through it without importing this package.
package projections
