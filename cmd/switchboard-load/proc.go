package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times; it is
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// procSample is a process's CPU time and resident memory at one moment.
type procSample struct {
	CPUSeconds float64
	RSSBytes   int64
}

// sampleProc reads /proc/<pid>/stat and /proc/<pid>/status.
func sampleProc(pid int) (procSample, error) {
	var s procSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("service process: %w", err)
	}
	// The command name may hold spaces; the fields after it are fixed.
	rest := string(stat)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return s, fmt.Errorf("service process: short /proc stat")
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("service process: unreadable CPU times")
	}
	s.CPUSeconds = (utime + stime) / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("service process: %w", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				s.RSSBytes = kb * 1024
			}
		}
	}
	return s, nil
}

// runtimeSample is what the service says of its own runtime on /metrics:
// goroutines, heap in use and open files. Before the first call and after
// the last they show whether calls leave anything behind.
type runtimeSample struct {
	Goroutines  float64 `json:"goroutines"`
	HeapInuseMB float64 `json:"heap_inuse_mb"`
	OpenFDs     float64 `json:"open_fds"`
	// ActiveCalls is the service's calls in progress: none once every
	// call the load placed has ended, or something kept one alive.
	ActiveCalls float64 `json:"active_calls"`
	// Shed is how many INVITEs the service refused with 503: past its
	// capacity, the new calls it did not take.
	Shed float64 `json:"invites_refused_503"`
	// relayDelay is the service's switchboard_media_relay_delay_seconds
	// by direction (from_caller, to_caller).
	relayDelay map[string]*histogram
}

// scrapeRuntime reads the service's /metrics at url, bearing token if
// one is given.
func scrapeRuntime(ctx context.Context, url, token string) (runtimeSample, error) {
	var s runtimeSample
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return s, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, fmt.Errorf("service metrics: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return s, fmt.Errorf("service metrics: %s", res.Status)
	}
	return parseRuntime(res.Body)
}

// parseRuntime picks the runtime gauges out of Prometheus's text format.
func parseRuntime(r io.Reader) (runtimeSample, error) {
	s := runtimeSample{relayDelay: map[string]*histogram{}}
	found := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if relayDelayLine(s.relayDelay, name, value) {
			continue
		}
		if labels, ok := strings.CutPrefix(name, "switchboard_sip_messages_total{"); ok {
			if label(labels, "direction") == "out" && label(labels, "method") == "INVITE" && label(labels, "code") == "503" {
				if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
					s.Shed = v
				}
			}
			continue
		}
		var dst *float64
		scale := 1.0
		switch name {
		case "go_goroutines":
			dst = &s.Goroutines
		case "go_memstats_heap_inuse_bytes":
			dst, scale = &s.HeapInuseMB, 1.0/(1<<20)
		case "process_open_fds":
			dst = &s.OpenFDs
		case "switchboard_active_calls":
			v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err != nil {
				return s, fmt.Errorf("service metrics: %s %q", name, value)
			}
			s.ActiveCalls = v // not every service has it: not counted as found
			continue
		default:
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return s, fmt.Errorf("service metrics: %s %q", name, value)
		}
		*dst = v * scale
		found++
	}
	if err := sc.Err(); err != nil {
		return s, err
	}
	if found < 3 {
		return s, fmt.Errorf("service metrics: goroutines, heap or open files missing")
	}
	return s, nil
}
