package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

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

// Counting a message copies nothing of it: every message of every call
// is counted.
func TestSIPMessageCountingCopiesNothing(t *testing.T) {
	m := New()
	for _, msg := range []sb.SIPMessage{{Message: sipOK}, {Inbound: true, Message: "BYE sip:2000@h SIP/2.0\r\nCSeq: 2 BYE\r\n\r\n"}} {
		m.SIPMessage(msg, "") // the series exists
		if n := testing.AllocsPerRun(100, func() { m.SIPMessage(msg, "") }); n != 0 {
			t.Errorf("%v allocations counting %q, want 0", n, msg.Message[:12])
		}
	}
	for msg, want := range map[string]string{sipOK: "INVITE", "SIP/2.0 200 OK\r\nCSeq: 1\r\n\r\n": "", "SIP/2.0 200 OK\r\nCSeq: 1 BYE x\r\n": "",
		"SIP/2.0 200 OK\r\n\r\nCSeq: 1 BYE\r\n": "", "SIP/2.0 200 OK\r\nCSEQ:\t7\u00a0ACK": "ACK", "": ""} {
		if got := cseqMethod(msg); got != want {
			t.Errorf("cseqMethod(%q) = %q, want %q", msg, got, want)
		}
	}
}

const sipOK = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\nFrom: <sip:3000@192.0.2.1>;tag=1\r\n" +
	"To: <sip:2000@192.0.2.2>;tag=2\r\nCall-ID: bench\r\nCSeq: 1 INVITE\r\nContact: <sip:2000@192.0.2.2>\r\n" +
	"Content-Type: application/sdp\r\nContent-Length: 120\r\n\r\nv=0\r\no=- 1 1 IN IP4 192.0.2.2\r\ns=-\r\nc=IN IP4 192.0.2.2\r\n" +
	"t=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"

// BenchmarkSIPMessage is counting one response, as every message of every
// call is.
func BenchmarkSIPMessage(b *testing.B) {
	m := New()
	msg := sb.SIPMessage{Message: sipOK}
	b.ReportAllocs()
	for b.Loop() {
		m.SIPMessage(msg, "")
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

// HTTP requests are counted by route pattern, method and code from
// bounded sets: a scanner's paths and methods cannot grow them.
func TestHTTPRequestLabelsAreBounded(t *testing.T) {
	m := New()
	m.HTTPRequest("/v1/calls/{id}", "GET", 200, time.Millisecond)
	m.HTTPRequest("/v1/calls/{id}", "GET", 200, time.Millisecond)
	m.HTTPRequest("", "PROPFIND", 404, time.Millisecond)
	m.HTTPRequest("", "BREW", 404, time.Millisecond)
	if got := testutil.ToFloat64(m.httpRequests.WithLabelValues("/v1/calls/{id}", "GET", "200")); got != 2 {
		t.Errorf("GET /v1/calls/{id} 200: %v", got)
	}
	if got := testutil.ToFloat64(m.httpRequests.WithLabelValues("unmatched", "other", "404")); got != 2 {
		t.Errorf("unmatched other 404: %v", got)
	}
	if n := testutil.CollectAndCount(m.httpDuration); n != 2 {
		t.Errorf("%d duration series, want 2", n)
	}
}

// Media counted as calls go on adds up; the call's end adds no media of
// its own (it was counted by then).
func TestCallMedia(t *testing.T) {
	m := New()
	m.CallMedia(sb.MediaCount{Packets: 100, Lost: 2}, sb.MediaCount{Packets: 50})
	m.CallMedia(sb.MediaCount{Packets: 10}, sb.MediaCount{Packets: 5, Lost: 1})
	now := time.Now()
	m.CallEnded(&sb.Call{Status: sb.CallCompleted, AnsweredAt: &now, FromCaller: sb.MediaStats{Packets: 110, Lost: 2}})
	for labels, want := range map[[2]string]float64{{"packets", "from_caller"}: 110, {"packets", "to_caller"}: 55,
		{"lost", "from_caller"}: 2, {"lost", "to_caller"}: 1} {
		c := m.rtpPackets
		if labels[0] == "lost" {
			c = m.rtpLost
		}
		if got := testutil.ToFloat64(c.WithLabelValues(labels[1])); got != want {
			t.Errorf("%v = %v, want %v", labels, got, want)
		}
	}
}

// A queue wait is timed from queued to offered, overflowed or abandoned;
// a call that never queued is not.
func TestQueueWait(t *testing.T) {
	m := New()
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	queued, direct := sb.NewID(), sb.NewID()
	m.CallEvent(&sb.CallEvent{CallID: queued, Type: sb.EventQueued, At: at})
	m.CallEvent(&sb.CallEvent{CallID: direct, Type: sb.EventOffered, At: at})
	m.CallEvent(&sb.CallEvent{CallID: queued, Type: sb.EventOffered, At: at.Add(12 * time.Second)})
	m.CallEvent(&sb.CallEvent{CallID: queued, Type: sb.EventEnded, At: at.Add(60 * time.Second)})
	out, err := testutil.GatherAndCount(m.reg, "switchboard_queue_wait_seconds")
	if err != nil || out != 3 {
		t.Errorf("%d queue wait series (%v), want one per outcome", out, err)
	}
	h := m.queueWait.WithLabelValues("offered").(prometheus.Histogram)
	var pb dto.Metric
	if err := h.Write(&pb); err != nil {
		t.Fatal(err)
	}
	if pb.Histogram.GetSampleCount() != 1 || pb.Histogram.GetSampleSum() != 12 {
		t.Errorf("offered waits: %d, sum %v; want one of 12 s", pb.Histogram.GetSampleCount(), pb.Histogram.GetSampleSum())
	}
	if err := m.queueWait.WithLabelValues("abandoned").(prometheus.Histogram).Write(&pb); err != nil || pb.Histogram.GetSampleCount() != 0 {
		t.Errorf("an offered call's end counted as abandoned too: %v", pb.Histogram.GetSampleCount())
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
