package projections

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

// luaScript returns the script lua/name with lua/ops.lua in place of its
// "-- ops.lua" line. A missing file is a build mistake: it panics at init.
func luaScript(name string) string {
	src := mustReadLua(name)
	if name == "ops.lua" {
		return src
	}
	return strings.Replace(src, "-- ops.lua\n", mustReadLua("ops.lua"), 1)
}

func mustReadLua(name string) string {
	b, err := luaFiles.ReadFile("lua/" + name)
	if err != nil {
		panic("projections: " + err.Error())
	}
	return string(b)
}
