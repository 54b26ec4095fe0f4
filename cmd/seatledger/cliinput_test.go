package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

// Bad input on the command line is refused with exit code 2 and a message
// naming what to fix, not run or ignored.

func TestHelpOfAnUnknownSubcommandIsAUsageError(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"help", "frobnicate"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), `unknown subcommand "frobnicate"`) {
		t.Fatalf("help frobnicate: exit %d, stderr %q", code, errb.String())
	}
}

func TestServeRefusesAPurgeRateThatIsNotANumber(t *testing.T) {
	for _, args := range [][]string{{"--purge-rate", "NaN"}, {"--purge-rate", "+Inf"}} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		_, err := loadServeConfig(args, func(string) string { return "" }, fs)
		var ce *configError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "--purge-rate") {
			t.Errorf("%v: %v", args, err)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	_, err := loadServeConfig(nil, func(k string) string {
		if k == envPurgeRate {
			return "NaN"
		}
		return ""
	}, fs)
	var ce *configError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), envPurgeRate) {
		t.Errorf("%s=NaN: %v", envPurgeRate, err)
	}
}

// A port out of range is a configuration error (exit 2, naming the
// variable), not a failure to listen (exit 1).
func TestServeRefusesAPortOutOfRange(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:", "::1:8080"} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		_, err := loadServeConfig(nil, env(map[string]string{envAddr: addr}), fs)
		var ce *configError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), envAddr) {
			t.Errorf("%s=%s: %v", envAddr, addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", ":8080", "[::1]:8080", "localhost:http"} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		if _, err := loadServeConfig([]string{"--addr", addr}, func(string) string { return "" }, fs); err != nil {
			t.Errorf("--addr %s: %v", addr, err)
		}
	}
}

// An invalid value names what the user typed: the flag when a flag gave
// it, else the variable.
func TestServeConfigErrorsNameTheFlagOrTheVariable(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	_, err := loadServeConfig([]string{"--shutdown-timeout=-1s", "--log-format", "xml"}, func(string) string { return "" }, fs)
	if err == nil || !strings.Contains(err.Error(), "--shutdown-timeout") || !strings.Contains(err.Error(), "--log-format") {
		t.Fatalf("flags: %v", err)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	_, err = loadServeConfig(nil, func(k string) string {
		if k == envShutdownTimeout {
			return "-1s"
		}
		return ""
	}, fs)
	if err == nil || !strings.Contains(err.Error(), envShutdownTimeout) {
		t.Fatalf("variable: %v", err)
	}
	// Every flag of serve is one of a variable, which its help names.
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	if _, err := loadServeConfig(nil, func(string) string { return "" }, fs); err != nil {
		t.Fatal(err)
	}
	fs.VisitAll(func(f *flag.Flag) {
		if name, ok := flagVars[f.Name]; !ok || !strings.Contains(f.Usage, name) {
			t.Errorf("flag --%s: variable %q not in flagVars or not in its help %q", f.Name, name, f.Usage)
		}
	})
}
