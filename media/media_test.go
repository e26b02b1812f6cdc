package media

import (
	"testing"
	"time"
)

func packet(pt uint8, seq uint16, ts, ssrc uint32, payload ...byte) []byte {
	return append(AppendHeader(nil, false, pt, seq, ts, ssrc), payload...)
}

func TestParseHeader(t *testing.T) {
	ext := packet(0, 1, 2, 3)
	ext[0] |= 0x10
	ext = append(ext, 0xbe, 0xde, 0, 1, 1, 2, 3, 4, 0xaa) // one-word extension, then payload
	padded := packet(8, 1, 2, 3, 0xaa, 0xbb, 0, 0, 3)
	padded[0] |= 0x20
	csrc := packet(0, 1, 2, 3, 0, 0, 0, 9, 0xcc)
	csrc[0] |= 1

	for _, tt := range []struct {
		name       string
		pkt        []byte
		ok         bool
		start, end int
	}{
		{"plain", packet(0, 7, 160, 42, 1, 2, 3), true, 12, 15},
		{"extension", ext, true, 20, 21},
		{"padding", padded, true, 12, 14},
		{"csrc", csrc, true, 16, 17},
		{"short", []byte{0x80, 0, 0}, false, 0, 0},
		{"version 1", append([]byte{0x40}, packet(0, 1, 2, 3)[1:]...), false, 0, 0},
		{"rtcp receiver report", []byte{0x81, 201, 0, 7, 0, 0, 0, 1, 0, 0, 0, 0}, false, 0, 0},
		{"padding larger than packet", append(packet(0, 1, 2, 3), 40), false, 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "padding larger than packet" {
				tt.pkt[0] |= 0x20
			}
			h, ok := ParseHeader(tt.pkt)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if ok && (h.PayloadOffset != tt.start || h.PayloadEnd != tt.end) {
				t.Fatalf("payload [%d:%d], want [%d:%d]", h.PayloadOffset, h.PayloadEnd, tt.start, tt.end)
			}
		})
	}
	h, _ := ParseHeader(packet(8, 0xfffe, 0xdeadbeef, 0x01020304))
	if h.PayloadType != 8 || h.Seq != 0xfffe || h.Timestamp != 0xdeadbeef || h.SSRC != 0x01020304 {
		t.Fatalf("fields: %+v", h)
	}
}

func TestStatsLossAndJitter(t *testing.T) {
	var s Stats
	s.ClockRate = 8000
	t0 := time.Unix(0, 0)
	// 100 packets, 20 ms apart, every tenth lost, across a sequence wrap.
	for i := 0; i < 100; i++ {
		if i%10 == 5 {
			continue
		}
		seq := uint16(65500 + i)
		h := Header{Seq: seq, Timestamp: uint32(i * 160), SSRC: 1}
		s.Update(&h, 160, t0.Add(time.Duration(i)*20*time.Millisecond))
	}
	if s.Lost() != 10 {
		t.Fatalf("lost = %d, want 10", s.Lost())
	}
	if s.Packets != 90 || s.Bytes != 90*160 {
		t.Fatalf("packets %d bytes %d", s.Packets, s.Bytes)
	}
	if s.Jitter() > time.Millisecond {
		t.Fatalf("jitter %v on a perfectly paced stream", s.Jitter())
	}

	// Arrivals alternating 10 ms early/late converge on ~10 ms jitter.
	var j Stats
	j.ClockRate = 8000
	for i := 0; i < 500; i++ {
		skew := time.Duration(0)
		if i%2 == 1 {
			skew = 10 * time.Millisecond
		}
		h := Header{Seq: uint16(i), Timestamp: uint32(i * 160), SSRC: 2}
		j.Update(&h, 160, t0.Add(time.Duration(i)*20*time.Millisecond+skew))
	}
	if got := j.Jitter(); got < 8*time.Millisecond || got > 11*time.Millisecond {
		t.Fatalf("jitter = %v, want about 10ms", got)
	}
}

// A sender whose sequence numbers restart (a looped announcement, an SBC
// re-anchoring the media) is counted afresh from the restart, as RFC 3550
// A.1 does: the record's loss is what was lost, never negative. Duplicates
// do not make it negative either.
func TestStatsSurviveSequenceRestart(t *testing.T) {
	t0 := time.Unix(0, 0)
	for _, c := range []struct {
		name string
		seqs []uint16
		lost int64
	}{
		{"looped 7 s announcement, twice", append(seqRange(1000, 350), seqRange(1000, 350)...), 0},
		{"restart backwards with a gap after it", append(seqRange(5000, 100), append(seqRange(10, 50), seqRange(62, 40)...)...), 2},
		{"jump ahead (re-anchored)", append(seqRange(100, 100), seqRange(40000, 100)...), 0},
		{"a lone stray packet is not a restart", append(append(seqRange(100, 50), 30000), seqRange(150, 50)...), 0},
		{"duplicates", append(seqRange(0, 100), seqRange(50, 20)...), 0},
		{"loss before a restart is kept", append(append(seqRange(1000, 40), seqRange(1045, 55)...), seqRange(7, 100)...), 5},
	} {
		var s Stats
		s.ClockRate = 8000
		for i, seq := range c.seqs {
			h := Header{Seq: seq, Timestamp: uint32(i * 160), SSRC: 9}
			s.Update(&h, 160, t0.Add(time.Duration(i)*20*time.Millisecond))
		}
		if got := s.Lost(); got != c.lost {
			t.Errorf("%s: lost %d, want %d", c.name, got, c.lost)
		}
	}
}

// seqRange is n sequence numbers from first on.
func seqRange(first uint16, n int) []uint16 {
	out := make([]uint16, n)
	for i := range out {
		out[i] = first + uint16(i)
	}
	return out
}

func TestRewriterContinuesAcrossStreams(t *testing.T) {
	rw := NewRewriter(0xabc, 1000, 50000, 8000)
	now := time.Unix(100, 0)
	var lastSeq uint16
	var lastTS uint32
	send := func(ssrc uint32, seq uint16, ts uint32, at time.Time) {
		p := packet(0, seq, ts, ssrc, 0xff)
		h, _ := ParseHeader(p)
		rw.Rewrite(p, &h, at)
		got, _ := ParseHeader(p)
		if got.SSRC != 0xabc {
			t.Fatalf("ssrc %x", got.SSRC)
		}
		lastSeq, lastTS = got.Seq, got.Timestamp
	}
	send(1, 7, 900, now)
	if lastSeq != 1000 || lastTS != 50000 {
		t.Fatalf("first packet: seq %d ts %d", lastSeq, lastTS)
	}
	send(1, 8, 1060, now.Add(20*time.Millisecond))
	if lastSeq != 1001 || lastTS != 50160 {
		t.Fatalf("second packet: seq %d ts %d", lastSeq, lastTS)
	}
	// A new call's stream, 2 s later, follows on.
	send(2, 40000, 123456, now.Add(2020*time.Millisecond))
	if lastSeq != 1002 || lastTS != 50160+16000 {
		t.Fatalf("after stream change: seq %d ts %d, want 1002 %d", lastSeq, lastTS, 50160+16000)
	}
	// The next call's peer reuses that SSRC and its sequence numbers (a
	// replayed capture): after Restart it follows on all the same, where
	// repeating the numbers already sent would be dropped as SRTP replays.
	rw.Restart()
	send(2, 40000, 123456, now.Add(4020*time.Millisecond))
	if lastSeq != 1003 || lastTS != 50160+16000+16000 {
		t.Fatalf("after restart: seq %d ts %d, want 1003 %d", lastSeq, lastTS, 50160+32000)
	}
	send(2, 40001, 123616, now.Add(4040*time.Millisecond))
	if lastSeq != 1004 {
		t.Fatalf("after restart, the stream goes on: seq %d", lastSeq)
	}
}

func TestG711RoundTrip(t *testing.T) {
	// Every μ-law value survives μ→linear→μ, and A-law likewise.
	for i := 0; i < 256; i++ {
		if got := LinearToUlaw(UlawToLinear(byte(i))); got != byte(i) && !(i == 0x7f || i == 0xff) {
			t.Fatalf("μ-law %#x → %#x", i, got)
		}
		if got := LinearToAlaw(AlawToLinear(byte(i))); got != byte(i) {
			t.Fatalf("A-law %#x → %#x", i, got)
		}
	}
	// Law conversion keeps the sample close: within one quantisation step.
	for _, v := range []int16{0, 100, -100, 1000, -1000, 8000, -8000, 30000, -30000} {
		u := []byte{LinearToUlaw(v)}
		UlawToAlaw(u)
		got := AlawToLinear(u[0])
		if d := int(got) - int(v); d > int(abs(v))/8+16 || -d > int(abs(v))/8+16 {
			t.Fatalf("%d → A-law → %d", v, got)
		}
	}
}

func abs(v int16) int16 {
	if v < 0 {
		return -v
	}
	return v
}

func TestDTMF(t *testing.T) {
	p := AppendDTMF(nil, DTMFEvent{Event: 11, End: true, Volume: 10, Duration: 800})
	e, ok := ParseDTMF(p)
	if !ok || e.Event != 11 || !e.End || e.Volume != 10 || e.Duration != 800 {
		t.Fatalf("%+v %v", e, ok)
	}
	if DTMFDigit(11) != '#' || DTMFCode('#') != 11 || DTMFDigit(16) != 0 || DTMFCode('x') != -1 {
		t.Fatal("digit table")
	}
	if _, ok := ParseDTMF([]byte{1, 2}); ok {
		t.Fatal("short payload accepted")
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(packet(0, 1, 2, 3, 4, 5))
	f.Add([]byte{0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xbe, 0xde, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := ParseHeader(b)
		if ok && (h.PayloadOffset > h.PayloadEnd || h.PayloadEnd > len(b)) {
			t.Fatalf("payload [%d:%d] of %d bytes", h.PayloadOffset, h.PayloadEnd, len(b))
		}
	})
}

func TestPatternFrame(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	frame := PatternFrame(make([]byte, 160), 42, at)
	seq, sent, ok := CheckPatternFrame(frame)
	if !ok || seq != 42 || !sent.Equal(at) {
		t.Fatalf("CheckPatternFrame = %d, %v, %v; want 42, %v, true", seq, sent, ok, at)
	}
	for _, i := range []int{0, 5, 12, 100, 159} {
		bad := append([]byte(nil), frame...)
		bad[i] ^= 0x01
		if _, _, ok := CheckPatternFrame(bad); ok && i != 12 {
			t.Errorf("frame with byte %d flipped passed the check", i)
		}
	}
	if _, _, ok := CheckPatternFrame(frame[:10]); ok {
		t.Error("short frame passed the check")
	}
	other := PatternFrame(make([]byte, 160), 43, at)
	if string(other[16:]) == string(frame[16:]) {
		t.Error("frames of different sequence numbers have the same filler")
	}
}
