package main

// Counters and the --stats-json report, with the key names of c1m-server's server.json
// where the meaning is the same, so the kit's reports read both.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// counter is an atomic counter on its own cache line: the connection goroutines of all
// Ps add to it, and neighbours must not share a line.
type counter struct {
	atomic.Uint64
	_ [56]byte
}

type stats struct {
	cfg *config

	accepted, closed, rejected, idleClosed counter
	refusedFd                              counter // accepted and closed at the fd limit
	bytesIn, bytesOut, recvs, sends        counter
	connErrors, loopErrors                 counter
	requests, protoErrors                  counter // frame, http
	open                                   atomic.Int64
	peak                                   atomic.Int64

	listen         []string
	started        time.Time
	rssBaseline    uint64
	rssPeak        atomic.Uint64
	goroutinesPeak atomic.Int64
	stackInusePeak atomic.Uint64
	heapInusePeak  atomic.Uint64
	nofileSoft     uint64
	nofileHard     uint64
}

func newStats(cfg *config) *stats { return &stats{cfg: cfg} }

// start takes the baseline: RSS before the first connection.
func (st *stats) start() {
	st.started = time.Now()
	st.rssBaseline = statusBytes("VmRSS")
	st.rssPeak.Store(st.rssBaseline)
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		st.nofileSoft, st.nofileHard = lim.Cur, lim.Max
	}
}

// tryOpen counts a new connection; false (and not counted) past --max-conns.
func (st *stats) tryOpen() bool {
	now := st.open.Add(1)
	if max := int64(st.cfg.maxConns); max > 0 && now > max {
		st.open.Add(-1)
		return false
	}
	for {
		p := st.peak.Load()
		if now <= p || st.peak.CompareAndSwap(p, now) {
			return true
		}
	}
}

func (st *stats) closeConn() {
	st.open.Add(-1)
	st.closed.Add(1)
}

func maxU64(a *atomic.Uint64, v uint64) {
	for {
		p := a.Load()
		if v <= p || a.CompareAndSwap(p, v) {
			return
		}
	}
}

// sample tracks peak RSS and goroutines every 50 ms (as c1m-server samples RSS), the
// runtime's stack and heap once a second (ReadMemStats stops the world briefly), and
// prints the --stats-interval line, until done is closed.
func (st *stats) sample(done <-chan struct{}) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	lastMem, lastLine := time.Now(), time.Now()
	prev := st.snapshot()
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			maxU64(&st.rssPeak, statusBytes("VmRSS"))
			if g := int64(runtime.NumGoroutine()); g > st.goroutinesPeak.Load() {
				st.goroutinesPeak.Store(g)
			}
			if now.Sub(lastMem) >= time.Second {
				lastMem = now
				st.sampleMemStats()
			}
			if iv := st.cfg.statsInterval; iv > 0 && now.Sub(lastLine) >= iv {
				cur := st.snapshot()
				fmt.Fprintln(os.Stderr, intervalLine(cur, prev, st.open.Load(), now.Sub(lastLine).Seconds()))
				prev, lastLine = cur, now
			}
		}
	}
}

func (st *stats) sampleMemStats() {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	maxU64(&st.stackInusePeak, m.StackInuse)
	maxU64(&st.heapInusePeak, m.HeapInuse)
}

// totals is what the interval line compares.
type totals struct{ accepted, recvs, bytesIn, bytesOut, errors uint64 }

func (st *stats) snapshot() totals {
	return totals{st.accepted.Load(), st.recvs.Load(), st.bytesIn.Load(), st.bytesOut.Load(),
		st.connErrors.Load() + st.loopErrors.Load()}
}

func intervalLine(now, prev totals, open int64, secs float64) string {
	if secs < 1e-9 {
		secs = 1e-9
	}
	rate := func(a, b uint64) float64 { return float64(a-b) / secs }
	return fmt.Sprintf("conns %d accepts/s %.0f recvs/s %.0f in %.1f MB/s out %.1f MB/s errors %d goroutines %d",
		open, rate(now.accepted, prev.accepted), rate(now.recvs, prev.recvs),
		rate(now.bytesIn, prev.bytesIn)/1e6, rate(now.bytesOut, prev.bytesOut)/1e6,
		now.errors-prev.errors, runtime.NumGoroutine())
}

// report is server.json. Keys shared with c1m-server mean the same; the go_* ones and
// goroutines_peak are this server's own.
type report struct {
	Backend              string   `json:"backend"`
	GoMaxProcs           int      `json:"gomaxprocs"`
	Cpus                 []int    `json:"cpus"`
	Listen               []string `json:"listen"`
	Pid                  int      `json:"pid"`
	Protocol             string   `json:"protocol"`
	NofileSoft           uint64   `json:"nofile_soft"`
	NofileHard           uint64   `json:"nofile_hard"`
	PeakConnections      int64    `json:"peak_connections"`
	OpenAtExit           int64    `json:"open_connections_at_exit"`
	WallS                float64  `json:"wall_s"`
	CPUUserS             float64  `json:"cpu_user_s"`
	CPUSysS              float64  `json:"cpu_sys_s"`
	CPUUsPerRecv         *float64 `json:"cpu_us_per_recv"`
	Syscalls             *uint64  `json:"syscalls"`
	SyscallsPerRecv      *float64 `json:"syscalls_per_recv"`
	SyscallsCounted      string   `json:"syscalls_counted"`
	RSSBaselineBytes     uint64   `json:"rss_baseline_bytes"`
	RSSPeakBytes         uint64   `json:"rss_peak_bytes"`
	RSSAtExitBytes       uint64   `json:"rss_at_exit_bytes"`
	RSSPerPeakConnBytes  *float64 `json:"rss_per_peak_conn_bytes"`
	Accepted             uint64   `json:"accepted"`
	Closed               uint64   `json:"closed"`
	Rejected             uint64   `json:"rejected"`
	Refused              refused  `json:"refused"`
	IdleClosed           uint64   `json:"idle_closed"`
	BytesIn              uint64   `json:"bytes_in"`
	BytesOut             uint64   `json:"bytes_out"`
	Recvs                uint64   `json:"recvs"`
	Sends                uint64   `json:"sends"`
	ConnErrors           uint64   `json:"conn_errors"`
	LoopErrors           uint64   `json:"loop_errors"`
	Requests             uint64   `json:"requests"`
	ProtoErrors          uint64   `json:"proto_errors"`
	GoroutinesPeak       int64    `json:"goroutines_peak"`
	GoVersion            string   `json:"go_version"`
	GoStackInusePeak     uint64   `json:"go_stack_inuse_peak_bytes"`
	GoHeapInusePeak      uint64   `json:"go_heap_inuse_peak_bytes"`
	GoGCCycles           uint32   `json:"go_gc_cycles"`
	GoGCPauseTotalS      float64  `json:"go_gc_pause_total_s"`
	GoGCCPUFraction      float64  `json:"go_gc_cpu_fraction"`
	GoBufferBytesPerConn int      `json:"go_buffer_bytes_per_conn"`
}

// refused counts connections closed at once because the server could not hold them, by
// reason, as c1m-server's server.json does (fixed_table is uring's and always 0 here).
type refused struct {
	MaxConns   uint64 `json:"max_conns"`
	FdLimit    uint64 `json:"fd_limit"`
	FixedTable uint64 `json:"fixed_table"`
}

func (st *stats) build() report {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	secs := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	maxU64(&st.stackInusePeak, m.StackInuse)
	maxU64(&st.heapInusePeak, m.HeapInuse)
	maxU64(&st.rssPeak, statusBytes("VmRSS"))
	maxU64(&st.rssPeak, statusBytes("VmHWM"))
	cpus, _ := affinity()
	r := report{
		Backend: "go", GoMaxProcs: runtime.GOMAXPROCS(0), Cpus: cpus, Listen: st.listen,
		Pid: os.Getpid(), Protocol: st.cfg.protocol,
		NofileSoft: st.nofileSoft, NofileHard: st.nofileHard,
		PeakConnections: st.peak.Load(), OpenAtExit: st.open.Load(),
		WallS: time.Since(st.started).Seconds(), CPUUserS: secs(ru.Utime), CPUSysS: secs(ru.Stime),
		SyscallsCounted:  "not counted: the Go runtime's netpoller makes the epoll_wait calls and retries reads and writes on EAGAIN",
		RSSBaselineBytes: st.rssBaseline, RSSPeakBytes: st.rssPeak.Load(), RSSAtExitBytes: statusBytes("VmRSS"),
		Accepted: st.accepted.Load(), Closed: st.closed.Load(),
		Rejected:   st.rejected.Load() + st.refusedFd.Load(),
		Refused:    refused{MaxConns: st.rejected.Load(), FdLimit: st.refusedFd.Load()},
		IdleClosed: st.idleClosed.Load(), BytesIn: st.bytesIn.Load(), BytesOut: st.bytesOut.Load(),
		Recvs: st.recvs.Load(), Sends: st.sends.Load(), ConnErrors: st.connErrors.Load(),
		LoopErrors: st.loopErrors.Load(), Requests: st.requests.Load(), ProtoErrors: st.protoErrors.Load(),
		GoroutinesPeak: st.goroutinesPeak.Load(),
		GoVersion:      runtime.Version(), GoStackInusePeak: st.stackInusePeak.Load(),
		GoHeapInusePeak: st.heapInusePeak.Load(), GoGCCycles: m.NumGC,
		GoGCPauseTotalS: float64(m.PauseTotalNs) / 1e9, GoGCCPUFraction: m.GCCPUFraction,
		GoBufferBytesPerConn: st.cfg.bufferSize,
	}
	if r.Recvs > 0 {
		v := (r.CPUUserS + r.CPUSysS) * 1e6 / float64(r.Recvs)
		r.CPUUsPerRecv = &v
	}
	if r.PeakConnections > 0 {
		grown := float64(r.RSSPeakBytes) - float64(r.RSSBaselineBytes)
		if grown < 0 {
			grown = 0
		}
		v := grown / float64(r.PeakConnections)
		r.RSSPerPeakConnBytes = &v
	}
	return r
}

func (st *stats) writeJSON() error {
	if st.cfg.statsJSON == "" {
		return nil
	}
	b, err := json.MarshalIndent(st.build(), "", "  ")
	if err != nil {
		return err
	}
	// Written beside and renamed over: a reader never sees half a file, even if the
	// process is killed while it writes.
	tmp := st.cfg.statsJSON + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing --stats-json %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, st.cfg.statsJSON); err != nil {
		return fmt.Errorf("writing --stats-json %s: %w", st.cfg.statsJSON, err)
	}
	return nil
}

// statusBytes reads a "kB" field of /proc/self/status (VmRSS, VmHWM) in bytes; 0 if
// it cannot.
func statusBytes(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, field+":") {
			rest := strings.TrimPrefix(line, field+":")
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}
