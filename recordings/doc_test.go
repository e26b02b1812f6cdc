package recordings

import "testing"

// The documented layout (docs/recording-format.md) is what the code writes.
func TestHeaderLayoutMatchesTheDocument(t *testing.T) {
	if headerSize != 80 || headerSizeV1 != 72 || SegmentSize != 65536 || segmentPayload != 65520 || recordHeader != 12 {
		t.Fatalf("header %d (v1 %d), segment %d/%d, record header %d: update docs/recording-format.md", headerSize, headerSizeV1, SegmentSize, segmentPayload, recordHeader)
	}
	h := &header{clockRate: 8000, start: 1, channels: 2}
	copy(h.codec[:], "PCMA")
	copy(h.codec1[:], "PCMU")
	h.encode()
	if h.size != 80 || string(h.raw[:8]) != "SBREC\x00\x00\x02" || h.raw[8] != 0 || h.raw[9] != 1 || string(h.raw[51:55]) != "PCMA" ||
		h.raw[71] != 2 || string(h.raw[72:76]) != "PCMU" {
		t.Fatalf("header bytes %x do not follow the document", h.raw)
	}
	back, err := decodeHeader(h.raw[:])
	if err != nil || back.size != 80 || string(trimZero(back.codec1[:])) != "PCMU" {
		t.Fatalf("decode: %+v, %v", back, err)
	}
}
