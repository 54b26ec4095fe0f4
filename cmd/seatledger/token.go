package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/domain"
)

func runToken(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seatledger token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tenant := fs.String("tenant", "", "tenant id (claim tid; required)")
	user := fs.String("user", "", "acting user id (claim sub; required)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the token")
	secret := fs.String("secret", "", "HS256 secret (default: "+envJWTSecret+", else the data directory's dev secret)")
	dataDir := fs.String("data-dir", envOr(envDataDir, "./data"), "data directory holding dev-secrets.json ("+envDataDir+")")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: seatledger token --tenant T --user U [--ttl 1h] [--secret S]")
		fmt.Fprintln(fs.Output(), "Prints a JWT for user U of tenant T; what U may do comes from the tenant's role events.")
		fs.PrintDefaults()
	}
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if !domain.ValidID(*tenant) || !domain.ValidID(*user) {
		fmt.Fprintln(stderr, "seatledger token: --tenant and --user are required ids ([A-Za-z0-9._@-], 1 to 128 characters)")
		return 2
	}
	if *ttl <= 0 {
		fmt.Fprintln(stderr, "seatledger token: --ttl must be positive")
		return 2
	}
	key, from := *secret, "--secret"
	if key == "" {
		key, from = getenv(envJWTSecret), envJWTSecret
	}
	if key == "" {
		s, ok, err := readDevSecrets(*dataDir)
		if err != nil {
			fmt.Fprintln(stderr, "seatledger token:", err)
			return 1
		}
		if !ok || s.JWTSecret == "" {
			fmt.Fprintf(stderr, "seatledger token: no secret: pass --secret, set %s, or start `seatledger serve` once to create %s/%s\n", envJWTSecret, *dataDir, devSecretsFile)
			return 2
		}
		key, from = s.JWTSecret, filepath.Join(*dataDir, devSecretsFile)
	}
	// serve refuses a shorter secret: no server would accept the token.
	if len(key) < minJWTSecret {
		fmt.Fprintf(stderr, "seatledger token: the secret of %s is shorter than %d characters, which serve refuses: use the server's %s\n", from, minJWTSecret, envJWTSecret)
		return 2
	}
	tok, err := api.NewToken([]byte(key), *tenant, *user, *ttl, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, "seatledger token:", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}

// getenv reads a variable as serve reads it (loadServeConfig's lookup):
// without the white space around it, so that a secret ending in a newline
// (a file's content) is the same secret to the tools as to the server.
func getenv(name string) string {
	v, _ := lookup(os.Getenv, name)
	return v
}

// envOr is the variable name as getenv reads it, else def.
func envOr(name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}
