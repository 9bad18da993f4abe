package workerapp

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/activities"
	"github.com/connectflow/connectflow/workflows"
)

func TestNewBuildsAWorkerWithoutCallingOut(t *testing.T) {
	c, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := goodConfig(t)
	cfg.Connect.OrgKey = testKey(t)
	var logs bytes.Buffer
	w, err := New(c, cfg, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil || w == nil {
		t.Fatalf("New = %v, %v", w, err)
	}
	for _, s := range secrets() {
		if strings.Contains(logs.String(), s) {
			t.Fatalf("log quotes secret %q: %s", s, logs.String())
		}
	}
	if !strings.Contains(logs.String(), `"connect_request_signing":true`) {
		t.Fatalf("log does not say requests are signed: %s", logs.String())
	}
	// The SDK refuses a second registration of a name, so each refusal proves New registered it.
	for name, register := range map[string]func(){
		"TransferWorkflow":   func() { w.RegisterWorkflow(workflows.TransferWorkflow) },
		"OnboardingWorkflow": func() { w.RegisterWorkflow(workflows.OnboardingWorkflow) },
		"activities":         func() { w.RegisterActivity(&activities.Activities{}) },
	} {
		if !panics(register) {
			t.Errorf("%s was not registered by New", name)
		}
	}
	cfg.Connect.ClientID = ""
	if _, err := New(c, cfg, nil); err == nil || !strings.Contains(err.Error(), EnvConnectClientID) {
		t.Fatalf("New with a bad config = %v, want an error naming %s", err, EnvConnectClientID)
	}
}

func panics(f func()) (did bool) {
	defer func() { did = recover() != nil }()
	f()
	return false
}
