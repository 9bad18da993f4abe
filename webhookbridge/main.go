// Command webhookbridge serves connectflow's webhook bridge: verified Connect and Zero Hash webhooks, and relayed
// Auth SDK callbacks, become signals on the transfer workflows. Settings come from flags or the environment
// (webhookbridge -h lists them); a missing or malformed one stops it with exit status 2, a failure with 1. The
// process is assembled by internal/bridgeapp, as `go run ./dev` and `go run ./bench` assemble theirs, with the
// start-up every process shares (internal/cmdmain).
package main

import (
	"context"
	"os"

	"github.com/connectflow/connectflow/internal/bridgeapp"
	"github.com/connectflow/connectflow/internal/cmdmain"
	"github.com/connectflow/connectflow/internal/settings"
)

func main() {
	os.Exit(cmdmain.Main(context.Background(), cmdmain.Command[*bridgeapp.Settings]{Name: "webhookbridge", Service: "connectflow-bridge",
		Load: bridgeapp.LoadSettings, Run: bridgeapp.Run}, os.Args[1:], settings.OSEnv, os.Stderr))
}
