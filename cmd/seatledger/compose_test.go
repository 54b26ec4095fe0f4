package main

import (
	"os"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// TestComposeSetsOnlyVariablesSeatledgerReads parses docker/docker-compose.yml
// and checks that every SEATLEDGER_ variable it gives a seatledger service is
// one seatledger reads (the configuration table), and that the services
// seatledger needs are there.
func TestComposeSetsOnlyVariablesSeatledgerReads(t *testing.T) {
	raw, err := os.ReadFile("../../docker/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
			Command     []string          `yaml:"command"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
	}
	if err := yaml.UnmarshalWithOptions(raw, &doc, yaml.Strict()); err != nil {
		// Strict fails on fields this test does not model; parse leniently
		// then, the point is the environment.
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("docker-compose.yml does not parse: %v", err)
		}
	}
	known := map[string]bool{}
	for _, v := range envVars {
		known[v.Name] = true
	}
	nodes := 0
	for name, svc := range doc.Services {
		if !strings.HasPrefix(name, "seatledger") {
			continue
		}
		nodes++
		if len(svc.Environment) == 0 {
			t.Fatalf("service %s sets no environment (the merge of the x-seatledger anchor failed?)", name)
		}
		for k := range svc.Environment {
			if !known[k] {
				t.Errorf("service %s sets %s, which seatledger does not read", name, k)
			}
		}
		for _, must := range []string{envEventStore, envRedisURL, envJWTSecret, envOperatorToken, envNodeID, envAddr} {
			if svc.Environment[must] == "" {
				t.Errorf("service %s does not set %s", name, must)
			}
		}
		if !strings.HasPrefix(svc.Environment[envEventStore], "kurrentdb://") {
			t.Errorf("service %s: %s=%q is not a KurrentDB connection string", name, envEventStore, svc.Environment[envEventStore])
		}
	}
	if nodes < 2 {
		t.Fatalf("%d seatledger nodes, want at least 2", nodes)
	}
	for _, want := range []string{"kurrentdb", "redis", "caddy"} {
		if _, ok := doc.Services[want]; !ok {
			t.Errorf("no %s service", want)
		}
	}
	if doc.Services["kurrentdb"].Environment["KURRENTDB_INSECURE"] != "true" {
		t.Error("the dev KurrentDB is expected in insecure mode (documented as such)")
	}
	if !strings.Contains(strings.Join(doc.Services["redis"].Command, " "), "--appendonly yes") {
		t.Error("Redis runs without persistence")
	}
	if len(doc.Services["caddy"].Ports) != 1 {
		t.Error("the balancer publishes one port")
	}
}
