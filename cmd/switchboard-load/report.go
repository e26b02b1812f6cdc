package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"time"
)

type report struct {
	Config   *config        `json:"config"`
	Machine  string         `json:"machine"`
	Elapsed  float64        `json:"elapsed_s"`
	Attempts int            `json:"calls_attempted"`
	Answered int            `json:"calls_answered"`
	Failures map[string]int `json:"failures"`
	Peak     int64          `json:"peak_concurrent_calls"`

	AnswerRatio float64 `json:"answer_ratio"`
	SetupP50MS  float64 `json:"setup_ms_p50"`
	SetupP95MS  float64 `json:"setup_ms_p95"`
	SetupP99MS  float64 `json:"setup_ms_p99"`

	ToOperator direction `json:"caller_to_operator"`
	ToCaller   direction `json:"operator_to_caller"`

	CallMinutes          float64 `json:"call_minutes"`
	CPUSeconds           float64 `json:"service_cpu_s"`
	CPUSecondsPerCallMin float64 `json:"service_cpu_s_per_call_minute"`
	BareRSSMB            float64 `json:"service_rss_mb_before_operators"`
	BaseRSSMB            float64 `json:"service_rss_mb_operators_connected"`
	PeakRSSMB            float64 `json:"service_rss_mb_peak"`
	RSSPerCallKB         float64 `json:"service_rss_kb_per_call"`

	// The service's runtime with its operators connected, before the
	// first call and once the last has ended (switchboard only).
	Before *runtimeSample `json:"service_runtime_before,omitempty"`
	After  *runtimeSample `json:"service_runtime_after,omitempty"`
}

func (r *loadRun) report(elapsed time.Duration, base, peak, end procSample) *report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := &report{
		Config: r.c, Elapsed: elapsed.Seconds(), Attempts: r.attempted, Answered: r.answered,
		Failures: r.failed, Peak: r.peakActive, CallMinutes: r.callSeconds / 60,
		Machine: fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU()),
	}
	if r.attempted > 0 {
		rep.AnswerRatio = float64(r.answered) / float64(r.attempted)
	}
	rep.SetupP50MS, rep.SetupP95MS, rep.SetupP99MS = ms(percentile(r.setup, 50)), ms(percentile(r.setup, 95)), ms(percentile(r.setup, 99))
	for _, s := range r.toOperator {
		rep.ToOperator.add(s)
	}
	for _, s := range r.toCaller {
		rep.ToCaller.add(s)
	}
	rep.ToOperator.Sent, rep.ToCaller.Sent = int(r.sentToOperator.Load()), int(r.sentToCaller.Load())
	rep.ToOperator.finish()
	rep.ToCaller.finish()
	if r.c.PID != 0 {
		rep.CPUSeconds = end.CPUSeconds - base.CPUSeconds
		if rep.CallMinutes > 0 {
			rep.CPUSecondsPerCallMin = rep.CPUSeconds / rep.CallMinutes
		}
		rep.BareRSSMB = float64(r.bare.RSSBytes) / (1 << 20)
		rep.BaseRSSMB, rep.PeakRSSMB = float64(base.RSSBytes)/(1<<20), float64(peak.RSSBytes)/(1<<20)
		// A bridged call is its trunk leg plus its operator's connection,
		// so the growth counts from before the operators connected.
		if r.peakActive > 0 && peak.RSSBytes > r.bare.RSSBytes {
			rep.RSSPerCallKB = float64(peak.RSSBytes-r.bare.RSSBytes) / 1024 / float64(r.peakActive)
		}
	}
	return rep
}

func (rep *report) print(w io.Writer) {
	fmt.Fprintf(w, "\nswitchboard-load: %d concurrent calls, %.0f/s, hold %s, %s, codec %s (%s)\n\n",
		rep.Config.Calls, rep.Config.Rate, rep.Config.Hold, rep.Config.Transport, rep.Config.Codec, rep.Machine)
	fmt.Fprintf(w, "  calls             %d attempted, %d answered (%.2f%%), peak %d concurrent\n", rep.Attempts, rep.Answered, 100*rep.AnswerRatio, rep.Peak)
	keys := make([]string, 0, len(rep.Failures))
	for k := range rep.Failures {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  failed            %d × %s\n", rep.Failures[k], k)
	}
	fmt.Fprintf(w, "  setup (INVITE→200) p50 %.1f ms  p95 %.1f ms  p99 %.1f ms\n\n", rep.SetupP50MS, rep.SetupP95MS, rep.SetupP99MS)
	fmt.Fprintf(w, "  %-20s %10s %10s %10s %8s %9s %9s %9s %9s\n", "direction", "sent", "received", "loss", "corrupt", "jitter", "delay p50", "p95", "p99")
	for _, d := range []struct {
		name string
		d    direction
	}{{"caller → operator", rep.ToOperator}, {"operator → caller", rep.ToCaller}} {
		fmt.Fprintf(w, "  %-20s %10d %10d %9.3f%% %8d %6.2f ms %6.2f ms %6.2f ms %6.2f ms\n",
			d.name, d.d.Sent, d.d.Received, d.d.LossPct, d.d.Corrupt, d.d.JitterMS, d.d.DelayP50MS, d.d.DelayP95MS, d.d.DelayP99MS)
	}
	for _, d := range []struct {
		name string
		d    *serviceDelay
	}{{"caller → operator", rep.ToOperator.InService}, {"operator → caller", rep.ToCaller.InService}} {
		if d.d != nil {
			fmt.Fprintf(w, "  %-20s in the service (its own measure, %.0f packets): p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms\n",
				d.name, d.d.Packets, d.d.P50MS, d.d.P99MS, d.d.P999MS)
		}
	}
	if rep.Config.PID != 0 {
		fmt.Fprintf(w, "\n  service CPU       %.1f s for %.1f call-minutes: %.3f CPU-s per call-minute\n", rep.CPUSeconds, rep.CallMinutes, rep.CPUSecondsPerCallMin)
		fmt.Fprintf(w, "  service memory    %.1f MB before operators, %.1f MB with them, %.1f MB peak: %.0f KB per call with its operator connection\n",
			rep.BareRSSMB, rep.BaseRSSMB, rep.PeakRSSMB, rep.RSSPerCallKB)
	}
	if b, a := rep.Before, rep.After; b != nil && a != nil {
		fmt.Fprintf(w, "  service runtime   before the first call → after the last: %.0f → %.0f goroutines, %.1f → %.1f MB heap in use, %.0f → %.0f open files\n",
			b.Goroutines, a.Goroutines, b.HeapInuseMB, a.HeapInuseMB, b.OpenFDs, a.OpenFDs)
	}
	fmt.Fprintln(w, "\n  Loss counts gaps in each call's pattern (RFC 3550 A.3); frames in flight when a call ends are not loss.")
	fmt.Fprintln(w, "  Delay is the pattern's send-to-arrival time through the service and both emulators, on one machine;")
	fmt.Fprintln(w, "  in the service is from the kernel's receive timestamp to the hand-over to the kernel on the other leg.")
}

// markdownHeader heads the table appendMarkdown writes rows of.
const markdownHeader = "| calls held | answered | setup p50 / p99 | loss c→o / o→c | jitter | delay p50 / p99 | in the service p50 / p99 / p99.9 | service CPU-s per call-min | service RSS before operators → peak | RSS per call with its operator |\n" +
	"|---|---|---|---|---|---|---|---|---|---|\n"

// signallingHeader heads the table of runs without media.
const signallingHeader = "| calls/s asked | calls/s placed | answered | failed | setup p50 / p99 | service CPU-ms per call |\n" +
	"|---|---|---|---|---|---|\n"

func (rep *report) appendMarkdown(path string) error {
	if !rep.Config.Media {
		failed := 0
		for _, n := range rep.Failures {
			failed += n
		}
		cpuPerCall := 0.0
		if rep.Attempts > 0 {
			cpuPerCall = 1000 * rep.CPUSeconds / float64(rep.Attempts)
		}
		return appendRow(path, signallingHeader, fmt.Sprintf("| %.0f | %.0f | %d/%d | %d | %.1f / %.1f ms | %.2f |\n",
			rep.Config.Rate, float64(rep.Attempts)/rep.Elapsed, rep.Answered, rep.Attempts, failed, rep.SetupP50MS, rep.SetupP99MS, cpuPerCall))
	}
	inService := "–"
	if d := worse(rep.ToOperator.InService, rep.ToCaller.InService); d != nil {
		inService = fmt.Sprintf("%.3f / %.3f / %.3f ms", d.P50MS, d.P99MS, d.P999MS)
	}
	return appendRow(path, markdownHeader, fmt.Sprintf("| %d | %d/%d | %.1f / %.1f ms | %.3f%% / %.3f%% | %.2f ms | %.1f / %.1f ms | %s | %.3f | %.0f → %.0f MB | %.0f KB |\n",
		rep.Peak, rep.Answered, rep.Attempts, rep.SetupP50MS, rep.SetupP99MS, rep.ToOperator.LossPct, rep.ToCaller.LossPct,
		(rep.ToOperator.JitterMS+rep.ToCaller.JitterMS)/2, rep.ToOperator.DelayP50MS, rep.ToOperator.DelayP99MS, inService,
		rep.CPUSecondsPerCallMin, rep.BareRSSMB, rep.PeakRSSMB, rep.RSSPerCallKB))
}

// appendRow appends a row to the Markdown table in path, writing the
// table's header first when the file is new or empty.
func appendRow(path, header, row string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if st, err := f.Stat(); err == nil && st.Size() == 0 {
		row = header + row
	}
	_, err = io.WriteString(f, row)
	return errors.Join(err, f.Close())
}

// worse is the direction with the higher p99 in the service, nil if
// neither was measured.
func worse(a, b *serviceDelay) *serviceDelay {
	switch {
	case a == nil:
		return b
	case b == nil || a.P99MS >= b.P99MS:
		return a
	}
	return b
}
