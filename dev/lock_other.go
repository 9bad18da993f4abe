//go:build !unix

package main

// lockDataDir does nothing where there is no flock; keep to one dev stack per data folder there.
func lockDataDir(string) (unlock func() error, err error) {
	return func() error { return nil }, nil
}
