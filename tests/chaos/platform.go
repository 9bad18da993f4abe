package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/connectflow/connectflow/platformhook"
	"github.com/connectflow/connectflow/platformhook/platformtest"
	"github.com/connectflow/connectflow/workflows"
)

const (
	// platformFailShare of notification deliveries the platform answers 500.
	platformFailShare  = 0.3
	kindPlatformSecret = "platform webhook secret"
	checkPlatform      = "final outcomes not in the platform's ledger exactly once, or credited twice"
)

// platform is the platform backend the workers notify: it verifies every notification, applies each webhook-id
// once, fails 30% of deliveries at random, and is down for a while mid-run.
type platform struct {
	r      *platformtest.Receiver
	srv    *http.Server
	url    string
	secret string
}

func startPlatform(seed uint64) (*platform, error) {
	secret := platformhook.NewSecret()
	secrets, err := platformhook.ParseSecrets(secret)
	if err != nil {
		return nil, err
	}
	r := platformtest.New(secrets)
	rnd := rand.New(rand.NewPCG(seed, 0x9e3779b9))
	var mu sync.Mutex
	r.FailRandomly(platformFailShare, func() float64 { mu.Lock(); defer mu.Unlock(); return rnd.Float64() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("platform: %w", err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &platform{r: r, srv: srv, url: "http://" + ln.Addr().String() + "/webhooks/connectflow", secret: secret}, nil
}

// env points a worker at the platform.
func (p *platform) env() []string {
	return []string{"PLATFORM_WEBHOOK_URL=" + p.url, "PLATFORM_WEBHOOK_SECRET=" + p.secret}
}

// outage takes the platform down for d after wait, unless ctx ends first.
func (p *platform) outage(ctx context.Context, wait, d time.Duration) {
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		return
	}
	p.r.SetDown(true)
	defer p.r.SetDown(false)
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

func (p *platform) close() { _ = p.srv.Close() }

// waitPlatform waits until no transfer still waits for the platform to acknowledge its final notification.
func waitPlatform(ctx context.Context, tc client.Client, say func(string, ...any)) error {
	last := time.Now()
	for {
		resp, err := tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: namespace,
			Query: workflows.QueryPlatformPending + " AND ExecutionStatus = 'Running'"})
		if err == nil && resp.GetCount() == 0 {
			return nil
		}
		if time.Since(last) > 15*time.Second {
			say("%d transfers waiting for the platform to acknowledge (%v)", resp.GetCount(), err)
			last = time.Now()
		}
		if !sleep(ctx, time.Second) {
			return errors.New("transfers still waiting for the platform when the settle time ran out")
		}
	}
}

// checkPlatformLedger: every closed transfer's final outcome is in the platform's ledger exactly once, each
// transfer's notifications in sequence, no deposit credited twice, and no notification refused as forged or out
// of order.
func checkPlatformLedger(ev evidence) *check {
	c := &check{name: checkPlatform}
	byWorkflow := map[string][]platformtest.Entry{}
	for _, e := range ev.platform {
		byWorkflow[e.Message.Data.WorkflowID] = append(byWorkflow[e.Message.Data.WorkflowID], e)
	}
	for _, d := range ev.transfers {
		wid := d.plan.workflowID()
		rec, ok := ev.records[wid]
		if !ok {
			continue // lost: the transfer checks report it
		}
		c.examined++
		entries := byWorkflow[wid]
		finals, credits := 0, 0
		for i, e := range entries {
			if e.Message.Data.Sequence != i+1 {
				c.fail("%s: notification %d of the ledger has sequence %d", wid, i+1, e.Message.Data.Sequence)
			}
			if e.Message.Type == string(d.plan.Kind)+"."+string(rec.status) {
				finals++
			}
			if e.Action == "credit" {
				credits++
			}
		}
		switch {
		case credits > 1:
			c.fail("%s: credited %d times", wid, credits)
		case !rec.running && finals != 1:
			c.fail("%s: final outcome %s in the platform's ledger %d times", wid, rec.status, finals)
		}
	}
	for _, why := range ev.platformRejected {
		c.fail("platform refused a notification: %s", why)
	}
	return c
}
