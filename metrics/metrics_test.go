package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	sb "github.com/switchboard-voice/switchboard"
)

// SIP messages are counted by method and code from fixed sets: whatever a
// scanner sends cannot grow the label values.
func TestSIPMessageLabelsAreBounded(t *testing.T) {
	m := New()
	for _, msg := range []sb.SIPMessage{
		{Inbound: true, Message: "INVITE sip:2000@h SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\n"},
		{Message: "SIP/2.0 180 Ringing\r\nCSeq: 1 INVITE\r\n\r\n"},
		{Message: "SIP/2.0 200 OK\r\ncseq:  2  BYE\r\n\r\n"},
		{Inbound: true, Message: "HACKME1234567 sip:x SIP/2.0\r\n\r\n"},
		{Inbound: true, Message: "HACKME7654321 sip:x SIP/2.0\r\n\r\n"},
		{Message: "SIP/2.0 9999 Odd\r\nCSeq: 3 WHATEVER\r\n\r\n"},
	} {
		m.SIPMessage(msg, "")
	}
	for labels, want := range map[[3]string]float64{
		{"in", "INVITE", ""}: 1, {"out", "INVITE", "180"}: 1, {"out", "BYE", "200"}: 1, {"in", "other", ""}: 2, {"out", "", "other"}: 1,
	} {
		if got := testutil.ToFloat64(m.sip.WithLabelValues(labels[:]...)); got != want {
			t.Errorf("%v = %v, want %v", labels, got, want)
		}
	}
	if n := testutil.CollectAndCount(m.sip); n != 5 {
		t.Errorf("%d series, want 5", n)
	}
}

// A call's end is counted by outcome, and its media added to the totals.
func TestCallEnded(t *testing.T) {
	m := New()
	now := time.Now()
	m.CallEnded(&sb.Call{Status: sb.CallCompleted, AnsweredAt: &now, TimeToAnswerMS: 1500,
		FromCaller: sb.MediaStats{Packets: 100, Lost: 3, MOS: 4.3}, ToCaller: sb.MediaStats{Packets: 90, Lost: -1}})
	m.CallEnded(&sb.Call{Status: sb.CallNoAnswer, FailureLeg: sb.FailedOnBrowser, FailureStage: sb.StageRinging})
	if got := testutil.ToFloat64(m.calls.WithLabelValues("completed", "", "")); got != 1 {
		t.Errorf("completed calls %v", got)
	}
	if got := testutil.ToFloat64(m.calls.WithLabelValues("no-answer", "ringing", "browser")); got != 1 {
		t.Errorf("unanswered calls %v", got)
	}
	if got := testutil.ToFloat64(m.rtpLost.WithLabelValues("to_caller")); got != 0 {
		t.Errorf("negative loss (duplicates) counted as %v", got)
	}
	if got := testutil.ToFloat64(m.answered); got != 1 {
		t.Errorf("answered %v", got)
	}
	out, err := testutil.GatherAndCount(m.reg, "switchboard_call_mos")
	if err != nil || out != 1 {
		t.Errorf("MOS series %d, %v: only the direction with a MOS", out, err)
	}
}

// A counter kept elsewhere is exposed as a counter, one series per label
// value.
func TestCounters(t *testing.T) {
	m := New()
	m.Counters("switchboard_rtp_dropped_packets_total", "RTP packets dropped.", "reason",
		func() map[string]uint64 { return map[string]uint64{"foreign_source": 60, "probation": 3} })
	want := `# HELP switchboard_rtp_dropped_packets_total RTP packets dropped.
# TYPE switchboard_rtp_dropped_packets_total counter
switchboard_rtp_dropped_packets_total{reason="foreign_source"} 60
switchboard_rtp_dropped_packets_total{reason="probation"} 3
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "switchboard_rtp_dropped_packets_total"); err != nil {
		t.Error(err)
	}
}

// BenchmarkRelayDelay is the cost the delay histogram adds to each relayed
// packet. Goal: zero allocations.
func BenchmarkRelayDelay(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.RelayDelay(i%2 == 0, time.Duration(i%5000)*time.Microsecond)
	}
}
