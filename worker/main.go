// Command worker runs connectflow's Temporal worker: the transfer and onboarding workflows and their Connect and
// Zero Hash activities. Every setting comes from a flag or its environment variable; `worker -h` lists them.
// Exit status: 0 after SIGINT/SIGTERM, 1 when it cannot run, 2 for a missing or malformed setting. The process is
// assembled by internal/workerapp (LoadSettings, Run) with the start-up every process shares (internal/cmdmain).
package main

import (
	"context"
	"os"

	"github.com/connectflow/connectflow/internal/cmdmain"
	"github.com/connectflow/connectflow/internal/settings"
	"github.com/connectflow/connectflow/internal/workerapp"
)

func main() {
	os.Exit(cmdmain.Main(context.Background(), cmdmain.Command[*workerapp.Settings]{Name: "worker", Service: "connectflow-worker",
		Load: workerapp.LoadSettings, Run: workerapp.Run}, os.Args[1:], settings.OSEnv, os.Stderr))
}
