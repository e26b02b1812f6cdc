package recordings

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

var updateVectors = flag.Bool("update-vectors", false, "rewrite testdata/known-answer/v2.sbrec (a format change is a new version)")

// knownAnswer is the recording of the known-answer vectors in
// docs/recording-format.md: data key 00…1f, salt 20…3f, nonce prefix
// 40…46, IDs a0…af, b0…bf, c0…cf; 382 audio records of 160 bytes (a full
// first segment of 380, two more in the second), then a pause, a resume
// and a 3-byte audio record.
func knownAnswer(codec, operatorCodec string) (key []byte, m Meta, recs []Record) {
	key = make([]byte, DataKeySize)
	for i := range key {
		key[i] = byte(i)
	}
	for i := range m.TenantID {
		m.TenantID[i], m.CallID[i], m.RecordingID[i] = 0xa0+byte(i), 0xb0+byte(i), 0xc0+byte(i)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m.Codec, m.OperatorCodec, m.ClockRate, m.Start, m.Channels = codec, operatorCodec, 8000, start, 2
	for i := 0; i < 382; i++ {
		recs = append(recs, Record{Kind: KindAudio, Channel: uint8(i % 2), At: start.Add(time.Duration(i/2) * 20 * time.Millisecond),
			Payload: bytes.Repeat([]byte{byte(i)}, 160)})
	}
	at := start.Add(191 * 20 * time.Millisecond)
	recs = append(recs, Record{Kind: KindPause, At: at}, Record{Kind: KindResume, At: at.Add(5 * time.Second)},
		Record{Kind: KindAudio, Channel: ChannelOperator, At: at.Add(5 * time.Second), Payload: []byte("end")})
	return key, m, recs
}

// fixedRandom gives the vectors' salt (20…3f) and then nonce prefix
// (40…46).
type fixedRandom struct{ next byte }

func (f *fixedRandom) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0x20 + f.next
		f.next++
	}
	return len(p), nil
}

// The committed vectors pin the format: the writer makes version 2's byte
// for byte, the reader opens both versions to the same records, and the
// document names each file's SHA-256 and the segment key.
func TestKnownAnswerVectors(t *testing.T) {
	doc, err := os.ReadFile("../docs/recording-format.md")
	if err != nil {
		t.Fatal(err)
	}
	key, m, want := knownAnswer("PCMA", "PCMU")
	var obj bytes.Buffer
	w, err := NewWriterWith(&obj, key, m, &fixedRandom{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range want {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil || w.Segments() != 2 {
		t.Fatalf("close: %v, %d segments", err, w.Segments())
	}
	if *updateVectors {
		if err := os.WriteFile("testdata/known-answer/v2.sbrec", obj.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []struct {
		file, codec, operatorCodec string
		size                       int
	}{
		{"v1.sbrec", "PCMU", "PCMU", headerSizeV1},
		{"v2.sbrec", "PCMA", "PCMU", headerSize},
	} {
		t.Run(v.file, func(t *testing.T) {
			vector, err := os.ReadFile("testdata/known-answer/" + v.file)
			if err != nil {
				t.Fatal(err)
			}
			if v.file == "v2.sbrec" && !bytes.Equal(obj.Bytes(), vector) {
				t.Fatalf("the writer's %d bytes differ from the vector's %d: the format changed (a new format is a new version)", obj.Len(), len(vector))
			}
			sum := sha256.Sum256(vector)
			if !strings.Contains(string(doc), hex.EncodeToString(sum[:])) {
				t.Errorf("docs/recording-format.md does not name %s's SHA-256 %x", v.file, sum)
			}
			if n := v.size + SegmentSize + 2*(recordHeader+160) + 3*recordHeader + 3 + tagSize; len(vector) != n {
				t.Errorf("%d bytes, want %d", len(vector), n)
			}
			_, m, _ := knownAnswer(v.codec, v.operatorCodec)
			got, err := readAll(vector, key, Meta{TenantID: m.TenantID, CallID: m.CallID, RecordingID: m.RecordingID})
			if err != nil {
				t.Fatal(err)
			}
			sameRecords(t, got, want)
			r, err := NewReader(bytes.NewReader(vector), int64(len(vector)), key, Meta{TenantID: m.TenantID, CallID: m.CallID, RecordingID: m.RecordingID})
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Meta(); got.Codec != v.codec || got.ChannelCodec(ChannelOperator) != v.operatorCodec || !got.Start.Equal(m.Start) ||
				got.ClockRate != 8000 || got.Channels != 2 || r.Segments() != 2 || r.Truncated() {
				t.Errorf("meta %+v, %d segments, truncated %v", got, r.Segments(), r.Truncated())
			}
		})
	}
	segKey, err := hkdf.Key(sha256.New, key, obj.Bytes()[12:44], "switchboard recording v1 segment key", 32)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), hex.EncodeToString(segKey)) {
		t.Errorf("docs/recording-format.md does not name the vectors' segment key %x", segKey)
	}
	if *updateVectors {
		v1, _ := os.ReadFile("testdata/known-answer/v1.sbrec")
		s1, s2 := sha256.Sum256(v1), sha256.Sum256(obj.Bytes())
		fmt.Printf("segment key %x\nv1 %x\nv2 %x\n", segKey, s1, s2)
	}
}
