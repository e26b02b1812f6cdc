package recordings

import (
	"encoding/binary"
	"io"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
)

// A recording cut by a crash mid-call is recovered at the next start:
// recorded as truncated with its whole segments, each segment's start and
// the real end of its audio, and played through a grant, frame by frame,
// up to its last whole segment.
func TestRecordingCutByACrashPlaysToItsLastWholeSegment(t *testing.T) {
	w := mustWorld(t)
	c, rec := w.begin(t, sb.PCMA)
	const frames = 700 // 14 s: three whole segments and part of a fourth
	talk(rec, 0, frames, 160)
	crash(rec)

	// The next start.
	again, err := NewSpoolStore(w.spoolAt, w.backend)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := again.Recover()
	if err != nil || len(keys) != 1 {
		t.Fatalf("Recover: %v, %v", keys, err)
	}
	if n, err := w.service(again).Recovered(w.admin, keys); n != 1 || err != nil {
		t.Fatalf("Recovered: %d, %v", n, err)
	}
	if pending, err := again.Flush(w.admin); pending != 0 || err != nil {
		t.Fatalf("Flush: %d, %v", pending, err)
	}
	perSegment := segmentPayload / (recordHeader + 160)
	whole := 2 * frames / perSegment
	kept := whole * perSegment / 2 // frames in the whole segments
	row, err := w.records.FindRecordingByID(w.admin, w.tenant.ID, rec.rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if row.Status != sb.RecordingFailed || !row.Truncated || row.Segments != whole || len(row.SegmentStarts) != whole ||
		row.DurationMS != int64(kept*20) || row.EndedAt == nil || !row.EndedAt.Equal(row.StartedAt.Add(time.Duration(kept)*20*time.Millisecond)) {
		t.Fatalf("recovered record: status %s, truncated %v, %d segments (%d starts), %d ms; want failed, truncated, %d segments, %d ms",
			row.Status, row.Truncated, row.Segments, len(row.SegmentStarts), row.DurationMS, whole, kept*20)
	}

	g := w.grant(t, c.ID)
	player := NewPlayer(w.player.grants, again, w.ring)
	f, err := player.OpenAudio(w.admin, g.ID, sb.AccessPlay, 0, 0, "test")
	if err != nil {
		t.Fatalf("playing the recovered recording: %v", err)
	}
	defer f.Close()
	if want := int64(44 + kept*160*4); f.Size() != want {
		t.Fatalf("WAV of %d bytes, want %d: %d frames", f.Size(), want, kept)
	}
	wav, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
	if err != nil {
		t.Fatalf("reading to the end: %v", err)
	}
	for i := 0; i < kept; i++ {
		for ch := uint8(0); ch < 2; ch++ {
			for _, s := range []int{i * 160, i*160 + 159} {
				got := int16(binary.LittleEndian.Uint16(wav[44+s*4+int(ch)*2:]))
				if want := media.AlawToLinear(frameByte(i, ch)); got != want {
					t.Fatalf("frame %d, channel %d, sample %d: %d, want %d", i, ch, s, got, want)
				}
			}
		}
	}
}

// A WAV of a recording longer than 4 GiB of samples (37 hours of G.711)
// says so in the way players understand, and its frames are placed where
// they belong: no size or offset wraps.
func TestLongRecordingDoesNotOverflow(t *testing.T) {
	key, m := make([]byte, 32), testMeta()
	obj, starts := recordCall(t, key, m, 1)
	const long = 400 * time.Hour
	a := openAudio(t, obj, key, m, int(long/time.Second), starts, 0, 0)
	if want := int64(44) + int64(long/time.Second)*8000*4; a.Size() != want {
		t.Fatalf("size %d, want %d", a.Size(), want)
	}
	h := readRange(t, a, 0, 44)
	if binary.LittleEndian.Uint32(h[4:]) != 0xFFFFFFFF || binary.LittleEndian.Uint32(h[40:]) != 0xFFFFFFFF {
		t.Errorf("RIFF and data sizes %d, %d: want 0xFFFFFFFF past 4 GiB", binary.LittleEndian.Uint32(h[4:]), binary.LittleEndian.Uint32(h[40:]))
	}
	if f := a.frame(long - time.Second); f != int64(long/time.Second-1)*8000 {
		t.Errorf("frame at %s: %d", long-time.Second, f)
	}
	if d := a.at(int64(long/time.Second-1) * 8000); d != long-time.Second {
		t.Errorf("time of frame: %s", d)
	}
	if from, to := a.Span(a.Size()-8000*4, 8000*4); from != long-time.Second || to != long {
		t.Errorf("the last second's bytes span %s–%s", from, to)
	}
	tail := readRange(t, a, a.Size()-400, 400)
	for i, b := range tail {
		if b != 0 {
			t.Fatalf("byte %d of the silent end is %d", i, b)
		}
	}
	head := readRange(t, a, 44, 4)
	if got := int16(binary.LittleEndian.Uint16(head)); got != media.AlawToLinear(frameByte(0, 0)) {
		t.Errorf("first sample %d", got)
	}
}
