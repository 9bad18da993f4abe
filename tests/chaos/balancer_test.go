package main

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// namedServer answers each line with its name, until closed.
type namedServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startNamed(t *testing.T, name string) *namedServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &namedServer{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			go func() {
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					if _, err := fmt.Fprintf(c, "%s\n", name); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(s.kill)
	return s
}

// kill closes the listener and every connection, as a SIGKILLed process's kernel does.
func (s *namedServer) kill() {
	_ = s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
}

func ask(t *testing.T, c net.Conn) (string, error) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprint(c, "who\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

func TestBalancerSurvivesABackendsDeath(t *testing.T) {
	a, b := startNamed(t, "a"), startNamed(t, "b")
	lb, err := startBalancer([]string{a.ln.Addr().String(), b.ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.close()

	seen := map[string]net.Conn{}
	for range 4 {
		c, err := net.Dial("tcp", lb.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		got, err := ask(t, c)
		if err != nil {
			t.Fatal(err)
		}
		seen[got] = c
	}
	if len(seen) != 2 {
		t.Fatalf("4 connections reached %d backends, want both", len(seen))
	}

	a.kill()
	// The connection pinned to the dead backend is torn down, so its client reconnects.
	if got, err := ask(t, seen["a\n"]); err == nil {
		t.Fatalf("a connection to the dead backend still answered %q", got)
	}
	for range 4 {
		c, err := net.Dial("tcp", lb.addr())
		if err != nil {
			t.Fatal(err)
		}
		got, err := ask(t, c)
		c.Close()
		if err != nil || got != "b\n" {
			t.Fatalf("after a's death a new connection answered %q, %v; want b", got, err)
		}
	}
	dialed, refused, _ := lb.stats()
	if refused == 0 || dialed[b.ln.Addr().String()] < 5 {
		t.Fatalf("stats: dialed %v refused %d; want refusals from a and every later connection on b", dialed, refused)
	}

	b.kill()
	c, err := net.Dial("tcp", lb.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := ask(t, c); err == nil {
		t.Fatalf("with every backend dead a connection answered %q", got)
	}
	if _, _, dropped := lb.stats(); dropped != 1 {
		t.Fatalf("dropped %d connections with every backend dead, want 1", dropped)
	}
}
