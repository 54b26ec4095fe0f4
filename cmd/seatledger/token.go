package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
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
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if !domain.ValidID(*tenant) || !domain.ValidID(*user) {
		fmt.Fprintln(stderr, "seatledger token: --tenant and --user are required ids ([A-Za-z0-9._@-], 1 to 128 characters)")
		return 2
	}
	if *ttl <= 0 {
		fmt.Fprintln(stderr, "seatledger token: --ttl must be positive")
		return 2
	}
	key := *secret
	if key == "" {
		key = os.Getenv(envJWTSecret)
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
		key = s.JWTSecret
	}
	tok, err := api.NewToken([]byte(key), *tenant, *user, *ttl, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, "seatledger token:", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
