// Command webhookbridge serves connectflow's webhook bridge: verified Connect and Zero Hash webhooks, and relayed
// Auth SDK callbacks, become signals on the transfer workflows. Settings come from flags or the environment
// (webhookbridge -h lists them); a missing or malformed one stops it with exit status 2. The process is assembled
// by internal/bridgeapp, as `go run ./dev` and `go run ./bench` assemble theirs.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/connectflow/connectflow/internal/bridgeapp"
	"github.com/connectflow/connectflow/internal/cmdmain"
	"github.com/connectflow/connectflow/internal/settings"
)

// process serves until SIGINT or SIGTERM; exit status 0, 1 on a failure, 2 on bad settings.
var process = cmdmain.Command[*bridgeapp.Settings]{
	Name:   "webhookbridge",
	Load:   bridgeapp.LoadSettings,
	Common: func(st *bridgeapp.Settings) (*settings.Temporal, slog.Level) { return st.Temporal, st.LogLevel },
	Run:    bridgeapp.Run,
}

func main() {
	os.Exit(cmdmain.Main(context.Background(), process, os.Args[1:], settings.OSEnv, os.Stderr))
}
