// Command seatledger is the one binary of seatledger: the HTTP server and
// its operator tools. Each subcommand lives in its own file and registers
// itself (see register); `seatledger help` lists them.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// subcommand is one verb of the binary.
type subcommand struct {
	Name    string
	Summary string // one line for `seatledger help`
	// Run executes the subcommand; it returns the process exit code (0 ok,
	// 1 failure, 2 usage or configuration error).
	Run func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// subcommands holds every subcommand by name. Add one from its own file:
//
//	func init() { register(subcommand{Name: "replay", Summary: "…", Run: runReplay}) }
//
// Room is kept for replay, state, audit, diff, verify and bench.
var subcommands = map[string]subcommand{}

func register(c subcommand) {
	if _, dup := subcommands[c.Name]; dup {
		panic("seatledger: subcommand registered twice: " + c.Name)
	}
	subcommands[c.Name] = c
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c, ok := subcommands[args[1]]; ok {
				return c.Run(ctx, []string{"--help"}, stdout, stderr)
			}
		}
		usage(stdout)
		return 0
	}
	c, ok := subcommands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "seatledger: unknown subcommand %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return c.Run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	names := make([]string, 0, len(subcommands))
	width := 0
	for n := range subcommands {
		names = append(names, n)
		width = max(width, len(n))
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("seatledger — event-sourced license management (Microsoft 365 admin center style)\n\n")
	b.WriteString("Usage:\n  seatledger <subcommand> [flags]\n  seatledger help [subcommand]\n\nSubcommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, n, subcommands[n].Summary)
	}
	b.WriteString("\nEnvironment (flags of `seatledger serve` override them):\n")
	for _, v := range envVars {
		fmt.Fprintf(&b, "  %-30s %s (default: %s)\n", v.Name, v.Help, v.Default)
	}
	b.WriteString("\nRun `seatledger <subcommand> --help` for the flags of a subcommand.\n")
	fmt.Fprint(w, b.String())
}
