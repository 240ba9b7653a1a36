// c1m-go-net is the Go reference server of the c1m kit: the classic Go design, standard
// library only. net.Listen, one goroutine per connection, a read loop over a bounded
// per-connection buffer, SetReadDeadline for the idle timeout, a max-conns guard and a
// context-based graceful shutdown on SIGINT/SIGTERM; the Go runtime's netpoller (epoll)
// underneath. It speaks the command-line contract of c1m-server where that applies, so
// the kit runs it as its `go` backend:
//
//	c1m-go-net [--backend go] [--listen ADDR:PORT]... [--cpus LIST]
//	           [--protocol echo|frame|http] [--max-frame BYTES] [--reply-size N]
//	           [--body-size BYTES] [--max-header BYTES]
//	           [--max-conns N] [--idle-timeout SECS] [--stats-interval SECS]
//	           [--stats-json PATH] [--buffer-size BYTES]
//
// It prints "listening on ADDR:PORT" on stdout once it accepts, exits 0 on SIGINT or
// SIGTERM, and 2 with a message on bad flags or a setup failure (address in use, CPUs
// not online).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// config is the validated command line.
type config struct {
	listen        []string
	cpus          []int // nil: the mask the process was started with
	protocol      string
	maxConns      int // 0: no limit
	idleTimeout   time.Duration
	statsInterval time.Duration
	statsJSON     string
	bufferSize    int
	maxFrame      int // frame: largest request payload
	replySize     int // frame: reply payload bytes; -1: echo the request
	bodySize      int // http: body of every 200
	maxHeader     int // http: largest request head
}

// usageError is a bad command line: exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// protocols known to the kit, each with a handler in handlerFor (server.go).
var protocols = map[string]bool{"echo": true, "frame": true, "http": true}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: c1m-go-net [flags]  (goroutine-per-connection echo server; flags take - or --)\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// parseArgs parses and checks the flags. flag.ErrHelp means --help was asked for.
func parseArgs(args []string) (*config, error) {
	fs := flag.NewFlagSet("c1m-go-net", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var listen listFlag
	backend := fs.String("backend", "go", "the only backend of this binary: go (accepted so the kit's argv fits)")
	fs.Var(&listen, "listen", "`ADDR:PORT` to listen on; repeatable (default 127.0.0.1:7000)")
	cpus := fs.String("cpus", "", "run on these CPUs, e.g. 0 or 0-1 (re-executes pinned; GOMAXPROCS follows); default: as started")
	protocol := fs.String("protocol", "echo", "echo, frame (length-prefixed) or http (HTTP/1.1 keep-alive)")
	maxFrame := fs.Int("max-frame", 65536, "frame: largest request payload, `BYTES`; a longer one closes the connection")
	replySize := fs.Int("reply-size", -1, "frame: answer every request with `N` payload bytes (default: echo)")
	bodySize := fs.Int("body-size", 16, "http: body of every 200 answer, `BYTES`")
	maxHeader := fs.Int("max-header", 16384, "http: largest request head, `BYTES`; a longer one gets 431")
	maxConns := fs.String("max-conns", "", "close new connections beyond `N` open ones (default: no limit)")
	idle := fs.String("idle-timeout", "", "close a connection after `SECS` without traffic (default: never)")
	statsEvery := fs.String("stats-interval", "", "print one stats line on stderr every `SECS`")
	statsJSON := fs.String("stats-json", "", "write the final stats as JSON to `PATH` at exit")
	bufSize := fs.Int("buffer-size", 4096, "per-connection read buffer, `BYTES` (64..1048576)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(os.Stdout, fs)
			return nil, err
		}
		msg := err.Error()
		// flag names an unknown flag with one dash whatever was typed; say what was typed.
		const undefined = "flag provided but not defined: -"
		if strings.HasPrefix(msg, undefined) {
			msg = "unknown flag --" + strings.TrimPrefix(msg, undefined) + " (see --help)"
		}
		return nil, usageError{msg}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Sprintf("unexpected argument %q (see --help)", fs.Arg(0))}
	}
	if *backend != "go" {
		return nil, usageError{fmt.Sprintf("--backend %s: this is the Go reference server; its only backend is go", *backend)}
	}
	c := &config{listen: listen, protocol: *protocol, statsJSON: *statsJSON, bufferSize: *bufSize,
		maxFrame: *maxFrame, replySize: *replySize, bodySize: *bodySize, maxHeader: *maxHeader}
	if len(c.listen) == 0 {
		c.listen = []string{"127.0.0.1:7000"}
	}
	if !protocols[c.protocol] {
		return nil, usageError{fmt.Sprintf("--protocol %s: unknown (echo, frame, http)", c.protocol)}
	}
	if c.maxFrame < 0 || c.maxFrame > 1<<24 {
		return nil, usageError{fmt.Sprintf("--max-frame %d: must be between 0 and 16777216 bytes", c.maxFrame)}
	}
	if c.replySize >= 0 && c.protocol != "frame" {
		return nil, usageError{fmt.Sprintf("--reply-size %d: only applies with --protocol frame", c.replySize)}
	}
	if c.replySize > 1<<24 || c.bodySize < 0 || c.bodySize > 1<<24 {
		return nil, usageError{"--reply-size and --body-size: at most 16777216 bytes"}
	}
	if c.maxHeader < 256 || c.maxHeader > 1<<20 {
		return nil, usageError{fmt.Sprintf("--max-header %d: must be between 256 and 1048576 bytes", c.maxHeader)}
	}
	if *cpus != "" {
		list, err := parseCPUList(*cpus)
		if err != nil {
			return nil, usageError{fmt.Sprintf("--cpus %s: %v", *cpus, err)}
		}
		c.cpus = list
	}
	if *maxConns != "" {
		n, err := strconv.Atoi(*maxConns)
		if err != nil || n < 1 {
			return nil, usageError{fmt.Sprintf("--max-conns %s: must be at least 1 (leave it out for no limit)", *maxConns)}
		}
		c.maxConns = n
	}
	var err error
	if c.idleTimeout, err = positiveSecs("idle-timeout", *idle); err != nil {
		return nil, err
	}
	if c.statsInterval, err = positiveSecs("stats-interval", *statsEvery); err != nil {
		return nil, err
	}
	if c.bufferSize < 64 || c.bufferSize > 1<<20 {
		return nil, usageError{fmt.Sprintf("--buffer-size %d: must be between 64 and 1048576 bytes", c.bufferSize)}
	}
	return c, nil
}

// positiveSecs parses an optional number of seconds; "" is zero (off).
func positiveSecs(flag, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	s, err := strconv.ParseFloat(v, 64)
	if err != nil || !(s > 0 && s < 1e9) {
		return 0, usageError{fmt.Sprintf("--%s %s: give a positive number of seconds", flag, v)}
	}
	return time.Duration(s * float64(time.Second)), nil
}

func main() {
	cfg, err := parseArgs(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "c1m-go-net: error: %v\n", err)
		os.Exit(2)
	}
	if cfg.cpus != nil {
		online, err := onlineCPUs()
		if err == nil {
			err = checkOnline(cfg.cpus, online)
		}
		if err == nil {
			err = pinAndReexec(cfg.cpus) // returns only when already pinned, or on failure
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "c1m-go-net: error: --cpus %s: %v\n", formatCPUList(cfg.cpus), err)
			os.Exit(2)
		}
	}
	code, err := run(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "c1m-go-net: error: %v\n", err)
	}
	os.Exit(code)
}
