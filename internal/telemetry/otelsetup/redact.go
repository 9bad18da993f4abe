package otelsetup

import (
	"context"
	"net/url"
	"regexp"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/connectflow/connectflow/internal/telemetry"
)

// Redacted replaces what Redact takes out of a value.
const Redacted = "[REDACTED]"

// dropped are attributes no span keeps: who called (an end user's address and browser, for SDK relays) and any
// captured header or query string.
var dropped = map[string]bool{
	"client.address": true, "network.peer.address": true, "network.peer.port": true, "http.client_ip": true,
	"net.peer.ip": true, "net.sock.peer.addr": true, "net.sock.peer.port": true,
	"user_agent.original": true, "http.user_agent": true, "url.query": true,
}

// urls are attributes holding a URL: kept without credentials, query or fragment (and, for PeerPlatform, path).
var urls = map[string]bool{"url.full": true, "http.url": true, "http.target": true}

// secretText matches what looks like a credential or personal data in free text: a JWT (session JWTs, access
// tokens), an Authorization value, a Standard Webhooks secret or signature, an email address.
var secretText = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*` +
	`|(?i:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}` +
	`|whsec_[A-Za-z0-9+/=]+|v1,[A-Za-z0-9+/=]{16,}` +
	`|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)

// Redact wraps a span processor so that every span it is handed at its end has been redacted: the attributes in
// dropped removed, URLs cut to scheme, host and path (scheme and host for the platform), and any JWT,
// Authorization value, webhook secret or signature, or email address in a string attribute, event attribute
// (exception.message), status description or span name replaced by Redacted. Wrap every processor that exports.
func Redact(next sdktrace.SpanProcessor) sdktrace.SpanProcessor { return redactor{next} }

type redactor struct{ next sdktrace.SpanProcessor }

func (r redactor) OnStart(ctx context.Context, s sdktrace.ReadWriteSpan) { r.next.OnStart(ctx, s) }
func (r redactor) OnEnd(s sdktrace.ReadOnlySpan)                         { r.next.OnEnd(redactSpan(s)) }
func (r redactor) Shutdown(ctx context.Context) error                    { return r.next.Shutdown(ctx) }
func (r redactor) ForceFlush(ctx context.Context) error                  { return r.next.ForceFlush(ctx) }

// redactedSpan is a span as exporters see it after redaction.
type redactedSpan struct {
	sdktrace.ReadOnlySpan
	name   string
	attrs  []attribute.KeyValue
	events []sdktrace.Event
	status sdktrace.Status
}

func (s redactedSpan) Name() string                     { return s.name }
func (s redactedSpan) Attributes() []attribute.KeyValue { return s.attrs }
func (s redactedSpan) Events() []sdktrace.Event         { return s.events }
func (s redactedSpan) Status() sdktrace.Status          { return s.status }

func redactSpan(s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	attrs := s.Attributes()
	platform := false
	for _, kv := range attrs {
		if string(kv.Key) == telemetry.AttrPeer && kv.Value.AsString() == telemetry.PeerPlatform {
			platform = true
		}
	}
	out := redactedSpan{ReadOnlySpan: s, name: RedactText(s.Name()), attrs: RedactAttributes(attrs, platform),
		status: s.Status()}
	out.status.Description = RedactText(out.status.Description)
	for _, e := range s.Events() {
		e.Name = RedactText(e.Name)
		e.Attributes = RedactAttributes(e.Attributes, platform)
		out.events = append(out.events, e)
	}
	return out
}

// RedactAttributes applies Redact's rules to attrs; hostOnly cuts URLs to scheme and host.
func RedactAttributes(attrs []attribute.KeyValue, hostOnly bool) []attribute.KeyValue {
	out := make([]attribute.KeyValue, 0, len(attrs))
	for _, kv := range attrs {
		key := string(kv.Key)
		switch {
		case dropped[key], strings.HasPrefix(key, "http.request.header."), strings.HasPrefix(key, "http.response.header."):
			continue
		case urls[key] && kv.Value.Type() == attribute.STRING:
			kv = attribute.String(key, RedactURL(kv.Value.AsString(), hostOnly))
		}
		switch kv.Value.Type() {
		case attribute.STRING:
			kv = attribute.String(key, RedactText(kv.Value.AsString()))
		case attribute.STRINGSLICE:
			vs := kv.Value.AsStringSlice()
			for i := range vs {
				vs[i] = RedactText(vs[i])
			}
			kv = attribute.StringSlice(key, vs)
		}
		out = append(out, kv)
	}
	return out
}

// RedactURL keeps raw's scheme, host and path (scheme and host when hostOnly): no user info, query or fragment.
// A value that does not parse as a URL is replaced by Redacted.
func RedactURL(raw string, hostOnly bool) string {
	u, err := url.Parse(raw)
	if err != nil {
		return Redacted
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	if hostOnly {
		u.Path, u.RawPath = "", ""
	}
	return u.String()
}

// RedactText replaces every JWT, Authorization value, webhook secret or signature and email address in s.
func RedactText(s string) string {
	if s == "" {
		return s
	}
	return secretText.ReplaceAllString(s, Redacted)
}
