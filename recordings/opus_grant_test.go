package recordings

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
)

// An Opus recording is made as it is read: a Range request decrypts only
// the segments it needs once the file's layout is known, and a grant
// revoked mid-stream stops the stream within about one segment, as for
// WAV.
func TestOpusStreamHonoursTheGrant(t *testing.T) {
	w := mustWorld(t)
	c, rec := w.begin(t, sb.Opus)
	const seconds = 60
	for i := 0; i < seconds*50; i++ {
		at := rec.rec.StartedAt.Add(time.Duration(i) * 20 * time.Millisecond)
		rec.Tap(true, opusPacket(i, 0), at)
		rec.Tap(false, opusPacket(i, 1), at)
		if i%50 == 49 { // 100 records: the recorder is woken at once
			drained(rec.r)
		}
	}
	w.now = w.start.Add(seconds * time.Second)
	row, err := rec.Finish(w.admin)
	if err != nil {
		t.Fatal(err)
	}
	g := w.grant(t, c.ID)
	player := w.player
	open := func() (sb.AudioFile, *OpusAudio) {
		t.Helper()
		f, err := player.OpenAudio(w.admin, g.ID, sb.AccessPlay, 0, 0, "test")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f, f.(*stream).file.(*OpusAudio)
	}
	first, a := open()
	if a.Decrypted != row.Segments {
		t.Errorf("the first open decrypted %d segments of %d to lay the file out", a.Decrypted, row.Segments)
	}
	whole, err := io.ReadAll(io.NewSectionReader(first, 0, first.Size()))
	if err != nil {
		t.Fatal(err)
	}
	packets, _, _ := oggPages(t, whole)
	if len(packets) != 2+seconds*50 {
		t.Fatalf("%d packets, want 2 headers and %d", len(packets), seconds*50)
	}
	for i, p := range packets[2:] {
		caller, operator := splitMultistream(t, p)
		if !bytes.Equal(caller, opusPacket(i, 0)) || !bytes.Equal(operator, opusPacket(i, 1)) {
			t.Fatalf("step %d is not what each side sent", i)
		}
	}

	// The layout is kept sealed in the recording's row: another player
	// (another process) opens the recording without decrypting it.
	sealed := w.row(t, rec.rec.ID).OggLayout
	plain := binary.BigEndian.AppendUint32(nil, uint32(a.offs[1]-a.offs[0]))
	if sealed == nil || bytes.Contains(sealed, plain) {
		t.Errorf("the row's layout: %x, want it sealed", sealed)
	}
	if _, a := open(); a.Decrypted != 0 {
		t.Errorf("opening again decrypted %d segments", a.Decrypted)
	}
	player = NewPlayer(w.player.grants, w.spool, w.ring, WithLayouts(w.records, nil))

	// A Range request in the middle, on a new open: only the segments of
	// its second or so are decrypted.
	f, a := open()
	if a.Decrypted != 0 {
		t.Errorf("another player's open decrypted %d segments", a.Decrypted)
	}
	off := a.offs[30]
	got := make([]byte, a.offs[31]-off)
	if _, err := f.ReadAt(got, off); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, whole[off:off+int64(len(got))]) {
		t.Error("a range made alone differs from the same bytes of the whole file")
	}
	if a.Decrypted > 3 || a.Decrypted == 0 {
		t.Errorf("a range of one second decrypted %d segments of %d", a.Decrypted, row.Segments)
	}
	t.Logf("a one-second range decrypted %d of %d segments", a.Decrypted, row.Segments)

	// Revoked mid-stream: the stream stops within a segment and the slack
	// around it.
	f, a = open()
	buf := make([]byte, 4096)
	var n int64
	for n < a.offs[10] {
		k, err := f.ReadAt(buf, n)
		if err != nil {
			t.Fatal(err)
		}
		n += int64(k)
	}
	if _, err := metadata.NewGrantStore(w.db).RevokeGrant(w.admin, g.ID); err != nil {
		t.Fatal(err)
	}
	revokedAt := n
	var stop error
	for n < f.Size() && stop == nil {
		var k int
		k, stop = f.ReadAt(buf, n)
		n += int64(k)
	}
	if sb.ErrorCode(stop) != sb.EFORBIDDEN {
		t.Fatalf("reading on after revocation: %v at byte %d of %d", stop, n, f.Size())
	}
	perSegment := float64(seconds) / float64(row.Segments)
	heard := secondAt(a, n) - secondAt(a, revokedAt)
	if float64(heard) > perSegment+2 {
		t.Errorf("%d s more were served after revocation; a segment holds %.1f s", heard, perSegment)
	}
	t.Logf("after revocation %d s more were served (a segment holds %.1f s)", heard, perSegment)
	if err := w.svc.Destroy(w.admin, w.row(t, rec.rec.ID), "retention period ended"); err != nil {
		t.Fatal(err)
	}
	if r := w.row(t, rec.rec.ID); r.OggLayout != nil {
		t.Error("a destroyed recording keeps its layout")
	}
}

// secondAt is the second of the file that byte off falls in.
func secondAt(a *OpusAudio, off int64) int {
	s := 0
	for s+1 < len(a.offs) && a.offs[s+1] <= off {
		s++
	}
	return s
}
