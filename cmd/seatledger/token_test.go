package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
)

func TestTokenRefusesExtraArguments(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"token", "--tenant", "contoso", "--user", "admin", "--secret", strings.Repeat("s", 32), "admin2"}, &out, &errb)
	if code != 2 || out.Len() != 0 || !strings.Contains(errb.String(), "admin2") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

// A secret serve refuses (shorter than minJWTSecret) signs no token any
// server accepts: token says so instead of printing one.
func TestTokenRefusesASecretServeRefuses(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"token", "--tenant", "contoso", "--user", "admin", "--secret", "tiny"}, &out, &errb)
	if code != 2 || out.Len() != 0 || !strings.Contains(errb.String(), "--secret") || strings.Contains(errb.String(), "tiny") {
		t.Fatalf("--secret tiny: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	t.Setenv(envJWTSecret, "short")
	out.Reset()
	errb.Reset()
	code = run(context.Background(), []string{"token", "--tenant", "contoso", "--user", "admin"}, &out, &errb)
	if code != 2 || out.Len() != 0 || !strings.Contains(errb.String(), envJWTSecret) {
		t.Fatalf("%s=short: exit %d, stdout %q, stderr %q", envJWTSecret, code, out.String(), errb.String())
	}
}

// serve reads SEATLEDGER_JWT_SECRET without the white space around it (a
// secret read from a file ends in a newline); token must sign with the same
// secret, or the server answers 401 to every token it prints.
func TestTokenReadsTheSecretVariableAsServeDoes(t *testing.T) {
	secret := "0123456789abcdef-secret"
	t.Setenv(envJWTSecret, secret+"\n")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg, err := loadServeConfig(nil, os.Getenv, fs)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.JWTSecret != secret {
		t.Fatalf("serve reads %q", cfg.JWTSecret)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"token", "--tenant", "contoso", "--user", "admin", "--data-dir", t.TempDir()}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	parts := strings.Split(strings.TrimSpace(out.String()), ".")
	if len(parts) != 3 {
		t.Fatalf("token %q", out.String())
	}
	m := hmac.New(sha256.New, []byte(cfg.JWTSecret))
	m.Write([]byte(parts[0] + "." + parts[1]))
	if base64.RawURLEncoding.EncodeToString(m.Sum(nil)) != parts[2] {
		t.Fatal("the token is not signed with the secret serve uses")
	}
}

// The operator tools send the operator token as serve reads it.
func TestOperatorToolsReadTheTokenVariableAsServeDoes(t *testing.T) {
	token := strings.Repeat("t", 40)
	t.Setenv(envOperatorToken, " "+token+"\n")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	client := clientFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	c, err := client()
	if err != nil {
		t.Fatal(err)
	}
	if c.token != token {
		t.Fatalf("the tools send %q", c.token)
	}
}
