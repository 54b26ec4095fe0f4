// Command seatledger is the one binary of seatledger: the HTTP server and
// its operator tools. The subcommands are listed in subcommands, each run by
// a function in its own file; `seatledger help` lists them.
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
	Summary string // one line for `seatledger help`
	// Run executes the subcommand; it returns the process exit code (0 ok,
	// 1 failure, 2 usage or configuration error).
	Run func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// subcommands are the verbs of the binary, by name (`seatledger help`
// sorts them). A new one gets a line here and its run function in a file of
// its own.
var subcommands = map[string]subcommand{
	// The server (serve.go).
	"serve": {Summary: "run the HTTP server (embedded event store and in-process Redis by default)", Run: runServe},

	// A tenant's past, read from a running server (tools.go).
	"audit": {Summary: "print a tenant's audit log (filters; table or JSON lines) from a running server", Run: runAudit},
	"state": {Summary: "print a tenant's whole state as it was at a time or version", Run: runState},
	"diff":  {Summary: "print what changed in a tenant between two times or versions", Run: runDiff},

	// The read models of a running server (tools.go).
	"verify": {Summary: "fold every tenant from the event store and compare with the Redis read models (exit 1 on a difference)", Run: runVerify},
	"replay": {Summary: "rebuild every read model into a fresh key prefix and swap to it (--tenant T: one tenant in place)", Run: runReplay},

	// Running and trying a server (tools.go, token.go, bench.go).
	"healthcheck": {Summary: "exit 0 when the server at " + envAddr + " answers /healthz (container health checks)", Run: runHealthcheck},
	"token":       {Summary: "print a bearer token (JWT) for a user of a tenant", Run: runToken},
	"bench":       {Summary: "measure HTTP command throughput and latency (and the raw store append rate) on this machine", Run: runBench},
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
			c, ok := subcommands[args[1]]
			if !ok {
				fmt.Fprintf(stderr, "seatledger help: unknown subcommand %q\n\n", args[1])
				usage(stderr)
				return 2
			}
			return c.Run(ctx, []string{"--help"}, stdout, stderr)
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
