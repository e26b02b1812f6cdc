package recordings

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"
)

// opusPacket is a 20 ms packet (SILK wideband, code 0) whose frame bytes
// name its channel and number; size varies as a real encoder's does.
func opusPacket(i int, ch uint8) []byte {
	p := []byte{9 << 3} // config 9: SILK WB 20 ms, mono, code 0
	return append(p, bytes.Repeat([]byte{byte(i), ch}, 20+i%200)...)
}

// oggPages splits an Ogg file into its pages' packets, checking each
// page's capture pattern, CRC and sequence; it returns the packets with
// the granule position of the page they end on, and the pages' flags.
func oggPages(t *testing.T, file []byte) (packets [][]byte, granules []uint64, flags []byte) {
	t.Helper()
	var partial []byte
	for seq := uint32(0); len(file) > 0; seq++ {
		if len(file) < 27 || string(file[:4]) != "OggS" {
			t.Fatalf("page %d: no capture pattern", seq)
		}
		n := int(file[26])
		size := 27 + n
		for _, l := range file[27 : 27+n] {
			size += int(l)
		}
		page := bytes.Clone(file[:size])
		if got := binary.LittleEndian.Uint32(page[22:]); got != func() uint32 {
			binary.LittleEndian.PutUint32(page[22:], 0)
			return oggCRC(page)
		}() {
			t.Fatalf("page %d: CRC %08x does not match", seq, got)
		}
		if got := binary.LittleEndian.Uint32(page[18:]); got != seq {
			t.Fatalf("page %d numbered %d", seq, got)
		}
		flags = append(flags, page[5])
		granule := binary.LittleEndian.Uint64(page[6:])
		body := page[27+n:]
		for _, l := range page[27 : 27+n] {
			partial = append(partial, body[:l]...)
			body = body[l:]
			if l < 255 {
				packets, granules = append(packets, partial), append(granules, granule)
				partial = nil
			}
		}
		file = file[size:]
	}
	return packets, granules, flags
}

// splitMultistream undoes selfDelimited for the first stream of a packet
// and returns both streams' packets.
func splitMultistream(t *testing.T, p []byte) ([]byte, []byte) {
	t.Helper()
	if p[0]&3 != 0 {
		t.Fatalf("first stream uses code %d", p[0]&3)
	}
	n, used, ok := frameLength(p[1:])
	if !ok || 1+used+n > len(p) {
		t.Fatalf("bad self-delimited length in % x", p[:min(len(p), 4)])
	}
	first := append([]byte{p[0]}, p[1+used:1+used+n]...)
	return first, p[1+used+n:]
}

// An Opus recording plays as Ogg Opus: the caller's and the operator's
// packets, byte for byte, one of each per 20 ms, silence where a channel
// said nothing; the file's pages are well formed and its granule
// positions count the time.
func TestOpusRecordingIsOggOpus(t *testing.T) {
	key, m := bytes.Repeat([]byte{5}, 32), testMeta()
	m.Codec, m.ClockRate = "opus", 48000
	var obj bytes.Buffer
	w, err := NewWriter(&obj, key, m)
	if err != nil {
		t.Fatal(err)
	}
	const steps = 500 // 10 s
	for i := range steps {
		at := m.Start.Add(time.Duration(i)*opusFrame + time.Duration(i%3)*time.Millisecond) // some jitter
		if err := w.Write(Record{Kind: KindAudio, Channel: ChannelCaller, At: at, Payload: opusPacket(i, 0)}); err != nil {
			t.Fatal(err)
		}
		if i%50 < 25 { // the operator speaks half of each second
			if err := w.Write(Record{Kind: KindAudio, Channel: ChannelOperator, At: at, Payload: opusPacket(i, 1)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A 40 ms packet, which a 20 ms step cannot hold.
	if err := w.Write(Record{Kind: KindAudio, Channel: ChannelOperator, At: m.Start.Add(9990 * time.Millisecond), Payload: []byte{9<<3 | 1, 1, 2}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(bytes.NewReader(obj.Bytes()), int64(obj.Len()), key, m)
	if err != nil {
		t.Fatal(err)
	}
	var checked []int
	a, err := NewOpusAudio(r, steps*opusFrame, nil, 0, 0, func(i int) error { checked = append(checked, i); return nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(checked) != r.Segments() || a.Decrypted != r.Segments() {
		t.Errorf("grant checked before %d segments, %d decrypted, of %d", len(checked), a.Decrypted, r.Segments())
	}
	if a.Dropped != 1 {
		t.Errorf("%d packets dropped, want 1: the 40 ms one", a.Dropped)
	}
	file, err := io.ReadAll(io.NewSectionReader(a, 0, a.Size()))
	if err != nil {
		t.Fatal(err)
	}
	packets, granules, flags := oggPages(t, file)
	if len(packets) != steps+2 {
		t.Fatalf("%d packets, want the two headers and %d", len(packets), steps)
	}
	head := packets[0]
	if string(head[:8]) != "OpusHead" || head[9] != 2 || head[18] != 1 || head[19] != 2 || head[20] != 0 || !bytes.Equal(head[21:], []byte{0, 1}) {
		t.Errorf("OpusHead % x: want 2 channels, family 1, 2 uncoupled streams", head)
	}
	if string(packets[1][:8]) != "OpusTags" {
		t.Errorf("second packet % x is not OpusTags", packets[1][:8])
	}
	if flags[0] != 0x02 || flags[len(flags)-1] != 0x04 {
		t.Errorf("first page flags %#x, last %#x: want beginning and end of stream", flags[0], flags[len(flags)-1])
	}
	if last := granules[len(granules)-1]; last != steps*opusSamples {
		t.Errorf("last granule %d, want %d", last, steps*opusSamples)
	}
	for i, p := range packets[2:] {
		caller, operator := splitMultistream(t, p)
		if !bytes.Equal(caller, opusPacket(i, 0)) {
			t.Fatalf("step %d: the caller's packet changed", i)
		}
		want := opusSilence
		if i%50 < 25 {
			want = opusPacket(i, 1)
		}
		if !bytes.Equal(operator, want) {
			t.Fatalf("step %d: the operator's packet is % x…, want % x…", i, operator[:3], want[:3])
		}
	}

	// A window of it, and a grant that stops the rendering.
	r, _ = NewReader(bytes.NewReader(obj.Bytes()), int64(obj.Len()), key, m)
	win, err := NewOpusAudio(r, steps*opusFrame, nil, 2*time.Second, 3*time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	file, _ = io.ReadAll(io.NewSectionReader(win, 0, win.Size()))
	if packets, _, _ := oggPages(t, file); len(packets) != 52 {
		t.Errorf("a one-second window has %d packets, want 2 headers and 50", len(packets))
	} else if caller, _ := splitMultistream(t, packets[2]); !bytes.Equal(caller, opusPacket(100, 0)) {
		t.Errorf("the window does not start with the packet at 2 s")
	}
	revoked := errors.New("revoked")
	r, _ = NewReader(bytes.NewReader(obj.Bytes()), int64(obj.Len()), key, m)
	if _, err := NewOpusAudio(r, steps*opusFrame, nil, 0, 0, func(int) error { return revoked }, nil); !errors.Is(err, revoked) {
		t.Errorf("a revoked grant: %v", err)
	}
}

func TestSelfDelimitedFraming(t *testing.T) {
	long := append([]byte{16 << 3}, bytes.Repeat([]byte{7}, 700)...) // CELT, code 0, 700-byte frame
	got, ok := selfDelimited(long)
	if n, used, _ := frameLength(got[1:]); !ok || n != 700 || used != 2 || !bytes.Equal(got[1+used:], long[1:]) {
		t.Errorf("code 0, 700 bytes: % x…", got[:4])
	}
	two := []byte{16<<3 | 2, 3, 1, 2, 3, 4, 5} // code 2: frames of 3 and 2 bytes
	got, ok = selfDelimited(two)
	if !ok || !bytes.Equal(got, []byte{16<<3 | 2, 3, 2, 1, 2, 3, 4, 5}) {
		t.Errorf("code 2: % x", got)
	}
	if _, ok := selfDelimited([]byte{16<<3 | 3, 3}); ok {
		t.Error("code 3 rewritten")
	}
	for pkt, want := range map[string]int{"\x48": 960, "\x49": 1920, "\xf8": 960, "\x4b\x03": 2880, "\x03": 0} {
		if got := opusDuration([]byte(pkt)); got != want {
			t.Errorf("duration of % x: %d, want %d", pkt, got, want)
		}
	}
}
