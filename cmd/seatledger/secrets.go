package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// devSecretsFile is where a development server keeps the JWT secret and
// operator token it generated, so restarts keep accepting the same tokens.
const devSecretsFile = "dev-secrets.json"

// devSecrets are generated at first start when none are configured. They
// are for development only.
type devSecrets struct {
	JWTSecret     string `json:"jwtSecret"`
	OperatorToken string `json:"operatorToken"`
}

func randomSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// readDevSecrets reads dataDir/dev-secrets.json; ok is false if it does not
// exist.
func readDevSecrets(dataDir string) (devSecrets, bool, error) {
	var s devSecrets
	b, err := os.ReadFile(filepath.Join(dataDir, devSecretsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, false, nil
	}
	if err != nil {
		return s, false, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, false, fmt.Errorf("%s: %w", filepath.Join(dataDir, devSecretsFile), err)
	}
	return s, true, nil
}

// loadOrCreateDevSecrets returns the dev secrets of dataDir, generating and
// saving (mode 0600) the missing ones. fresh holds only the values generated
// by this call (empty fields: none generated): they are the only ones a
// server prints, once, so that the secrets do not reach every start's log.
func loadOrCreateDevSecrets(dataDir string) (s, fresh devSecrets, err error) {
	s, _, err = readDevSecrets(dataDir)
	if err != nil {
		return s, fresh, err
	}
	if s.JWTSecret == "" {
		if s.JWTSecret, err = randomSecret(); err != nil {
			return s, fresh, err
		}
		fresh.JWTSecret = s.JWTSecret
	}
	if s.OperatorToken == "" {
		if s.OperatorToken, err = randomSecret(); err != nil {
			return s, fresh, err
		}
		fresh.OperatorToken = s.OperatorToken
	}
	if fresh == (devSecrets{}) {
		return s, fresh, nil
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return s, devSecrets{}, err
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	path := filepath.Join(dataDir, devSecretsFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return s, devSecrets{}, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return s, devSecrets{}, err
	}
	return s, fresh, nil
}
