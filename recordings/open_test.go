package recordings

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// An object shorter than its record says is refused when it is opened,
// before a byte is served: cut at a segment boundary (every segment left
// opens) or inside one.
func TestTruncationCaughtAtOpen(t *testing.T) {
	w := mustWorld(t)
	c, rec := w.begin(t, sb.PCMU)
	perSegment := segmentPayload / (recordHeader + 160)
	talk(rec, 0, 3*perSegment/2, 160) // three segments
	w.now = w.start.Add(time.Duration(3*perSegment/2) * 20 * time.Millisecond)
	if _, err := rec.Finish(w.admin); err != nil {
		t.Fatal(err)
	}
	row := w.row(t, rec.rec.ID)
	obj, err := w.backend.Open(w.admin, row.ObjectKey)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := io.ReadAll(io.NewSectionReader(obj, 0, obj.Size()))
	if err != nil || int64(len(whole)) != row.SizeBytes || row.Segments != 3 {
		t.Fatalf("stored %d bytes (%v), record says %d in %d segments", len(whole), err, row.SizeBytes, row.Segments)
	}
	g := w.grant(t, c.ID)
	put := func(b []byte) {
		up, err := w.backend.Create(w.admin, row.ObjectKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := up.Complete(w.admin); err != nil {
			t.Fatal(err)
		}
	}
	for name, cut := range map[string][]byte{
		"at a segment boundary": whole[:headerSize+2*SegmentSize],
		"inside a segment":      whole[:len(whole)-100],
	} {
		put(cut)
		if f, err := w.player.OpenAudio(w.admin, g.ID, sb.AccessPlay, 0, 0, "test"); !errors.Is(err, ErrTruncated) {
			if f != nil {
				f.Close()
			}
			t.Errorf("cut %s: OpenAudio = %v, want ErrTruncated at open", name, err)
		}
	}
	// Even with a record that does not know its size (made before sizes
	// were kept), a complete recording cut at a boundary is caught: its
	// final segment is not sealed as the last.
	put(whole[:headerSize+2*SegmentSize])
	row.SizeBytes, row.Segments = 0, 0
	if err := w.records.UpdateRecording(w.admin, row); err != nil {
		t.Fatal(err)
	}
	if _, err := w.player.OpenAudio(w.admin, g.ID, sb.AccessPlay, 0, 0, "test"); !errors.Is(err, ErrTruncated) {
		t.Errorf("cut, size unknown: OpenAudio = %v, want ErrTruncated", err)
	}
	put(whole)
	f, err := w.player.OpenAudio(w.admin, g.ID, sb.AccessPlay, 0, 0, "test")
	if err != nil {
		t.Fatalf("the whole object: %v", err)
	}
	f.Close()
}

// The header is believed only once a segment has opened with it: a
// changed codec, clock rate or start fails at NewReader, before any of it
// is used.
func TestHeaderBelievedOnlyOnceAuthenticated(t *testing.T) {
	key, m := bytes.Repeat([]byte{5}, DataKeySize), testMeta()
	obj, _ := mustRecord(t, key, m, 10)
	for name, off := range map[string]int{"codec": 51, "clock rate": 62, "start": 70, "operator codec": 72} {
		bad := bytes.Clone(obj)
		bad[off] ^= 0x01
		if _, err := NewReader(bytes.NewReader(bad), int64(len(bad)), key, m); !errors.Is(err, ErrTampered) {
			t.Errorf("changed %s: NewReader = %v, want ErrTampered", name, err)
		}
	}
}
