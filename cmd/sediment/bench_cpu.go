package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sediment-io/sediment/internal/loadgen"
)

// userHZ is the unit of /proc/stat and /proc/<pid>/stat times: USER_HZ, which Linux fixes at 100 for
// user space whatever the kernel's own tick rate.
const userHZ = 100

// machineTicks is /proc/stat's first line summed into busy, idle and iowait ticks.
type machineTicks struct{ busy, idle, iowait int64 }

// parseProcStat reads the aggregate "cpu" line of /proc/stat: user nice system idle iowait irq
// softirq steal (guest time is already inside user).
func parseProcStat(b []byte) (machineTicks, bool) {
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return machineTicks{}, false
	}
	var v [8]int64
	for i := range v {
		n, err := strconv.ParseInt(f[i+1], 10, 64)
		if err != nil {
			return machineTicks{}, false
		}
		v[i] = n
	}
	return machineTicks{busy: v[0] + v[1] + v[2] + v[5] + v[6] + v[7], idle: v[3], iowait: v[4]}, true
}

// parsePidStat is a process's user + system CPU time from its /proc/<pid>/stat line. The command
// name (field 2) may hold spaces and parentheses, so fields are counted after its last ')'.
func parsePidStat(b []byte) (time.Duration, bool) {
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 { // state … utime (11) stime (12), counted from the state field
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * time.Second / userHZ, true
}

func pidCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	return parsePidStat(b)
}

// selfCPU is this process's CPU time (user + system), to the microsecond.
func selfCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

// cpuProbe measures where a replay's CPU goes (loadgen.ReplayCPU): the machine's busy share, this
// process (the broker's), and the object store's when the bench started it (storePid > 0). It needs
// /proc: elsewhere startCPUProbe returns nil and the bench reports no CPU figures.
type cpuProbe struct {
	machine  machineTicks
	self     time.Duration
	storePid int
	store    time.Duration
}

// sampleCPU reads the machine's ticks and this process's CPU time.
func sampleCPU() (machineTicks, time.Duration, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineTicks{}, 0, false
	}
	m, ok := parseProcStat(b)
	self, ok2 := selfCPU()
	return m, self, ok && ok2
}

func startCPUProbe(storePid int) *cpuProbe {
	m, self, ok := sampleCPU()
	if !ok {
		return nil
	}
	p := &cpuProbe{machine: m, self: self}
	if storePid > 0 {
		if d, ok := pidCPU(storePid); ok {
			p.storePid, p.store = storePid, d
		}
	}
	return p
}

// stop ends the measurement; consumer is the consumer's CPU time, measured by whoever ran it.
func (p *cpuProbe) stop(consumer time.Duration) *loadgen.ReplayCPU {
	if p == nil {
		return nil
	}
	m, self, ok := sampleCPU()
	if !ok {
		return nil
	}
	c := &loadgen.ReplayCPU{Broker: self - p.self, Consumer: consumer}
	if total := float64(m.busy - p.machine.busy + m.idle - p.machine.idle + m.iowait - p.machine.iowait); total > 0 {
		c.Busy = float64(m.busy-p.machine.busy) / total
		c.IOWait = float64(m.iowait-p.machine.iowait) / total
	}
	if p.storePid > 0 {
		if d, ok := pidCPU(p.storePid); ok {
			c.Store = d - p.store
		}
	}
	return c
}
