package recordings

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/switchboard-voice/switchboard/media"
)

// recordCall writes seconds of a two-way call, 20 ms frames on both
// channels, each frame's bytes naming its number, and returns the object
// and each segment's start in milliseconds.
func recordCall(t testing.TB, key []byte, m Meta, seconds int) ([]byte, []int64) {
	t.Helper()
	var obj bytes.Buffer
	w, err := NewWriter(&obj, key, m)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < seconds*50; i++ {
		at := m.Start.Add(time.Duration(i) * 20 * time.Millisecond)
		for ch := uint8(0); ch < 2; ch++ {
			if err := w.Write(Record{Kind: KindAudio, Channel: ch, At: at, Payload: bytes.Repeat([]byte{frameByte(i, ch)}, 160)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var starts []int64
	for _, s := range w.SegmentStarts() {
		starts = append(starts, s.Sub(m.Start).Milliseconds())
	}
	if len(starts) != w.Segments() {
		t.Fatalf("%d segment starts for %d segments", len(starts), w.Segments())
	}
	return obj.Bytes(), starts
}

func frameByte(i int, ch uint8) byte {
	if ch == ChannelCaller {
		return byte(i)
	}
	return byte(255 - i)
}

func openAudio(t *testing.T, obj, key []byte, m Meta, seconds int, starts []int64, from, to time.Duration) *Audio {
	t.Helper()
	r, err := NewReader(bytes.NewReader(obj), int64(len(obj)), key, m)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAudio(r, time.Duration(seconds)*time.Second, starts, from, to)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func readRange(t *testing.T, a *Audio, off, n int64) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := a.WriteRange(&b, off, n); err != nil {
		t.Fatal(err)
	}
	if int64(b.Len()) != n {
		t.Fatalf("range %d+%d gave %d bytes", off, n, b.Len())
	}
	return b.Bytes()
}

func TestAudioIsTheCallAsStereoWAV(t *testing.T) {
	const seconds = 60
	key, m := bytes.Repeat([]byte{3}, 32), testMeta()
	obj, starts := recordCall(t, key, m, seconds)
	a := openAudio(t, obj, key, m, seconds, starts, 0, 0)
	if want := int64(44 + seconds*8000*4); a.Size() != want {
		t.Fatalf("size %d, want %d", a.Size(), want)
	}
	wav := readRange(t, a, 0, a.Size())
	if string(wav[0:4]) != "RIFF" || string(wav[8:16]) != "WAVEfmt " || string(wav[36:40]) != "data" ||
		binary.LittleEndian.Uint16(wav[22:]) != 2 || binary.LittleEndian.Uint32(wav[24:]) != 8000 ||
		binary.LittleEndian.Uint32(wav[40:]) != uint32(seconds*8000*4) {
		t.Fatalf("header % x", wav[:44])
	}
	if a.Decrypted != len(starts) {
		t.Errorf("a whole read decrypted %d segments of %d", a.Decrypted, len(starts))
	}
	for _, f := range []int{0, 159, 160, 8000*30 + 17, seconds*8000 - 1} {
		left := int16(binary.LittleEndian.Uint16(wav[44+f*4:]))
		right := int16(binary.LittleEndian.Uint16(wav[44+f*4+2:]))
		if want := media.AlawToLinear(frameByte(f/160, ChannelCaller)); left != want {
			t.Errorf("frame %d: caller sample %d, want %d", f, left, want)
		}
		if want := media.AlawToLinear(frameByte(f/160, ChannelOperator)); right != want {
			t.Errorf("frame %d: operator sample %d, want %d", f, right, want)
		}
	}

	t.Run("a range decrypts only the segments it touches", func(t *testing.T) {
		b := openAudio(t, obj, key, m, seconds, starts, 0, 0)
		off := int64(44 + 30*8000*4 + 6) // mid-sample, 30 s in
		got := readRange(t, b, off, 8000*4)
		if !bytes.Equal(got, wav[off:off+8000*4]) {
			t.Fatal("the range differs from the same bytes of the whole file")
		}
		// A second of audio lies in one or two segments; the order slack
		// may add one on each side.
		if b.Decrypted < 1 || b.Decrypted > 4 {
			t.Errorf("a one-second range decrypted %d of %d segments", b.Decrypted, len(starts))
		}
	})

	t.Run("a window is a file of its own", func(t *testing.T) {
		w := openAudio(t, obj, key, m, seconds, starts, 10*time.Second, 20*time.Second)
		if w.Size() != 44+10*8000*4 {
			t.Fatalf("window size %d", w.Size())
		}
		got := readRange(t, w, 0, w.Size())
		if !bytes.Equal(got[44:], wav[44+10*8000*4:44+20*8000*4]) {
			t.Fatal("the window's audio differs from the same span of the whole file")
		}
	})

	t.Run("without segment starts it learns them once", func(t *testing.T) {
		u := openAudio(t, obj, key, m, seconds, nil, 0, 0)
		off := int64(44 + 45*8000*4)
		if got := readRange(t, u, off, 4000); !bytes.Equal(got, wav[off:off+4000]) {
			t.Fatal("the range differs without segment starts")
		}
		if u.Decrypted < len(starts) {
			t.Errorf("decrypted %d of %d segments to learn their starts", u.Decrypted, len(starts))
		}
	})

	t.Run("a refusal before a segment stops the read", func(t *testing.T) {
		s := openAudio(t, obj, key, m, seconds, starts, 0, 0)
		revoked := errors.New("revoked")
		s.Before = func(i int) error {
			if i >= 3 {
				return revoked
			}
			return nil
		}
		var b bytes.Buffer
		if err := s.WriteRange(&b, 0, s.Size()); !errors.Is(err, revoked) {
			t.Fatalf("read after refusal: %v", err)
		}
		if b.Len() == 0 || int64(b.Len()) >= s.Size()/2 {
			t.Errorf("wrote %d of %d bytes before the refusal", b.Len(), s.Size())
		}
	})

	t.Run("ranges outside the file are refused", func(t *testing.T) {
		if err := a.WriteRange(&bytes.Buffer{}, a.Size()-1, 2); err == nil {
			t.Error("a range past the end was read")
		}
		if _, err := NewAudio(a.r, seconds*time.Second, starts, 70*time.Second, 0); err == nil {
			t.Error("a window past the end was opened")
		}
	})
}

// BenchmarkAudioRange is a player's one-second range read in the middle of
// an hour-long call: the segments it touches decrypted, decoded and laid
// out as WAV.
func BenchmarkAudioRange(b *testing.B) {
	const seconds = 3600
	key, m := bytes.Repeat([]byte{3}, 32), testMeta()
	obj, starts := recordCall(b, key, m, seconds)
	r, err := NewReader(bytes.NewReader(obj), int64(len(obj)), key, m)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 8000*4)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		a, err := NewAudio(r, seconds*time.Second, starts, 0, 0)
		if err != nil {
			b.Fatal(err)
		}
		off := int64(44 + (i%3000+300)*8000*4)
		if _, err := a.ReadAt(buf, off); err != nil {
			b.Fatal(err)
		}
	}
}

// A PCMA caller answered by a page sending PCMU: each channel is decoded
// in its own law, sample by sample, and silence in μ-law stays silence.
func TestAudioDecodesEachChannelInItsOwnCodec(t *testing.T) {
	key, m := bytes.Repeat([]byte{3}, 32), testMeta()
	m.Codec, m.OperatorCodec = "PCMA", "PCMU"
	var obj bytes.Buffer
	w, err := NewWriter(&obj, key, m)
	if err != nil {
		t.Fatal(err)
	}
	caller, operator := make([]byte, 160), make([]byte, 160)
	for i := range caller {
		caller[i], operator[i] = byte(i), byte(255-i)
	}
	operator[0] = 0xff // μ-law silence: +848 if read as A-law
	for _, r := range []Record{{Kind: KindAudio, Channel: ChannelCaller, At: m.Start, Payload: caller},
		{Kind: KindAudio, Channel: ChannelOperator, At: m.Start, Payload: operator}} {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(bytes.NewReader(obj.Bytes()), int64(obj.Len()), key, Meta{TenantID: m.TenantID, CallID: m.CallID, RecordingID: m.RecordingID})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Meta(); got.Codec != "PCMA" || got.OperatorCodec != "PCMU" {
		t.Fatalf("header says %s/%s, want PCMA/PCMU", got.Codec, got.OperatorCodec)
	}
	a, err := NewAudio(r, 20*time.Millisecond, nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	wav := readRange(t, a, 0, a.Size())
	for f := range 160 {
		left := int16(binary.LittleEndian.Uint16(wav[44+f*4:]))
		right := int16(binary.LittleEndian.Uint16(wav[44+f*4+2:]))
		if want := media.AlawToLinear(caller[f]); left != want {
			t.Fatalf("sample %d: caller %d, want %d", f, left, want)
		}
		if want := media.UlawToLinear(operator[f]); right != want {
			t.Fatalf("sample %d: operator %d, want %d (μ-law)", f, right, want)
		}
	}
	if right := int16(binary.LittleEndian.Uint16(wav[44+2:])); right != 0 {
		t.Errorf("μ-law silence played as %d", right)
	}
}
