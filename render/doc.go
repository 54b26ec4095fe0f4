// Package render turns a tenant's state into the writes of its Redis read
// models: which rows an event touched (Touched), the rows themselves from
// the domain's views (Renderer, onto a Sink), the write-op format of the
// Redis scripts (ScriptSink, lua/), and the same flush in Go for the
// in-process Redis (ServeFlushNatively). The live projector (projections)
// and the rebuild tools (rebuild) both write through it; Verify renders
// into a MapSink to compare with what Redis holds.
//
// The key layout and the rows are readmodel's (docs/READMODELS.md).
package render
