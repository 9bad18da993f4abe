package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/connectflow/connectflow/bridge"
	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/workflows"
)

// attackEvery paces the attacker: one request per tick, cycling through its attacks, for the whole storm.
const attackEvery = 50 * time.Millisecond

// checkAttacker names the attacker's check in the report.
const checkAttacker = "attacker: no forged or flooding request was taken"

// Attacks, in the order the attacker cycles through them.
const (
	attackForgedWebhook = "forged_webhook" // a Connect webhook naming a planned transfer, signed by a key outside the JWKS
	attackUnknownKID    = "unknown_kid"    // an SDK relay whose session JWT names a kid no JWKS holds
	attackReplayBalance = "replay_balance" // a balance webhook the bridge took, sent again within its tolerance
	attackSDKFlood      = "sdk_flood"      // a real session JWT relaying an informational callback again and again
)

var attacks = []string{attackForgedWebhook, attackUnknownKID, attackReplayBalance, attackSDKFlood}

// attacker sends forged, replayed and flooding requests to the bridge at a steady rate while the storm runs. The
// suite's outcome checks then prove no transfer ended elsewhere and no real event was refused because of it; its
// own check proves no forged request was taken and no flood reached a workflow.
type attacker struct {
	bridgeURL string
	key       *rsa.PrivateKey
	driver    *driver
	send      *sender
	plan      plan
	hc        *http.Client

	mu      sync.Mutex
	answers map[string]map[string]int // attack -> "status outcome" -> count
	bad     []string                  // answers that mean the attack got through
	sent    int
}

func newAttacker(bridgeURL string, d *driver, send *sender, p plan) (*attacker, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return &attacker{bridgeURL: bridgeURL, key: key, driver: d, send: send, plan: p,
		hc: &http.Client{Timeout: 10 * time.Second}, answers: map[string]map[string]int{}}, nil
}

// run attacks until done closes or ctx ends.
func (a *attacker) run(ctx context.Context, done <-chan struct{}) {
	tick := time.NewTicker(attackEvery)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-tick.C:
		}
		a.attack(ctx, i, attacks[i%len(attacks)])
	}
}

func (a *attacker) attack(ctx context.Context, i int, kind string) {
	var (
		path   string
		body   []byte
		header = http.Header{}
	)
	switch kind {
	case attackForgedWebhook:
		if len(a.plan.Transfers) == 0 {
			return
		}
		tp := a.plan.Transfers[i%len(a.plan.Transfers)]
		path = bridge.PathConnectDeposits
		if tp.Kind == connect.KindWithdrawal {
			path = bridge.PathConnectWithdrawals
		}
		body = []byte(fmt.Sprintf(`{"event":"connect.%s.confirmed","event_id":"%s","%s":{"id":"forged-%d","status":"confirmed",`+
			`"asset":"BTC","network":"bitcoin","amount":"1000000"},"session":{"id":"forged","metadata":{"%s":"%s","%s":"%s"}}}`,
			tp.Kind, uuid.NewString(), tp.Kind, i, workflows.MetadataTransferID, tp.TransferID, workflows.MetadataKind, tp.Kind))
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		sig, err := connect.Sign(a.key, ts, http.MethodPost, a.bridgeURL+path, body)
		if err != nil {
			return
		}
		header.Set(connect.HeaderClientID, bridge.ConnectWebhookClientID)
		header.Set(connect.HeaderTimestamp, ts)
		header.Set(connect.HeaderSignature, sig)
	case attackUnknownKID:
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": bridge.ConnectIssuer,
			"iat": jwt.NewNumericDate(time.Now()), "exp": jwt.NewNumericDate(time.Now().Add(time.Hour)),
			"session": map[string]string{"id": "forged-session"}})
		tok.Header["kid"] = "forged-" + uuid.NewString()
		signed, err := tok.SignedString(a.key)
		if err != nil {
			return
		}
		path, body = bridge.PathSDKEvents, []byte(`{"type":"close"}`)
		header.Set("Authorization", "Bearer "+signed)
	case attackReplayBalance:
		c, ok := a.send.capturedCopy(i)
		if !ok {
			return
		}
		path, body, header = bridge.PathZeroHashBalances, c.body, c.header.Clone()
	case attackSDKFlood:
		_, jwtValue, ok := a.driver.openSession()
		if !ok {
			return
		}
		path, body = bridge.PathSDKEvents, []byte(`{"type":"event","detail":"flood"}`)
		header.Set("Authorization", "Bearer "+jwtValue)
	}
	header.Set("Content-Type", "application/json")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.bridgeURL+path, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header = header
	status, outcome := 0, "no_answer" // the bridge restarting, say: nothing was taken
	if resp, err := a.hc.Do(req); err == nil {
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		status, outcome = resp.StatusCode, answerOutcome(answer)
	}
	a.record(kind, status, outcome)
}

// record counts an answer and keeps the ones that mean the attack got through: a forged request answered 2xx, a
// flood that reached a workflow (signaled), a replay that opened something new (review).
func (a *attacker) record(kind string, status int, outcome string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sent++
	if a.answers[kind] == nil {
		a.answers[kind] = map[string]int{}
	}
	a.answers[kind][fmt.Sprintf("%d %s", status, outcome)]++
	ok2xx := status >= 200 && status < 300
	var through bool
	switch kind {
	case attackForgedWebhook, attackUnknownKID:
		through = ok2xx
	case attackSDKFlood:
		through = ok2xx && outcome != "not_forwarded" // it changes no state: never a signal
	}
	// A replayed balance webhook verifies (it is the real one, within its tolerance) and is taken again; the
	// transfers and reviews dedupe it on its movement id, which the suite's outcome checks prove.
	if through && len(a.bad) < maxDetails {
		a.bad = append(a.bad, fmt.Sprintf("%s answered %d %s", kind, status, outcome))
	}
}

// check is the attacker's line in the report: every attack sent at least once, none got through.
func (a *attacker) check() *check {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := &check{name: checkAttacker, examined: a.sent}
	for _, d := range a.bad {
		c.fail("%s", d)
	}
	for _, kind := range attacks {
		if len(a.answers[kind]) == 0 {
			c.fail("attack %s was never sent (nothing to attack yet?)", kind)
		}
	}
	return c
}

// summary is one line per attack: how the bridge answered it.
func (a *attacker) summary() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, kind := range attacks {
		out = append(out, fmt.Sprintf("%s: %v", kind, a.answers[kind]))
	}
	return out
}
