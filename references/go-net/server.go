package main

// The server: one accept goroutine per listener, one goroutine per connection.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// stopTimeout bounds the graceful part of a shutdown: connections get this long to
// notice and close before the process writes its stats and exits anyway.
const stopTimeout = 4 * time.Second

type server struct {
	cfg   *config
	stats *stats
	http  httpResponses

	// mu guards conns, the open connections (to unblock them at shutdown); it is taken
	// once per accept and once per close, never per message. stopping is set under mu
	// (so no connection is added after shutdown walked conns) and read without it.
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	stopping atomic.Bool
	wg       sync.WaitGroup

	// lastRefusalLog, lastFdLog: when the last "--max-conns reached" and "out of file
	// descriptors" lines were printed (unix ns).
	lastRefusalLog, lastFdLog atomic.Int64

	// spare is an fd kept open (on /dev/null) so that, out of fds, a waiting connection
	// can still be accepted and closed instead of waiting in the backlog.
	spareMu sync.Mutex
	spare   *os.File
}

// handler serves one accepted connection until it ends and says why it ended. A
// protocol is a handler (echo here, frame and http in protocol.go), sharing the accept
// loop, limits and shutdown.
type handler func(s *server, c net.Conn, buf []byte) endReason

func handlerFor(protocol string) handler {
	switch protocol {
	case "echo":
		return serveEcho
	case "frame":
		return serveFrame
	case "http":
		return serveHTTP
	default:
		return nil // parseArgs refuses every other protocol
	}
}

type endReason int

const (
	endPeer     endReason = iota // EOF from the client
	endIdle                      // no traffic for --idle-timeout
	endError                     // reset, broken pipe, ...
	endShutdown                  // SIGINT/SIGTERM
)

// run binds, serves until SIGINT/SIGTERM, shuts down gracefully and writes the stats.
// It returns the exit status: 2 for setup failures, 1 for failures after that.
func run(cfg *config) (int, error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	st := newStats(cfg)
	s := &server{cfg: cfg, stats: st, conns: make(map[net.Conn]struct{})}
	if cfg.protocol == "http" {
		s.http = newHTTPResponses(cfg.bodySize)
	}
	s.spare, _ = os.Open(os.DevNull)
	// Application heartbeats and --idle-timeout detect dead peers, so the kernel's TCP
	// keep-alive (which net.Listen turns on at 15 s) is off: one timer less per socket.
	lc := net.ListenConfig{KeepAlive: -1}
	var listeners []net.Listener
	for _, addr := range cfg.listen {
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return 2, err // "listen tcp ADDR: bind: address already in use"
		}
		listeners = append(listeners, ln)
	}
	st.start()
	for _, ln := range listeners {
		fmt.Printf("listening on %s\n", ln.Addr())
		st.listen = append(st.listen, ln.Addr().String())
	}
	serve := handlerFor(cfg.protocol)
	var accepting sync.WaitGroup
	for _, ln := range listeners {
		accepting.Add(1)
		go func(ln net.Listener) {
			defer accepting.Done()
			s.acceptLoop(ln, serve)
		}(ln)
	}
	done := make(chan struct{})
	go st.sample(done)

	<-ctx.Done()
	// The stats are written once as the stop arrives: closing tens of thousands of
	// connections on a busy CPU can outlast whoever waits for this process. They are
	// written again, for the whole life, once the connections are closed.
	if err := st.writeJSON(); err != nil {
		return 1, err
	}
	s.shutdown(listeners)
	accepting.Wait()
	close(done)
	if err := st.writeJSON(); err != nil {
		return 1, err
	}
	return 0, nil
}

// refuseWaiting, out of fds, accepts every connection waiting on ln and closes it at
// once, with the spare fd freed for the moment (the classic spare-fd trick), so no client
// waits unanswered in the backlog. Returns how many it refused.
func (s *server) refuseWaiting(ln net.Listener) uint64 {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return 0
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return 0
	}
	s.spareMu.Lock()
	defer s.spareMu.Unlock()
	var n uint64
	_ = rc.Control(func(fd uintptr) {
		for {
			if s.spare != nil {
				s.spare.Close()
				s.spare = nil
			}
			// The listener is non-blocking: EAGAIN once the backlog is empty.
			nfd, _, err := syscall.Accept4(int(fd), syscall.SOCK_CLOEXEC)
			s.spare, _ = os.Open(os.DevNull)
			if err != nil {
				return
			}
			syscall.Close(nfd)
			n++
		}
	})
	if n > 0 {
		s.sayFdLimit(s.stats.refusedFd.Add(n))
	}
	return n
}

// sayFdLimit says on stderr that the fd limit was reached: at the first refusal, then at
// most once every 5 s.
func (s *server) sayFdLimit(refused uint64) {
	if !due(&s.lastFdLog) {
		return
	}
	fmt.Fprintf(os.Stderr, "c1m-go-net: refusing connections: out of file descriptors (RLIMIT_NOFILE %d, hard %d); %d refused so far. Fix: raise `ulimit -n`, or run more server processes (one port each), or give --max-conns below the limit.\n", s.stats.nofileSoft, s.stats.nofileHard, refused)
}

// due says whether a rate-limited line may be printed now (at most once every 5 s), and
// if so takes the turn.
func due(last *atomic.Int64) bool {
	now := time.Now().UnixNano()
	prev := last.Load()
	if prev != 0 && now-prev < int64(5*time.Second) {
		return false
	}
	return last.CompareAndSwap(prev, now)
}

// sayRefused says on stderr that --max-conns was reached, with the count and the fix: at
// the first refusal, then at most once every 5 s (as c1m-server does).
func (s *server) sayRefused(refused uint64) {
	if !due(&s.lastRefusalLog) {
		return
	}
	fmt.Fprintf(os.Stderr, "c1m-go-net: refusing connections: --max-conns %d reached; %d refused so far. Fix: a larger --max-conns if the machine can hold more.\n", s.cfg.maxConns, refused)
}

// acceptLoop accepts until the listener is closed. Out of fds it refuses what waits (see
// refuseWaiting); other accept errors back off and retry, as net/http's Server does.
func (s *server) acceptLoop(ln net.Listener, serve handler) {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if (errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)) && s.refuseWaiting(ln) > 0 {
				backoff = 0
				continue
			}
			s.stats.loopErrors.Add(1)
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff *= 2; backoff > time.Second {
				backoff = time.Second
			}
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.stats.accepted.Add(1)
		if !s.stats.tryOpen() {
			s.sayRefused(s.stats.rejected.Add(1))
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.stopping.Load() {
			s.mu.Unlock()
			s.stats.closeConn()
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.connection(c, serve)
	}
}

// connection owns c from accept to close.
func (s *server) connection(c net.Conn, serve handler) {
	defer s.wg.Done()
	// The per-connection buffer: bounded, allocated once, live as long as the
	// connection (a goroutine blocked in Read holds it; see README).
	buf := make([]byte, s.cfg.bufferSize)
	why := serve(s, c, buf)
	switch why {
	case endIdle:
		s.stats.idleClosed.Add(1)
	case endError:
		s.stats.connErrors.Add(1)
	}
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.stats.closeConn()
}

// serveEcho writes back what it reads. Back-pressure comes with the design: Write
// blocks until the kernel took every byte, and the goroutine does not read while it
// blocks, so the bytes read but unsent are at most one buffer; the client's further
// sends wait in the socket buffers and then in its own send(). With --idle-timeout, a
// read and a write each get that long (a client that stops reading is idle too).
func serveEcho(s *server, c net.Conn, buf []byte) endReason {
	idle := s.cfg.idleTimeout
	for {
		if idle > 0 {
			if err := c.SetReadDeadline(time.Now().Add(idle)); err != nil {
				return endError
			}
		}
		// After the deadline is set: a shutdown's past deadline set before it is seen here.
		if s.isStopping() {
			return endShutdown
		}
		n, err := c.Read(buf)
		if n > 0 {
			s.stats.recvs.Add(1)
			s.stats.bytesIn.Add(uint64(n))
			if idle > 0 {
				if werr := c.SetWriteDeadline(time.Now().Add(idle)); werr != nil {
					return endError
				}
			}
			w, werr := c.Write(buf[:n])
			s.stats.sends.Add(1)
			s.stats.bytesOut.Add(uint64(w))
			if werr != nil {
				return s.classify(werr)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return endPeer // everything read was echoed: close
			}
			return s.classify(err)
		}
	}
}

// classify says why a read or write failed.
func (s *server) classify(err error) endReason {
	switch {
	case s.isStopping():
		return endShutdown
	case errors.Is(err, os.ErrDeadlineExceeded):
		return endIdle
	default:
		return endError
	}
}

func (s *server) isStopping() bool { return s.stopping.Load() }

// shutdown stops accepting, wakes every connection with a past deadline so its
// goroutine returns and closes it, and waits up to stopTimeout for them.
func (s *server) shutdown(listeners []net.Listener) {
	s.mu.Lock()
	s.stopping.Store(true)
	for c := range s.conns {
		c.SetDeadline(time.Unix(1, 0))
	}
	s.mu.Unlock()
	for _, ln := range listeners {
		ln.Close()
	}
	finished := make(chan struct{})
	go func() { s.wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(stopTimeout):
		fmt.Fprintf(os.Stderr, "c1m-go-net: %d connections still open after %v: closing them\n",
			s.stats.open.Load(), stopTimeout)
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	}
}
