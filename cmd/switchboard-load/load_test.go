package main

import (
	"os"
	"testing"
	"time"

	"github.com/switchboard-voice/switchboard/media"
)

func TestStreamCountsGapsNotTail(t *testing.T) {
	s := &stream{}
	now := time.Now()
	buf := make([]byte, 160)
	for _, seq := range []uint32{1, 2, 4, 5, 5, 3} { // 3 lost, then arrives late; 5 duplicated
		s.add(append([]byte(nil), media.PatternFrame(buf, seq, now.Add(-time.Millisecond))...), now)
	}
	bad := media.PatternFrame(buf, 6, now)
	bad[100] ^= 0xff
	s.add(bad, now)
	var d direction
	d.add(s)
	d.finish()
	if d.Expected != 5 || d.Received != 4 || d.Corrupt != 1 {
		t.Errorf("expected %d received %d corrupt %d, want 5, 4, 1", d.Expected, d.Received, d.Corrupt)
	}
	if d.LossPct != 20 {
		t.Errorf("loss %.1f%%, want 20%%", d.LossPct)
	}
	if d.DelayP50MS < 0.9 || d.DelayP50MS > 1.1 {
		t.Errorf("delay p50 %.2f ms, want 1 ms", d.DelayP50MS)
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond} {
		if got := percentile(ds, p); got != want {
			t.Errorf("p%.0f = %s, want %s", p, got, want)
		}
	}
	if percentile(nil, 50) != 0 {
		t.Error("percentile of nothing is not zero")
	}
}

func TestSampleProcReadsThisProcess(t *testing.T) {
	s, err := sampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSBytes < 1<<20 || s.CPUSeconds < 0 {
		t.Errorf("sample %+v: want at least 1 MB resident", s)
	}
	if _, err := sampleProc(1 << 30); err == nil {
		t.Error("sampling a process that does not exist succeeded")
	}
}
