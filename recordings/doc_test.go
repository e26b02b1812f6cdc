package recordings

import "testing"

// The documented layout (docs/recording-format.md) is what the code writes.
func TestHeaderLayoutMatchesTheDocument(t *testing.T) {
	if headerSize != 72 || SegmentSize != 65536 || segmentPayload != 65520 || recordHeader != 12 {
		t.Fatalf("header %d, segment %d/%d, record header %d: update docs/recording-format.md", headerSize, SegmentSize, segmentPayload, recordHeader)
	}
	h := &header{clockRate: 8000, start: 1, channels: 2}
	copy(h.codec[:], "PCMU")
	h.encode()
	if string(h.raw[:8]) != "SBREC\x00\x00\x01" || h.raw[8] != 0 || h.raw[9] != 1 || string(h.raw[51:55]) != "PCMU" || h.raw[71] != 2 {
		t.Fatalf("header bytes %x do not follow the document", h.raw)
	}
}
