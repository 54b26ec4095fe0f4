package render

import (
	"embed"
	"strings"
)

// The Redis scripts the projector, replay and rebuild run, one file each in
// lua/. A line "-- ops.lua" in a script stands for lua/ops.lua, the loop
// that applies a tenant's write ops (shared by apply, flush and rebuild).
//
//go:embed lua/*.lua
var luaFiles embed.FS

// ApplyScript writes one tenant's changes and its applied version, unless
// the tenant already applied that version (re-delivery: no-op). The
// changes are a diff from the state at a base version (the users list's
// indexes are written as entries added and removed): if the tenant's read
// model is at another version below the new one, nothing is written and
// the script fails with "SLBASE <its version>" (see BaseError).
// KEYS[1] = the tenant's meta hash; ARGV[1] = version, ARGV[2] = base;
// then ops (lua/ops.lua, docs/READMODELS.md): hs k field value |
// hd k field | za k score member | zr k member (k = index into KEYS), the
// same of c items in one command (hs* k c field value ..., hd*, za*, zr*),
// and each prefixed '>' without k: on the key after the last op's (1 before
// the first), with >z0 member (ZADD scored 0), and >z0= and >zr= (ZADD
// scored 0, ZREM) of the last op's field or member where that op was a '>'
// op of one item. A script that runs the ops declares ix, their cache of
// parsed numbers, and call, KEYS, ARGV, tonumber and unpack as locals.
var ApplyScript = Script("apply.lua")

// FlushScript is a whole flush in one call (one Redis node): for each
// tenant what ApplyScript does, and its id added to the tenant set (unless
// the id is empty: the projection added it before), then
// the checkpoint moved forward. A failing op aborts the script before the
// checkpoint moves. Before any write, every tenant's version is checked as
// ApplyScript checks it: if one is off its base, nothing is written and the
// script fails with "SLBASE <place> <version> ..." (each such tenant's
// 1-based place in the flush and its version; see BaseError). KEYS: every
// tenant's keys, one tenant after the other (its meta hash first), then
// the tenant set and the checkpoint key. ARGV[1] = the checkpoint
// position, ARGV[2] = the number of tenants; then per tenant: its number
// of keys, version, base, id, number of op arguments, the ops (k indexes
// the tenant's own keys).
var FlushScript = Script("flush.lua")

// Script returns the script lua/name with lua/ops.lua in place of its
// "-- ops.lua" line. A missing file is a build mistake: it panics at init.
func Script(name string) string {
	src := mustReadLua(name)
	if name == "ops.lua" {
		return src
	}
	return strings.Replace(src, "-- ops.lua\n", mustReadLua("ops.lua"), 1)
}

func mustReadLua(name string) string {
	b, err := luaFiles.ReadFile("lua/" + name)
	if err != nil {
		panic("render: " + err.Error())
	}
	return string(b)
}
