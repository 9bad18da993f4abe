package main

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// balancerDialTimeout bounds the connect to one backend before the balancer tries the next.
const balancerDialTimeout = time.Second

// balancer is a loopback TCP load balancer standing in for the cloud's in front of the Temporal nodes: each new
// connection goes to the next backend in turn that accepts it, so clients reach the cluster through one address
// that survives any one node's death. It balances connections, not requests, as a layer-4 balancer does: a gRPC
// client keeps its connection to one node until that node goes away, then reconnects through the balancer.
type balancer struct {
	ln       net.Listener
	backends []string
	next     atomic.Uint64
	wg       sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	// dialed counts connections handed to each backend; refused counts backends that refused a connection.
	dialed  map[string]int
	refused int
	dropped int // connections closed because no backend took them
}

// startBalancer listens on a free loopback port and serves until close.
func startBalancer(backends []string) (*balancer, error) {
	if len(backends) == 0 {
		return nil, errors.New("balancer: no backends")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &balancer{ln: ln, backends: append([]string(nil), backends...), conns: map[net.Conn]struct{}{},
		dialed: map[string]int{}}
	b.wg.Go(b.serve)
	return b, nil
}

// addr is where clients connect.
func (b *balancer) addr() string { return b.ln.Addr().String() }

func (b *balancer) serve() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return // closed
		}
		b.wg.Go(func() { b.handle(c) })
	}
}

// handle pipes one client connection to the first backend, in round-robin order, that accepts a connection.
func (b *balancer) handle(client net.Conn) {
	start := int(b.next.Add(1))
	var backend net.Conn
	for i := range b.backends {
		addr := b.backends[(start+i)%len(b.backends)]
		c, err := net.DialTimeout("tcp", addr, balancerDialTimeout)
		if err == nil {
			backend = c
			b.count(func() { b.dialed[addr]++ })
			break
		}
		b.count(func() { b.refused++ })
	}
	if backend == nil || !b.track(client, backend) {
		b.count(func() { b.dropped++ })
		_ = client.Close() // no node up: the client sees its connection closed, as behind a real balancer
		if backend != nil {
			_ = backend.Close()
		}
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src) // ends when either side closes or dies
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(backend, client)
	go pipe(client, backend)
	<-done
	// One direction ended: a dead node's connection is torn down at once, so the client reconnects.
	_ = client.Close()
	_ = backend.Close()
	<-done
	b.untrack(client, backend)
}

func (b *balancer) count(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f()
}

func (b *balancer) track(cs ...net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	for _, c := range cs {
		b.conns[c] = struct{}{}
	}
	return true
}

func (b *balancer) untrack(cs ...net.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range cs {
		delete(b.conns, c)
	}
}

// stats returns the connections handed to each backend, the refused dials and the dropped connections.
func (b *balancer) stats() (map[string]int, int, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int, len(b.dialed))
	for k, v := range b.dialed {
		out[k] = v
	}
	return out, b.refused, b.dropped
}

// close stops listening, closes every connection and waits for the pipes to end.
func (b *balancer) close() {
	b.mu.Lock()
	b.closed = true
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	_ = b.ln.Close()
	b.wg.Wait()
}
