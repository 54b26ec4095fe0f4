package main

import (
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
)

// devInUse is what a server uses of its data directory's dev secrets.
type devInUse struct {
	file          string     // where they are kept
	jwt, operator bool       // which of the two come from the file
	fresh         devSecrets // the ones in use that this start generated
}

// banner is what the start-up banner tells.
type banner struct {
	Addr, DataDir string
	Dev           *devInUse // nil: both secrets are configured
	// Self is the command that runs this binary again, as the user started
	// it (selfCommand).
	Self string
	// ContosoExists leaves out the example's tenant creation.
	ContosoExists bool
}

// operatorTokenLine is the shell line that reads the operator token from
// a dev-secrets.json file (docs/QUICKSTART.md has the same line for ./data).
func operatorTokenLine(file string) string {
	return `export OP=$(sed -n 's/.*"operatorToken": "\(.*\)".*/\1/p' ` + shellQuote(file) + `)`
}

// printBanner prints the web console's address (first: where a newcomer
// starts), where the server listens, the development secrets
// when this start generated them (else only where they are kept), and
// example commands that work as printed, in another terminal in the
// directory the server was started in.
func printBanner(w io.Writer, b banner) {
	base := "http://" + b.Addr
	// The console first: it is where a newcomer starts.
	fmt.Fprintf(w, "Web console: %s/ (open it in a browser)\n", base)
	if d := b.Dev; d != nil && d.jwt && d.operator && loopbackAddr(b.Addr) { // as devSignIn
		fmt.Fprintf(w, "  On these development secrets one click signs you in: as the operator to create a\n  tenant, then as its Global admin to buy subscriptions and assign licenses.\n")
	} else {
		fmt.Fprintf(w, "  Sign in with a user's token of a tenant, or the operator token.\n")
	}
	fmt.Fprintf(w, "seatledger listening on %s\n", base)
	if d := b.Dev; d != nil {
		if d.fresh != (devSecrets{}) {
			fmt.Fprintf(w, "\nDEVELOPMENT SECRETS, generated now and kept in %s (mode 0600); printed this once:\n", d.file)
			if d.fresh.JWTSecret != "" {
				fmt.Fprintf(w, "  %s=%s\n", envJWTSecret, d.fresh.JWTSecret)
			}
			if d.fresh.OperatorToken != "" {
				fmt.Fprintf(w, "  %s=%s\n", envOperatorToken, d.fresh.OperatorToken)
			}
		} else {
			fmt.Fprintf(w, "\nDevelopment secrets: kept in %s (mode 0600).\n", d.file)
		}
		fmt.Fprintf(w, "For production, set %s and %s.\n", envJWTSecret, envOperatorToken)
	}

	fmt.Fprintf(w, "\nTry, in another terminal in this directory:\n")
	if !b.ContosoExists {
		if b.Dev != nil && b.Dev.operator {
			fmt.Fprintf(w, "  %s\n", operatorTokenLine(b.Dev.file))
		} else {
			fmt.Fprintf(w, "  export OP=\"$%s\"\n", envOperatorToken)
		}
		fmt.Fprintf(w, `  curl -s -X POST %s/v1/tenants -H "Authorization: Bearer $OP" -H 'Content-Type: application/json' \
    -d '{"id":"contoso","name":"Contoso","globalAdmin":{"id":"admin","userPrincipalName":"admin@contoso.example","usageLocation":"US"}}'
`, base)
	}
	token := b.Self + " token --tenant contoso --user admin"
	if b.Dev != nil && b.Dev.jwt && filepath.Clean(b.DataDir) != "data" {
		token += " --data-dir " + shellQuote(b.DataDir)
	}
	fmt.Fprintf(w, "  export TOKEN=$(%s)\n", token)
	// minVersion=1: the read model has the tenant (the query waits for it).
	fmt.Fprintf(w, "  curl -s \"%s/v1/tenants/contoso/licenses?minVersion=1\" -H \"Authorization: Bearer $TOKEN\"\n", base)
	fmt.Fprintf(w, "See docs/QUICKSTART.md for a whole session.\n")
}

// selfCommand is the command that runs this binary again as the user
// started it, given os.Args[0]: `go run ./cmd/seatledger` for a binary `go
// run` built (it lives in a go-build temporary directory and is gone when
// go run ends), else the path or name it was started by.
func selfCommand(arg0 string) string {
	if strings.Contains(filepath.ToSlash(arg0), "/go-build") {
		return "go run ./cmd/seatledger"
	}
	return shellQuote(arg0)
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:@%+=,-]+$`)

// shellQuote quotes s for sh when it needs quoting.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
