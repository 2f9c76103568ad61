package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// cpuTimes is the machine's CPU time from /proc/stat's first line, in
// clock ticks summed over every CPU: busy (user, nice, system, irq,
// softirq, steal) and total (with idle and iowait).
type cpuTimes struct{ busy, total uint64 }

// readCPUTimes reads /proc/stat. Elsewhere than Linux it fails, and the
// figure is left out.
func readCPUTimes() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	return parseCPUTimes(b)
}

func parseCPUTimes(stat []byte) (cpuTimes, error) {
	line, err := bufio.NewReader(bytes.NewReader(stat)).ReadString('\n')
	f := strings.Fields(line)
	if (err != nil && line == "") || len(f) < 5 || f[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("reading /proc/stat: no cpu line in %.40q", stat)
	}
	var t cpuTimes
	// user nice system idle iowait irq softirq steal; guest time is
	// already counted in user and nice.
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("reading /proc/stat: field %d of the cpu line: %w", i+1, err)
		}
		t.total += n
		if i != 3 && i != 4 { // idle, iowait
			t.busy += n
		}
	}
	return t, nil
}

// busyPercent is the share of the machine's CPU time that was busy
// between two readings, 0-100.
func busyPercent(from, to cpuTimes) float64 {
	if to.total <= from.total || to.busy < from.busy {
		return 0
	}
	return 100 * float64(to.busy-from.busy) / float64(to.total-from.total)
}
