package recordings

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

func testMeta() Meta {
	return Meta{TenantID: sb.NewID(), CallID: sb.NewID(), RecordingID: sb.NewID(), Codec: "PCMA", ClockRate: 8000,
		Start: time.Unix(1_800_000_000, 0), Channels: 2}
}

// mustRecord writes frames 20 ms apart on alternating channels, with a
// pause in the middle, and returns the object and the records written.
func mustRecord(t testing.TB, key []byte, m Meta, frames int) ([]byte, []Record) {
	t.Helper()
	var obj bytes.Buffer
	w, err := NewWriter(&obj, key, m)
	if err != nil {
		t.Fatal(err)
	}
	var want []Record
	for i := 0; i < frames; i++ {
		r := Record{Kind: KindAudio, Channel: uint8(i % 2), At: m.Start.Add(time.Duration(i) * 20 * time.Millisecond), Payload: bytes.Repeat([]byte{byte(i)}, 160)}
		if i == frames/2 {
			pause := Record{Kind: KindPause, At: r.At}
			resume := Record{Kind: KindResume, At: r.At.Add(5 * time.Second)}
			for _, p := range []Record{pause, resume} {
				if err := w.Write(p); err != nil {
					t.Fatal(err)
				}
				want = append(want, p)
			}
		}
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
		want = append(want, r)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return obj.Bytes(), want
}

func readAll(obj []byte, key []byte, m Meta) ([]Record, error) {
	r, err := NewReader(bytes.NewReader(obj), int64(len(obj)), key, m)
	if err != nil {
		return nil, err
	}
	var got []Record
	err = r.Records(func(rec Record) error {
		rec.Payload = append([]byte(nil), rec.Payload...)
		got = append(got, rec)
		return nil
	})
	return got, err
}

func sameRecords(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Kind != w.Kind || g.Channel != w.Channel || !g.At.Equal(w.At) || !bytes.Equal(g.Payload, w.Payload) {
			t.Fatalf("record %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestRoundTripChannelByChannel(t *testing.T) {
	key, _ := NewDataKey()
	m := testMeta()
	obj, want := mustRecord(t, key, m, 1500) // about 4 segments
	r, err := NewReader(bytes.NewReader(obj), int64(len(obj)), key, m)
	if err != nil {
		t.Fatal(err)
	}
	if r.Segments() < 3 {
		t.Fatalf("%d segments, want several", r.Segments())
	}
	if got := r.Meta(); got.Codec != "PCMA" || got.ClockRate != 8000 || !got.Start.Equal(m.Start) || got.Channels != 2 {
		t.Errorf("meta %+v", got)
	}
	got, err := readAll(obj, key, m)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, want)
	var caller, operator int
	for _, rec := range got {
		if rec.Kind == KindAudio && rec.Channel == ChannelCaller {
			caller++
		} else if rec.Kind == KindAudio && rec.Channel == ChannelOperator {
			operator++
		}
	}
	if caller != 750 || operator != 750 {
		t.Errorf("channels: %d caller, %d operator frames", caller, operator)
	}
	if bytes.Contains(obj, bytes.Repeat([]byte{7}, 160)) {
		t.Error("plaintext audio appears in the object")
	}
}

func TestSegmentDecryptsAlone(t *testing.T) {
	key, _ := NewDataKey()
	m := testMeta()
	obj, want := mustRecord(t, key, m, 1500)
	r, err := NewReader(bytes.NewReader(obj), int64(len(obj)), key, m)
	if err != nil {
		t.Fatal(err)
	}
	var all []Record
	for i := r.Segments() - 1; i >= 0; i-- { // any order: each stands alone
		recs, err := r.Segment(i)
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		if len(recs) == 0 {
			t.Fatalf("segment %d is empty", i)
		}
		all = append(append([]Record(nil), recs...), all...)
	}
	sameRecords(t, all, want)
}

func TestDetectsTampering(t *testing.T) {
	key, _ := NewDataKey()
	m := testMeta()
	obj, _ := mustRecord(t, key, m, 1500)
	seg := func(i int) []byte { return obj[headerSize+i*SegmentSize : min(len(obj), headerSize+(i+1)*SegmentSize)] }
	other := testMeta()
	cases := []struct {
		name string
		obj  []byte
		key  []byte
		meta Meta
		want error
	}{
		{"flipped byte in a segment", flip(obj, headerSize+SegmentSize+100), key, m, ErrTampered},
		{"flipped byte in the header", flip(obj, 20), key, m, ErrTampered},
		{"dropped segment", join(obj[:headerSize], seg(0), seg(2), seg(3)), key, m, ErrTampered},
		{"reordered segments", join(obj[:headerSize], seg(1), seg(0), seg(2), seg(3)), key, m, ErrTampered},
		{"truncated at a segment boundary", obj[:headerSize+2*SegmentSize], key, m, ErrTruncated},
		{"truncated inside a segment", obj[:len(obj)-10], key, m, ErrTampered},
		{"another call's IDs", obj, key, Meta{TenantID: m.TenantID, CallID: other.CallID, RecordingID: m.RecordingID}, ErrTampered},
		{"another key", obj, bytes.Repeat([]byte{1}, DataKeySize), m, ErrTampered},
		{"not a recording", []byte("hello, this is not a recording at all, not even close; padding padding padding"), key, m, ErrFormat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := readAll(c.obj, c.key, c.meta)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x01
	return c
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestEmptyRecordingAndLimits(t *testing.T) {
	key, _ := NewDataKey()
	m := testMeta()
	var obj bytes.Buffer
	w, err := NewWriter(&obj, key, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(Record{Kind: KindAudio, Payload: make([]byte, maxPayload+1)}); err == nil {
		t.Error("a record larger than a segment was taken")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(Record{Kind: KindAudio}); err == nil {
		t.Error("write after close was taken")
	}
	got, err := readAll(obj.Bytes(), key, m)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty recording: %v, %d records", err, len(got))
	}
	if _, err := NewWriter(io.Discard, key[:16], m); err == nil {
		t.Error("a short data key was taken")
	}
}

func TestKeyring(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	spec := fmt.Sprintf("1:%s,2:%s,active=1", base64.StdEncoding.EncodeToString(k1), base64.StdEncoding.EncodeToString(k2))
	ring, err := ParseKeyring(spec)
	if err != nil {
		t.Fatal(err)
	}
	if ring.Active() != 1 {
		t.Fatalf("active %d, want 1", ring.Active())
	}
	dataKey, _ := NewDataKey()
	recID := sb.NewID()
	v, wrapped, err := ring.Wrap(dataKey, recID[:])
	if err != nil || v != 1 || bytes.Contains(wrapped, dataKey) {
		t.Fatalf("Wrap = %d, %x, %v", v, wrapped, err)
	}

	// Rotation: version 2 becomes active; rewrapped keys open, old ones too.
	rotated, err := ParseKeyring(spec[:len(spec)-len(",active=1")])
	if err != nil || rotated.Active() != 2 {
		t.Fatalf("rotated ring active %d, %v", rotated.Active(), err)
	}
	v2, wrapped2, err := rotated.Rewrap(v, wrapped, recID[:])
	if err != nil || v2 != 2 {
		t.Fatalf("Rewrap = %d, %v", v2, err)
	}
	for _, c := range []struct {
		v uint32
		w []byte
	}{{v, wrapped}, {v2, wrapped2}} {
		got, err := rotated.Unwrap(c.v, c.w, recID[:])
		if err != nil || !bytes.Equal(got, dataKey) {
			t.Fatalf("Unwrap(v%d) = %x, %v", c.v, got, err)
		}
	}
	other := sb.NewID()
	if _, err := rotated.Unwrap(v2, wrapped2, other[:]); !errors.Is(err, ErrTampered) {
		t.Errorf("unwrap for another recording: %v", err)
	}
	if _, err := rotated.Unwrap(1, wrapped2, recID[:]); !errors.Is(err, ErrTampered) {
		t.Errorf("unwrap under the wrong version: %v", err)
	}
	if _, err := ring.Unwrap(3, wrapped, recID[:]); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown version: %v", err)
	}
	file := filepath.Join(t.TempDir(), "keyring")
	if err := os.WriteFile(file, []byte(spec+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fromFile, err := ParseKeyring("@" + file); err != nil || fromFile.Active() != 1 {
		t.Errorf("keyring from a file: %v", err)
	}
	for _, bad := range []string{"", "@/no/such/file", "1:short", "0:" + base64.StdEncoding.EncodeToString(k1), "1:" + base64.StdEncoding.EncodeToString(k1) + ",active=5"} {
		if _, err := ParseKeyring(bad); err == nil {
			t.Errorf("ParseKeyring(%q) succeeded", bad)
		}
	}
}

func FuzzReader(f *testing.F) {
	key := bytes.Repeat([]byte{9}, DataKeySize)
	m := Meta{TenantID: sb.ID{1}, CallID: sb.ID{2}, RecordingID: sb.ID{3}, Codec: "PCMU", ClockRate: 8000, Start: time.Unix(0, 0), Channels: 2}
	var obj bytes.Buffer
	w, _ := NewWriter(&obj, key, m)
	w.Write(Record{Kind: KindAudio, Payload: []byte("hello")})
	w.Close()
	f.Add(obj.Bytes())
	f.Add([]byte(magic))
	f.Add(append([]byte(magicV1), obj.Bytes()[8:]...)) // a version 1 header on version 2 segments
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := readAll(b, key, m)
		// Only what was sealed with the key opens, and the fuzzer cannot
		// forge a tag: the only recording it can hold is a seed's. (Seeds
		// are made anew in each fuzzing process, with their own salt, so
		// compare what they say, not their bytes.)
		if err == nil && (len(recs) != 1 || string(recs[0].Payload) != "hello") {
			t.Fatalf("a forged object opened with %d records", len(recs))
		}
	})
}

// BenchmarkSealSegment is the cost of encrypting one 64 KiB segment of
// audio records, next to BenchmarkRawAEAD, the machine's AES-256-GCM speed.
func BenchmarkSealSegment(b *testing.B) {
	key, _ := NewDataKey()
	w, err := NewWriter(io.Discard, key, testMeta())
	if err != nil {
		b.Fatal(err)
	}
	rec := Record{Kind: KindAudio, At: time.Now(), Payload: make([]byte, 160)}
	perSegment := segmentPayload / (recordHeader + 160)
	b.SetBytes(SegmentSize)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < perSegment; j++ {
			if err := w.Write(rec); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkRawAEAD(b *testing.B) {
	block, _ := aes.NewCipher(make([]byte, 32))
	aead, _ := cipher.NewGCM(block)
	pt := make([]byte, segmentPayload)
	out := make([]byte, 0, SegmentSize)
	nonce := make([]byte, 12)
	b.SetBytes(SegmentSize)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		out = aead.Seal(out[:0], nonce, pt, nil)
	}
}
