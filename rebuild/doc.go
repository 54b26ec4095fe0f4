// Package rebuild holds the rebuild tools of the Redis read models, each an
// entry point of its own: Replay (every tenant into a fresh prefix, then
// the swap of the active prefix; replay.go, bulk.go), Tenant (one tenant in
// place under the active prefix; rebuild.go) and Verify (the read models
// against the fold of the log; verify.go). The prefix tools (list, dump,
// compare, delete the keys of a prefix) are readmodel's.
//
// It renders through package render, as the live projector (projections)
// does, and does not import the live projector: Replay's tail, the live
// projector on the new prefix, is passed in (ReplayConfig.NewTail). So the
// projector's tests can check it with Verify.
package rebuild
