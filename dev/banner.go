package main

import (
	"cmp"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/codec"
	"github.com/connectflow/connectflow/internal/bridgeapp"
	"github.com/connectflow/connectflow/workflows"
)

// Labels of the banner's rows; tests find addresses by them.
const (
	rowTemporal = "Temporal"
	rowUI       = "Temporal UI"
	rowData     = "Data"
	rowSandbox  = "Connect sandbox"
	rowBridge   = "Webhook bridge"
	rowMetrics  = "Worker metrics"
	rowCodec    = "Codec server"
	rowPlatform = "Demo platform"
	rowAPI      = "Transfer API"
)

// readyLine ends the banner: everything is up.
const readyLine = "Ready. Press Ctrl-C to stop."

// printBanner says where each part listens, the environment that points other processes at the stack (the
// sandbox's credentials appear only there: they guard nothing real), and what to try next.
func printBanner(w io.Writer, s *stack) error {
	var b strings.Builder
	writeParts(&b, s)
	writeEnv(&b, s)
	writeNext(&b, s)
	fmt.Fprintf(&b, "\n%s\n", readyLine)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeParts writes one row per running part: what it is and where it listens.
func writeParts(b *strings.Builder, s *stack) {
	row := func(label, value string) { fmt.Fprintf(b, "  %-17s %s\n", label, value) }
	if s.cfg.serverOnly {
		b.WriteString("connectflow dev: Temporal and its UI (-server-only)\n\n")
	} else {
		b.WriteString("connectflow dev: Temporal, its UI, the Connect sandbox, the worker and the webhook bridge\n\n")
	}
	row(rowTemporal, fmt.Sprintf("%s  (namespace %s, task queue %s)", s.server.FrontendAddr(), s.server.Namespace(), workflows.DefaultTaskQueue))
	row(rowUI, s.server.UIURL())
	if s.cfg.cluster.postgres != "" {
		row(rowData, dataDescription(s.cfg))
	} else if s.cfg.memory {
		row(rowData, dataDescription(s.cfg)+"  (-memory)")
	} else {
		row(rowData, dataDescription(s.cfg)+"  (kept across restarts; -memory keeps nothing)")
	}
	if s.codecURL != "" {
		// The token is made for this run and guards only this machine's dev data; the user needs it to sign in.
		row(rowCodec, fmt.Sprintf("%s  (the UI decrypts payloads through it: sign the browser in at %s%s with token %s)",
			s.codecURL, s.codecURL, codec.LoginPath, s.codecToken))
	}
	if !s.cfg.serverOnly {
		row(rowSandbox, fmt.Sprintf("%s  (%s; control API under /sandbox/)", s.sandbox.URL, playDescription(s.cfg)))
		row(rowBridge, fmt.Sprintf("%s  (takes the sandbox's webhooks at %s and %s)", s.bridgeURL,
			bridge.PathConnectDeposits, bridge.PathConnectWithdrawals))
		row(rowMetrics, s.metricsURL)
		row(rowAPI, fmt.Sprintf("%s  (starter serve; bearer token %s, caller %q with the operator role)", s.apiURL, s.apiToken, devTokenName))
		row(rowPlatform, fmt.Sprintf("%s  (verifies the worker's notifications at %s; ledger at %s, faults via POST %s)",
			s.platformURL, platformWebhookPath, platformLedgerPath, platformFaultsPath))
	}
}

// writeEnv writes the environment as "# binaries" blocks of KEY=value lines, ready to paste into a shell or a
// .env file. Encryption keys are the user's own: they are named, never printed.
func writeEnv(b *strings.Builder, s *stack) {
	if s.cfg.serverOnly {
		b.WriteString("\nEnvironment that points the starter, worker and webhookbridge at this Temporal:\n")
	} else {
		b.WriteString("\nEnvironment that points other processes at this stack (sandbox credentials only):\n")
	}
	for _, g := range s.env {
		fmt.Fprintf(b, "# %s\n", g.title)
		for _, v := range g.vars {
			fmt.Fprintf(b, "%s=%s\n", v.name, v.value)
		}
	}
	if len(s.cfg.codecKeys) > 0 && s.devCodecKeys == "" {
		fmt.Fprintf(b, "(and %s as set in this shell: payloads are encrypted, so every process needs the same keys)\n", codec.EnvKeys)
	}
}

// writeNext says what to run next: the other parts with -server-only, else a transfer of the user's own.
func writeNext(b *strings.Builder, s *stack) {
	if s.cfg.serverOnly {
		bridgeAddr := hostPort(dialHost(s.cfg.ip), cmp.Or(s.cfg.bridgePort, defaultBridgePort))
		hooks := "http://" + bridgeAddr
		b.WriteString("\nRun the other parts as their own processes, each in a terminal with the lines above in its environment:\n")
		fmt.Fprintf(b, "  go run ./sandbox -outcome confirmed -deposit-webhook-url %s%s -withdrawal-webhook-url %s%s -balance-webhook-url %s%s\n",
			hooks, bridge.PathConnectDeposits, hooks, bridge.PathConnectWithdrawals, hooks, bridge.PathZeroHashBalances)
		b.WriteString("      it prints the Connect and Zero Hash variables the worker and the bridge need\n")
		b.WriteString("  go run ./worker\n")
		fmt.Fprintf(b, "  %s=%s %s=%s go run ./webhookbridge\n", bridgeapp.EnvAddr, bridgeAddr, bridgeapp.EnvPublicURL, hooks)
		return
	}
	b.WriteString("\nTry it from another terminal:\n")
	b.WriteString("  go run ./starter deposit -transfer-id my-1 -reference-id my-user\n")
	fmt.Fprintf(b, "  curl -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"transfer_id\":\"my-2\",\"reference_id\":\"my-user-2\"}' %s/v1/deposits\n",
		s.apiToken, s.apiURL)
	fmt.Fprintf(b, "  curl %s/sandbox/sessions\n", s.sandbox.URL)
	fmt.Fprintf(b, "  curl -X POST %s/sandbox/sessions/SESSION_ID/play -d '{\"outcome\":\"failed\",\"duplicates\":2,\"shuffle\":true}'\n",
		s.sandbox.URL)
	b.WriteString("      plays a session's webhooks on demand (outcome confirmed, failed, unexpected or none; also late, delay_ms);\n")
	b.WriteString("      start with -outcome manual so the sandbox plays nothing by itself\n")
}

// dataDescription says where Temporal keeps its data.
func dataDescription(c config) string {
	if c.memory {
		return "in memory: nothing is kept after Ctrl-C"
	}
	if c.cluster.postgres != "" {
		return c.cluster.description()
	}
	path := c.databaseFile()
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return path
}

// playDescription says how the sandbox plays new sessions.
func playDescription(c config) string {
	if c.outcome == outcomeManual {
		return "plays sessions only when asked"
	}
	return fmt.Sprintf("plays each new session by itself: %s, a webhook every %v", c.outcome, c.pace)
}
