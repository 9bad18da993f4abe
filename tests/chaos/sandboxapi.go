package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/connecttest"
)

// sandboxAPI talks to the sandbox's control API (/sandbox/...) and, as an organization would, its Connect API.
type sandboxAPI struct {
	url string
	hc  *http.Client
}

func newSandboxAPI(url string) *sandboxAPI {
	return &sandboxAPI{url: url, hc: &http.Client{Timeout: 60 * time.Second}}
}

// playRequest is the body of POST /sandbox/sessions/{id}/play (see connecttest's package doc).
type playRequest struct {
	Outcome    connecttest.Outcome `json:"outcome"`
	Duplicates int                 `json:"duplicates,omitempty"`
	Shuffle    bool                `json:"shuffle,omitempty"`
	Late       bool                `json:"late,omitempty"`
	DelayMS    int64               `json:"delay_ms,omitempty"`
	Seed       uint64              `json:"seed,omitempty"`
}

// copies is how many deliveries the play sends.
func (p playRequest) copies() int {
	n := lifeEvents * (p.Duplicates + 1)
	if p.Late {
		n += lifeEvents
	}
	return n
}

// lifeEvents is how many events one played life has: initiated, broadcasted, and the outcome's final event.
const lifeEvents = 3

// faultRequest is the body of POST /sandbox/faults.
type faultRequest struct {
	Endpoint     connecttest.Endpoint `json:"endpoint"`
	Status       int                  `json:"status,omitempty"`
	RetryAfterMS int64                `json:"retry_after_ms,omitempty"`
	Drop         bool                 `json:"drop,omitempty"`
	Times        int                  `json:"times"`
}

func (a *sandboxAPI) play(ctx context.Context, sessionID string, p playRequest) error {
	return a.call(ctx, http.MethodPost, "/sandbox/sessions/"+sessionID+"/play", p, http.StatusAccepted, nil)
}

func (a *sandboxAPI) fail(ctx context.Context, f faultRequest) error {
	return a.call(ctx, http.MethodPost, "/sandbox/faults", f, http.StatusNoContent, nil)
}

func (a *sandboxAPI) clearFaults(ctx context.Context) error {
	return a.call(ctx, http.MethodDelete, "/sandbox/faults", nil, http.StatusNoContent, nil)
}

func (a *sandboxAPI) stats(ctx context.Context) (connecttest.Stats, error) {
	var st connecttest.Stats
	return st, a.call(ctx, http.MethodGet, "/sandbox/stats", nil, http.StatusOK, &st)
}

func (a *sandboxAPI) sessions(ctx context.Context) ([]connecttest.SessionInfo, error) {
	var out []connecttest.SessionInfo
	return out, a.call(ctx, http.MethodGet, "/sandbox/sessions", nil, http.StatusOK, &out)
}

func (a *sandboxAPI) deliveries(ctx context.Context) ([]connecttest.Delivery, error) {
	var out []connecttest.Delivery
	return out, a.call(ctx, http.MethodGet, "/sandbox/deliveries", nil, http.StatusOK, &out)
}

// call sends one JSON request and decodes the answer into out when it has the wanted status.
func (a *sandboxAPI) call(ctx context.Context, method, path string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("sandbox %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("sandbox %s %s: HTTP %d: %s", method, path, resp.StatusCode, msg)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("sandbox %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// orphanClient opens sessions at the sandbox's Connect API the way an organization's backend would, without
// connectflow, so no transfer workflow owns them. It reuses the real Connect client.
type orphanClient struct {
	connect *connect.Client
}

// audience is the sandbox's own base URL: apiURL goes through the tap, whose origin the sandbox does not accept.
func newOrphanClient(apiURL, clientID, clientSecret, organizationID, audience string) (*orphanClient, error) {
	c, err := connect.New(connect.Options{BaseURL: apiURL, ClientID: clientID, ClientSecret: clientSecret,
		OrganizationID: organizationID, Audience: audience})
	if err != nil {
		return nil, err
	}
	return &orphanClient{connect: c}, nil
}
