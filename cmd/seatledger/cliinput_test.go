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
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), envPurgeRate) {
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
		_, err := loadServeConfig([]string{"--addr", addr}, func(string) string { return "" }, fs)
		var ce *configError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), envAddr) {
			t.Errorf("--addr %s: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", ":8080", "[::1]:8080", "localhost:http"} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		if _, err := loadServeConfig([]string{"--addr", addr}, func(string) string { return "" }, fs); err != nil {
			t.Errorf("--addr %s: %v", addr, err)
		}
	}
}
