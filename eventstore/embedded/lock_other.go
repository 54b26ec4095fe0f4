//go:build !unix

package embedded

import "os"

// lockDir relies on Pebble's own LOCK file on platforms without flock.
func lockDir(dir string) (*os.File, error) { return nil, nil }

func unlockDir(f *os.File) error { return nil }
