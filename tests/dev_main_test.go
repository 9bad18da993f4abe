package tests

import (
	"os"
	"testing"

	"github.com/connectflow/connectflow/internal/cmdtest"
)

// TestMain removes the binaries cmdtest built (the dev command's alone is over 200 MB) once every test has run.
func TestMain(m *testing.M) {
	code := m.Run()
	cmdtest.Cleanup()
	os.Exit(code)
}
