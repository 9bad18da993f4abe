package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// proc is one run of a binary: its output goes to log files, and its exit is either one we caused or a crash.
type proc struct {
	name     string // e.g. "worker-3": the binary and its run number
	cmd      *exec.Cmd
	done     chan struct{}
	err      error       // the exit, valid after done
	expected atomic.Bool // we signalled it, so its exit is no crash
	watch    *lineWatch
	files    []*os.File
}

// launch starts bin with args and exactly env (nothing inherited), writing its stdout to stdoutDir/name.stdout and
// its stderr to stderrDir/name.stderr.
func launch(name, bin string, args, env []string, stdoutDir, stderrDir string) (*proc, error) {
	p := &proc{name: name, done: make(chan struct{}), watch: &lineWatch{}}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.SysProcAttr = procAttr()
	for _, s := range []struct {
		dir, suffix string
		dst         *io.Writer
	}{{stdoutDir, "stdout", &cmd.Stdout}, {stderrDir, "stderr", &cmd.Stderr}} {
		f, err := os.Create(filepath.Join(s.dir, name+"."+s.suffix))
		if err != nil {
			p.closeFiles()
			return nil, fmt.Errorf("%s: log file: %w", name, err)
		}
		p.files = append(p.files, f)
		*s.dst = io.MultiWriter(f, p.watch)
	}
	if err := cmd.Start(); err != nil {
		p.closeFiles()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		p.closeFiles()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) closeFiles() {
	for _, f := range p.files {
		_ = f.Close() // written through the process's pipes; a close error leaves the bytes already written
	}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to this process (by its pid, never by name) and marks its exit as ours, unless it has already
// exited by itself.
func (p *proc) signal(sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	p.expected.Store(true)
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s to %s: %w", sig, p.name, err)
	}
	return nil
}

// stop sends sig and waits up to grace for the exit, then SIGKILLs.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) error {
	if p.exited() {
		return nil
	}
	if err := p.signal(sig); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return fmt.Errorf("%s did not stop within %v of %s; killed", p.name, grace, sig)
}

// waitLine waits until the process prints a line containing substr, and returns that line.
func (p *proc) waitLine(ctx context.Context, substr string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if line, ok := p.watch.find(substr); ok {
			return line, nil
		}
		select {
		case <-p.done:
			if line, ok := p.watch.find(substr); ok {
				return line, nil
			}
			return "", fmt.Errorf("%s exited (%v) before printing %q", p.name, p.err, substr)
		case <-ctx.Done():
			return "", fmt.Errorf("%s did not print %q within %v", p.name, substr, timeout)
		case <-p.watch.changed():
		}
	}
}

// lineWatch keeps a process's output lines so a start can wait for a readiness line.
type lineWatch struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	notify  chan struct{}
}

// maxWatchedLines bounds the lines kept in memory; readiness lines come first, the log files keep everything.
const maxWatchedLines = 200

func (w *lineWatch) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, b...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		if len(w.lines) < maxWatchedLines {
			w.lines = append(w.lines, string(w.partial[:i]))
		}
		w.partial = w.partial[i+1:]
	}
	if w.notify != nil {
		close(w.notify)
		w.notify = nil
	}
	return len(b), nil
}

// changed returns a channel closed at the next write.
func (w *lineWatch) changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.notify == nil {
		w.notify = make(chan struct{})
	}
	return w.notify
}

func (w *lineWatch) find(substr string) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lines {
		if strings.Contains(l, substr) {
			return l, true
		}
	}
	return "", false
}

// snapshot returns the lines seen so far.
func (w *lineWatch) snapshot() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.lines...)
}
