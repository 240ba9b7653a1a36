package main

// CPU placement. The Go runtime reads the process's affinity mask once, at start, and
// sets GOMAXPROCS to the number of CPUs in it. So the honest way to give the server N
// CPUs is to start it with that mask: `taskset -c LIST c1m-go-net ...`, or `--cpus
// LIST`, which sets the mask on this thread and re-executes the binary (exec keeps
// the calling thread's mask), so the new runtime starts with GOMAXPROCS = len(LIST) and
// every thread it makes inherits the mask. Goroutines are not pinned to CPUs: the Go
// scheduler moves them between its threads, and that is part of what is measured.

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// pinnedEnv is set in the environment of the re-executed process, so a mask the kernel
// narrows (a cpuset) is an error instead of an endless re-exec.
const pinnedEnv = "C1M_GO_NET_PINNED"

// maskWords covers 1024 CPUs, the kernel's default CONFIG_NR_CPUS ceiling for a
// cpu_set_t.
const maskWords = 16

// parseCPUList parses a kernel-style CPU list ("0", "0-3", "0,2,4-5") into sorted,
// distinct CPU numbers.
func parseCPUList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty CPU list")
	}
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("%q is not a CPU number or range", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("%q is not a CPU range (like 0-3)", part)
			}
		}
		if b >= maskWords*64 {
			return nil, fmt.Errorf("CPU %d is beyond %d", b, maskWords*64-1)
		}
		for c := a; c <= b; c++ {
			seen[c] = true
		}
	}
	out := make([]int, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Ints(out)
	return out, nil
}

func formatCPUList(cpus []int) string {
	parts := make([]string, len(cpus))
	for i, c := range cpus {
		parts[i] = strconv.Itoa(c)
	}
	return strings.Join(parts, ",")
}

// onlineCPUs reads /sys/devices/system/cpu/online.
func onlineCPUs() ([]int, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, err
	}
	return parseCPUList(string(b))
}

// checkOnline fails naming the first CPU of want that is not online.
func checkOnline(want, online []int) error {
	on := map[int]bool{}
	for _, c := range online {
		on[c] = true
	}
	for _, c := range want {
		if !on[c] {
			return fmt.Errorf("CPU %d is not online (online: %s)", c, formatCPUList(online))
		}
	}
	return nil
}

func sameCPUs(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// affinity returns the CPU mask of the calling thread.
func affinity() ([]int, error) {
	var mask [maskWords]uint64
	// SAFETY of the raw call: the kernel writes at most len(mask)*8 bytes into mask.
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0,
		uintptr(len(mask)*8), uintptr(unsafe.Pointer(&mask[0])))
	if e != 0 {
		return nil, e
	}
	var cpus []int
	for w, bits := range mask {
		for bit := 0; bit < 64; bit++ {
			if bits&(1<<bit) != 0 {
				cpus = append(cpus, w*64+bit)
			}
		}
	}
	return cpus, nil
}

// pinAndReexec returns nil when the process already runs on exactly cpus; otherwise
// it sets the mask on this thread and execs the binary again with the same arguments
// (it returns only on failure).
func pinAndReexec(cpus []int) error {
	runtime.LockOSThread()
	cur, err := affinity()
	if err != nil {
		return fmt.Errorf("sched_getaffinity: %w", err)
	}
	if sameCPUs(cur, cpus) {
		return nil
	}
	if os.Getenv(pinnedEnv) != "" {
		return fmt.Errorf("asked for CPUs %s but the kernel gave %s (a cpuset?)",
			formatCPUList(cpus), formatCPUList(cur))
	}
	var mask [maskWords]uint64
	for _, c := range cpus {
		mask[c/64] |= 1 << (c % 64)
	}
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0,
		uintptr(len(mask)*8), uintptr(unsafe.Pointer(&mask[0])))
	if e != 0 {
		return fmt.Errorf("sched_setaffinity %s: %w", formatCPUList(cpus), e)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this binary to re-execute it pinned: %w", err)
	}
	env := append(os.Environ(), pinnedEnv+"=1")
	return fmt.Errorf("re-executing %s pinned: %w", exe, syscall.Exec(exe, os.Args, env))
}
