package sip

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

const streamInvite = "INVITE sip:2000@h SIP/2.0\r\nCall-ID: a1\r\nl: 5\r\n\r\nv=0\r\n"
const streamBye = "BYE sip:2000@h SIP/2.0\r\ni: a1\r\nContent-Length: 0\r\n\r\n"

// streamConn is a capturedConn whose stream is fed by the test.
func streamConn(got *[]string) *capturedConn {
	c := newCapture(time.Now, func(m sb.SIPMessage, callID string) { *got = append(*got, m.Message) })
	c.unknown = sb.TracePolicy{} // the messages as cut, not as a tenant lets them out
	return &capturedConn{c: c, transport: "tcp"}
}

// What the exporter (HEP) gets follows the call's tenant's trace policy
// once the call's trunk is known, and the strictest one before that and
// for messages of no known call; logging masks numbers whatever the policy.
func TestExportFollowsTheTenantsPolicy(t *testing.T) {
	var got []string
	c := newCapture(time.Now, func(m sb.SIPMessage, callID string) { got = append(got, callID+" "+m.Message) })
	invite := func(id string) []byte {
		return []byte("INVITE sip:2000@h SIP/2.0\r\nCall-ID: " + id + "\r\nFrom: <sip:+15550001111@h>\r\nContent-Length: 5\r\n\r\nv=0\r\n")
	}
	ok := func(id string) []byte {
		return []byte("SIP/2.0 200 OK\r\nCall-ID: " + id + "\r\nFrom: <sip:+15550001111@h>\r\nContent-Length: 5\r\n\r\nv=0\r\n")
	}
	var logged bytes.Buffer
	c.record(invite("open"), time.Now(), true, "udp", ap(), ap())
	c.setPolicy("open", sb.TracePolicy{})
	c.setLogging("open", slog.New(slog.NewTextHandler(&logged, nil)), sb.TracePolicy{})
	c.record(ok("open"), time.Now(), false, "udp", ap(), ap())
	c.record(invite("masked"), time.Now(), true, "udp", ap(), ap())
	c.setPolicy("masked", sb.TracePolicy{MaskNumbers: true})
	c.record(ok("masked"), time.Now(), false, "udp", ap(), ap())
	c.record([]byte("OPTIONS sip:+15550001111@h SIP/2.0\r\nCall-ID: ping\r\n\r\n"), time.Now(), true, "udp", ap(), ap())
	want := []string{
		"open INVITE sip:2000@h SIP/2.0\r\nCall-ID: open\r\nFrom: <sip:+*******1111@h>\r\nContent-Length: 5\r\n\r\n[body removed by the tenant's trace policy: 5 bytes]",
		"open " + string(ok("open")),
		"masked INVITE sip:2000@h SIP/2.0\r\nCall-ID: masked\r\nFrom: <sip:+*******1111@h>\r\nContent-Length: 5\r\n\r\n[body removed by the tenant's trace policy: 5 bytes]",
		"masked SIP/2.0 200 OK\r\nCall-ID: masked\r\nFrom: <sip:+*******1111@h>\r\nContent-Length: 5\r\n\r\nv=0\r\n",
		"ping OPTIONS sip:+*******1111@h SIP/2.0\r\nCall-ID: ping\r\n\r\n",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("exported:\n%q\nwant:\n%q", got, want)
	}
	if strings.Count(logged.String(), "sip message") != 2 || strings.Contains(logged.String(), "5550001111") {
		t.Errorf("logged, by a policy that masks nothing:\n%s", logged.String())
	}
}

// A message's Call-ID keys its trace and goes with it to the exporter
// whether or not the message held secrets to redact, and the datagram it
// came in may be reused at once.
func TestCaptureKeysByCallIDOfTheWire(t *testing.T) {
	var ids []string
	c := newCapture(time.Now, func(_ sb.SIPMessage, callID string) { ids = append(ids, callID) })
	buf := []byte("INVITE sip:2000@h SIP/2.0\r\ni:  plain@h \r\nContent-Length: 0\r\n\r\n")
	c.record(buf, time.Now(), true, "udp", ap(), ap())
	secret := []byte("INVITE sip:2000@h SIP/2.0\r\nProxy-Authorization: Digest username=\"u\", response=\"0123abcd\"\r\n" +
		"Call-ID: secret@h\r\nContent-Length: 0\r\n\r\n")
	c.record(secret, time.Now(), true, "udp", ap(), ap())
	clear(buf)
	clear(secret)
	if strings.Join(ids, " ") != "plain@h secret@h" {
		t.Errorf("exported with Call-IDs %q", ids)
	}
	for _, id := range []string{"plain@h", "secret@h"} {
		if m := c.messages(id); len(m) != 1 || strings.Contains(m[0].Message, "0123abcd") || !strings.Contains(m[0].Message, id) {
			t.Errorf("trace of %s: %v", id, m)
		}
	}
}

// A TCP stream is cut into whole messages by Content-Length (full or
// compact), however it arrives: byte by byte, or two messages at once,
// with keepalives between.
func TestStreamIsCutIntoMessages(t *testing.T) {
	stream := streamInvite + "\r\n\r\n" + streamBye
	for _, chunk := range []int{1, 7, len(stream)} {
		var got []string
		s := streamConn(&got)
		for i := 0; i < len(stream); i += chunk {
			s.in = append(s.in, stream[i:min(i+chunk, len(stream))]...)
			s.split()
		}
		if len(got) != 2 || got[0] != streamInvite || got[1] != streamBye || len(s.in) != 0 {
			t.Errorf("chunks of %d: %q, left %q", chunk, got, s.in)
		}
	}
}

// The trace of a call keeps time order, and an INVITE's first message
// starts it; strays of unknown calls are not kept.
func TestCaptureKeepsCallsInOrder(t *testing.T) {
	c := newCapture(time.Now, nil)
	t0 := time.Now()
	c.record([]byte("OPTIONS sip:h SIP/2.0\r\nCall-ID: ping\r\n\r\n"), t0, true, "udp", ap(), ap())
	c.record([]byte(streamInvite), t0, true, "udp", ap(), ap())
	c.record([]byte("SIP/2.0 200 OK\r\nCall-ID: a1\r\n\r\n"), t0.Add(2*time.Millisecond), false, "udp", ap(), ap())
	c.record([]byte("SIP/2.0 100 Trying\r\nCall-ID: a1\r\n\r\n"), t0.Add(time.Millisecond), false, "udp", ap(), ap())
	c.claim("a1")
	got := c.release("a1")
	var lines []string
	for _, m := range got {
		lines = append(lines, strings.SplitN(m.Message, "\r\n", 2)[0])
	}
	if strings.Join(lines, "|") != "INVITE sip:2000@h SIP/2.0|SIP/2.0 100 Trying|SIP/2.0 200 OK" {
		t.Errorf("trace %q", lines)
	}
	if c.messages("ping") != nil || len(c.calls) != 0 {
		t.Errorf("strays kept: %v", c.calls)
	}
}

func ap() netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 5060) }

func FuzzStreamSplit(f *testing.F) {
	f.Add([]byte(streamInvite+streamBye), 3)
	f.Add([]byte("INVITE x SIP/2.0\r\nContent-Length: 99999999999\r\n\r\n"), 1)
	f.Add([]byte("\r\n\r\nCall-ID: x\r\nl: -4\r\n\r\n"), 2)
	f.Fuzz(func(t *testing.T, stream []byte, chunk int) {
		if chunk <= 0 || chunk > 64 {
			chunk = 16
		}
		var got []string
		s := streamConn(&got)
		for i := 0; i < len(stream); i += chunk {
			s.in = append(s.in, stream[i:min(i+chunk, len(stream))]...)
			s.split()
			if len(s.in) > maxStream+chunk {
				t.Fatalf("buffered %d bytes", len(s.in))
			}
		}
		total := 0
		for _, m := range got {
			total += len(m)
			if !bytes.Contains([]byte(m), []byte("\r\n\r\n")) {
				t.Fatalf("a message without its header end: %q", m)
			}
		}
		if total > len(stream) {
			t.Fatalf("recorded %d bytes of a %d-byte stream", total, len(stream))
		}
	})
}

func FuzzHeaderValue(f *testing.F) {
	f.Add([]byte(streamInvite), "call-id", "i")
	f.Add([]byte("x\r\n:\r\n i : v\r\n\r\n"), "i", "")
	f.Fuzz(func(t *testing.T, raw []byte, name, compact string) {
		v := headerValue(raw, name, compact)
		if len(v) > len(raw) || strings.Contains(v, "\r\n") {
			t.Fatalf("headerValue gave %q", v)
		}
	})
}

// The messages of INVITEs nobody claimed are kept within a byte budget,
// per Call-ID and in all: large retransmitted INVITEs from a scanner cost
// bounded memory.
func TestUnclaimedTracesAreBoundedInBytes(t *testing.T) {
	c := newCapture(time.Now, nil)
	big := "INVITE sip:2000@h SIP/2.0\r\nCall-ID: %s\r\nContent-Length: 60000\r\n\r\n" + strings.Repeat("a", 60000)
	kept := func(id string) (n int) {
		for _, m := range c.messages(id) {
			n += len(m.Message)
		}
		return n
	}
	for range maxTraceMessages {
		c.record([]byte(fmt.Sprintf(big, "one")), time.Now(), true, "udp", ap(), ap())
	}
	if n := kept("one"); n == 0 || n > maxUnclaimedBytes {
		t.Errorf("one Call-ID kept %d bytes, want some and at most %d", n, maxUnclaimedBytes)
	}
	total := 0
	for i := range 600 {
		id := fmt.Sprint("many-", i)
		c.record([]byte(fmt.Sprintf(big, id)), time.Now(), true, "udp", ap(), ap())
		total += kept(id)
	}
	if total > maxUnclaimedTotal {
		t.Errorf("600 Call-IDs kept %d bytes, want at most %d", total, maxUnclaimedTotal)
	}
	if n := len(c.calls); n > maxUnclaimedTotal/60000+1 {
		t.Errorf("%d Call-IDs tracked beyond the budget", n)
	}
	// A claimed call's trace is not held to the unclaimed budget, and
	// frees its share of it.
	c.claim("one")
	c.record([]byte(fmt.Sprintf(big, "one")), time.Now(), true, "udp", ap(), ap())
	if n := kept("one"); n <= maxUnclaimedBytes {
		t.Errorf("a claimed call's trace kept %d bytes", n)
	}
}

// An INVITE nobody claimed is forgotten once it is older than
// unclaimedTTL, at the next INVITE; a claimed call's trace stays however
// old, and one claimed after its INVITE is no longer due to go.
func TestUnclaimedTracesExpire(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newCapture(func() time.Time { return now }, nil)
	invite := func(id string, at time.Time) {
		c.record([]byte("INVITE sip:2000@h SIP/2.0\r\nCall-ID: "+id+"\r\nContent-Length: 0\r\n\r\n"), at, true, "udp", ap(), ap())
	}
	invite("refused", now)
	invite("taken", now)
	c.claim("taken")
	c.claim("placed") // a call we place: claimed before its INVITE goes
	invite("late", now.Add(unclaimedTTL/2))
	invite("next", now.Add(unclaimedTTL+time.Second))
	for id, want := range map[string]bool{"refused": false, "taken": true, "placed": true, "late": true, "next": true} {
		if _, ok := c.calls[id]; ok != want {
			t.Errorf("%s kept: %v, want %v", id, ok, want)
		}
	}
	invite("last", now.Add(2*unclaimedTTL))
	if _, ok := c.calls["late"]; ok {
		t.Error("late kept past its time")
	}
	if c.pending.Len() != 2 || c.unclaimed != len(c.calls["next"].msgs[0].Message)+len(c.calls["last"].msgs[0].Message) {
		t.Errorf("%d traces pending, %d bytes unclaimed; want next and last", c.pending.Len(), c.unclaimed)
	}
	if got := c.release("taken"); len(got) != 1 {
		t.Errorf("the claimed call's trace has %d messages, want its INVITE", len(got))
	}
}

// BenchmarkCaptureNewCall is a new call's INVITE recorded while 2,000
// calls are in progress: what it costs must not grow with them.
func BenchmarkCaptureNewCall(b *testing.B) {
	c := newCapture(time.Now, nil)
	for i := range 2000 {
		id := fmt.Sprint("live-", i)
		c.claim(id)
	}
	raws := make([][]byte, 4096)
	for i := range raws {
		raws[i] = []byte(fmt.Sprintf("INVITE sip:2000@h SIP/2.0\r\nCall-ID: new-%d\r\nContent-Length: 0\r\n\r\n", i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		raw := raws[i%len(raws)]
		c.record(raw, time.Now(), true, "udp", ap(), ap())
		c.release(headerValue(raw, "call-id", "i"))
	}
}

// BenchmarkCaptureCall is a whole simple call's trace, as every call
// records it: INVITE, 100, 180, 200, ACK, BYE and its 200, each exported
// (the metrics count every message) under the strictest policy, then the
// trace released for storing.
func BenchmarkCaptureCall(b *testing.B) {
	c := newCapture(time.Now, func(sb.SIPMessage, string) {})
	head := "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK%d\r\nFrom: <sip:+4930123456@192.0.2.1>;tag=1\r\n" +
		"To: <sip:2000@192.0.2.2>%s\r\nCall-ID: call-%d\r\nCSeq: %s\r\nContent-Length: 0\r\n\r\n"
	call := func(n int) [][]byte {
		msg := func(start, toTag, cseq string) []byte {
			return []byte(start + "\r\n" + fmt.Sprintf(head, n, toTag, n, cseq))
		}
		return [][]byte{msg("INVITE sip:2000@192.0.2.2 SIP/2.0", "", "1 INVITE"), msg("SIP/2.0 100 Trying", "", "1 INVITE"),
			msg("SIP/2.0 180 Ringing", ";tag=2", "1 INVITE"), msg("SIP/2.0 200 OK", ";tag=2", "1 INVITE"),
			msg("ACK sip:2000@192.0.2.2 SIP/2.0", ";tag=2", "1 ACK"), msg("BYE sip:2000@192.0.2.2 SIP/2.0", ";tag=2", "2 BYE"),
			msg("SIP/2.0 200 OK", ";tag=2", "2 BYE")}
	}
	calls := make([][][]byte, 1024)
	for i := range calls {
		calls[i] = call(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msgs := calls[i%len(calls)]
		id := headerValue(msgs[0], "call-id", "i")
		for j, raw := range msgs {
			c.record(raw, time.Now(), j%2 == 0, "udp", ap(), ap())
			if j == 0 {
				c.claim(id)
			}
		}
		if got := c.release(id); len(got) != len(msgs) {
			b.Fatalf("%d messages kept, want %d", len(got), len(msgs))
		}
	}
}
