package main

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string]string{"0": "0", "0-1": "0,1", "3,0-1,1": "0,1,3", " 2 ": "2"} {
		got, err := parseCPUList(in)
		if err != nil || formatCPUList(got) != want {
			t.Errorf("parseCPUList(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a", "-1", "3-1", "0,", "1-", "5000"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("parseCPUList(%q) accepted", bad)
		}
	}
}

func TestCheckOnline(t *testing.T) {
	if err := checkOnline([]int{0, 1}, []int{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	err := checkOnline([]int{0, 999}, []int{0, 1})
	if err == nil || !strings.Contains(err.Error(), "999") || !strings.Contains(err.Error(), "online") {
		t.Fatalf("want an error naming CPU 999 and the online list, got %v", err)
	}
}

func TestParseArgsDefaultsAndValues(t *testing.T) {
	c, err := parseArgs(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.listen) != 1 || c.listen[0] != "127.0.0.1:7000" || c.maxConns != 0 || c.idleTimeout != 0 || c.bufferSize != 4096 {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = parseArgs([]string{"--backend", "go", "--listen", "127.0.0.1:1", "-listen=127.0.0.1:2",
		"--cpus", "0", "--max-conns", "5", "--idle-timeout", "1.5", "--stats-json", "x.json"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.listen) != 2 || c.maxConns != 5 || c.idleTimeout != 1500*time.Millisecond || c.statsJSON != "x.json" || len(c.cpus) != 1 {
		t.Fatalf("values: %+v", c)
	}
}

func TestParseArgsRefusesWithTheFlagNamed(t *testing.T) {
	cases := map[string][]string{
		"--no-such-flag": {"--no-such-flag"},
		"carrier-pigeon": {"--backend", "carrier-pigeon"},
		"--max-conns":    {"--max-conns", "0"},
		"--idle-timeout": {"--idle-timeout", "-1"},
		"only applies":   {"--protocol", "http", "--reply-size", "8"},
		"--max-header":   {"--protocol", "http", "--max-header", "10"},
		"unknown":        {"--protocol", "smtp"},
		"--buffer-size":  {"--buffer-size", "10"},
		"--cpus":         {"--cpus", "x"},
		"unexpected":     {"extra"},
	}
	for want, args := range cases {
		_, err := parseArgs(args)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), want) {
			t.Errorf("parseArgs(%q) = %v; want a usage error mentioning %q", args, err, want)
		}
	}
	if _, err := parseArgs([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
}

func TestTryOpenHonoursMaxConnsAndPeak(t *testing.T) {
	st := newStats(&config{maxConns: 2})
	if !st.tryOpen() || !st.tryOpen() || st.tryOpen() {
		t.Fatal("want two opens then a refusal")
	}
	st.closeConn()
	if !st.tryOpen() || st.peak.Load() != 2 || st.closed.Load() != 1 {
		t.Fatalf("peak %d closed %d", st.peak.Load(), st.closed.Load())
	}
}
