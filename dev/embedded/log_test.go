package embedded

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.temporal.io/server/common/log/tag"
)

func TestSlogLoggerKeepsTagsAndLevel(t *testing.T) {
	var buf bytes.Buffer
	l := slogLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	l.With(tag.NewStringTag("service", "history")).Warn("shard lost", tag.Error(errors.New("boom")), tag.NewInt("shard-id", 3))
	l.Info("chatty")
	l.DPanic("odd but survivable")

	out := buf.String()
	for _, want := range []string{"level=WARN", `msg="shard lost"`, "service=history", "error=boom", "shard-id=3",
		"level=ERROR", `msg="odd but survivable"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
	if strings.Contains(out, "chatty") {
		t.Errorf("an Info line passed a Warn handler: %q", out)
	}
	if l.SLog() == nil {
		t.Fatal("SLog is nil")
	}
}

func TestSlogLoggerPanicPanics(t *testing.T) {
	l := slogLogger{slog.New(slog.DiscardHandler)}
	defer func() {
		if recover() != "invariant broken" {
			t.Fatal("Panic did not panic with its message")
		}
	}()
	l.Panic("invariant broken")
}
