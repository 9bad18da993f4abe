package webhook

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/connectflow/connectflow/connect"
	"github.com/connectflow/connectflow/workflows"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

// key is one 2048-bit key shared by the tests: generating it is the slow part.
func key(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		if testKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return testKey
}

func transfer(kind connect.Kind) Transfer {
	return Transfer{Kind: kind, TransferID: "T-1", ConnectID: "c0ffee00-1111-2222-3333-444455556666",
		SessionID: "5e551011-aaaa-bbbb-cccc-ddddeeeeffff", ReferenceID: "USER01", Asset: "BTC", Network: "bitcoin", Amount: "0.013"}
}

func TestBodyParsesAsTheEventItDescribes(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, kind := range []connect.Kind{connect.KindDeposit, connect.KindWithdrawal} {
		for _, status := range []connect.Status{connect.StatusInitiated, connect.StatusBroadcasted, connect.StatusConfirmed, connect.StatusFailed} {
			t.Run(string(kind)+"/"+string(status), func(t *testing.T) {
				tr := transfer(kind)
				body, err := Body(tr, status, at)
				if err != nil {
					t.Fatal(err)
				}
				ev, err := connect.ParseEvent(body)
				if err != nil {
					t.Fatalf("ParseEvent: %v\n%s", err, body)
				}
				if ev.Kind != kind || ev.Status != status || ev.TransferID != tr.ConnectID || ev.SessionID != tr.SessionID ||
					ev.ReferenceID != tr.ReferenceID || ev.Asset != tr.Asset || ev.Amount != tr.Amount {
					t.Errorf("parsed %+v", ev)
				}
				// The bridge routes by this metadata, straight to the transfer's workflow.
				if got := workflows.WorkflowID(connect.Kind(ev.Metadata[workflows.MetadataKind]), ev.Metadata[workflows.MetadataTransferID]); got != workflows.WorkflowID(kind, tr.TransferID) {
					t.Errorf("metadata routes to %q", got)
				}
				if hasTx := ev.TxHash != ""; hasTx != (status != connect.StatusInitiated) {
					t.Errorf("tx hash %q for %s", ev.TxHash, status)
				}
				if (ev.FailureReason != "") != (status == connect.StatusFailed) {
					t.Errorf("failure reason %q for %s", ev.FailureReason, status)
				}
			})
		}
	}
}

func TestBodyRejectsWhatCannotRoute(t *testing.T) {
	for name, mutate := range map[string]func(*Transfer){
		"kind":        func(t *Transfer) { t.Kind = "transfer" },
		"transfer id": func(t *Transfer) { t.TransferID = "" },
		"connect id":  func(t *Transfer) { t.ConnectID = "" },
		"session id":  func(t *Transfer) { t.SessionID = "" },
	} {
		t.Run(name, func(t *testing.T) {
			tr := transfer(connect.KindDeposit)
			mutate(&tr)
			if _, err := Body(tr, connect.StatusInitiated, time.Now()); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestHeadersVerifyLikeConnects(t *testing.T) {
	k := key(t)
	now := time.Now()
	s, err := NewSigner(k, "kid-1", func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	const url = "https://hooks.example.com/webhooks/connect/withdrawals"
	body, err := Body(transfer(connect.KindWithdrawal), connect.StatusConfirmed, now)
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.Headers(connect.KindWithdrawal, url, body)
	if err != nil {
		t.Fatal(err)
	}
	keys := []connect.PublicKey{{KID: "kid-1", Key: &k.PublicKey}}
	opts := connect.VerifyOptions{Now: func() time.Time { return now }}
	if err := connect.VerifyWebhook(keys, url, h, body, opts); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if err := connect.VerifyWebhook(keys, url+"x", h, body, opts); !errors.Is(err, connect.ErrSignatureMismatch) {
		t.Errorf("signature for another URL: %v", err)
	}
	if got := h.Get(connect.HeaderPayloadType); got != "connect_withdrawal.status_changed" {
		t.Errorf("payload type %q", got)
	}
	if h.Get(connect.HeaderClientID) != "Connect" || h.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", h)
	}

	bearer := strings.TrimPrefix(h.Get("Authorization"), "Bearer ")
	tok, err := jwt.Parse(bearer, func(*jwt.Token) (any, error) { return &k.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer("connect"), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		t.Fatalf("bearer: %v", err)
	}
	if tok.Header["kid"] != "kid-1" {
		t.Errorf("bearer kid %v", tok.Header["kid"])
	}
}

func TestBearerIsReusedForAMinuteThenRenewed(t *testing.T) {
	now := time.Now()
	s, err := NewSigner(key(t), "kid-1", func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	bearer := func() string {
		h, err := s.Headers(connect.KindDeposit, "https://h.example/x", []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		return h.Get("Authorization")
	}
	first := bearer()
	now = now.Add(bearerReuse - time.Second)
	if bearer() != first {
		t.Error("bearer renewed before bearerReuse passed")
	}
	now = now.Add(time.Second)
	if bearer() == first {
		t.Error("bearer still reused after bearerReuse")
	}
	if bearerReuse >= bearerTTL {
		t.Errorf("a reused bearer could expire: reuse %v, lifetime %v", bearerReuse, bearerTTL)
	}
}

func TestNewSignerNeedsKeyAndKID(t *testing.T) {
	if _, err := NewSigner(nil, "k", nil); err == nil {
		t.Error("nil key accepted")
	}
	if _, err := NewSigner(key(t), "", nil); err == nil {
		t.Error("empty kid accepted")
	}
	if got := PayloadType(connect.KindDeposit); got != "connect_deposit.status_changed" {
		t.Errorf("deposit payload type %q", got)
	}
}

// receiver answers each delivery with the next of answers (status, Retry-After), repeating the last, and keeps
// the bodies it got.
type receiver struct {
	mu      sync.Mutex
	answers []answer
	bodies  []string
	sigs    []string
}

type answer struct {
	status     int
	retryAfter string
}

func (rv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body) // a short read shows up as a body mismatch below
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.bodies = append(rv.bodies, string(body))
	rv.sigs = append(rv.sigs, r.Header.Get(connect.HeaderSignature))
	a := rv.answers[min(len(rv.bodies), len(rv.answers))-1]
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	w.WriteHeader(a.status)
	fmt.Fprintf(w, `{"status":%d}`, a.status)
}

func TestDeliverResendsAfter503LikeConnect(t *testing.T) {
	d := Delivery{Body: []byte(`{"event":"connect.deposit.initiated"}`), Header: http.Header{}}
	d.Header.Set(connect.HeaderSignature, "c2ln")
	for _, tc := range []struct {
		name       string
		answers    []answer
		wantSent   int
		wantResent int
		wantErr    string
	}{
		{"accepted at once", []answer{{200, ""}}, 1, 0, ""},
		{"503 then accepted", []answer{{503, "1"}, {200, ""}}, 2, 1, ""},
		{"503 without Retry-After waits the default", []answer{{503, ""}, {202, ""}}, 2, 1, ""},
		{"503 every time gives up", []answer{{503, "1"}}, DeliveryAttempts, DeliveryAttempts - 1, "503 Service Unavailable"},
		{"401 is not resent", []answer{{401, ""}}, 1, 0, `401 Unauthorized: {"status":401}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rv := &receiver{answers: tc.answers}
			srv := httptest.NewServer(rv)
			defer srv.Close()
			d.URL = srv.URL
			answer, resent, err := Deliver(context.Background(), srv.Client(), d)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one with %q", err, tc.wantErr)
			case tc.wantErr == "" && !strings.Contains(string(answer), `"status":2`):
				t.Errorf("answer %q", answer)
			}
			if len(rv.bodies) != tc.wantSent || resent != tc.wantResent {
				t.Errorf("sent %d times, resent %d; want %d and %d", len(rv.bodies), resent, tc.wantSent, tc.wantResent)
			}
			for i := range rv.bodies {
				if rv.bodies[i] != string(d.Body) || rv.sigs[i] != "c2ln" {
					t.Errorf("delivery %d carried %q with signature %q", i, rv.bodies[i], rv.sigs[i])
				}
			}
		})
	}
}

func TestDeliverStopsWaitingWhenCanceled(t *testing.T) {
	srv := httptest.NewServer(&receiver{answers: []answer{{503, "10"}}})
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	if _, _, err := Deliver(ctx, srv.Client(), Delivery{URL: srv.URL, Body: []byte(`{}`)}); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled instead of a 10 s wait", err)
	}
}
