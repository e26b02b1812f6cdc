package recordings

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// An Opus recording is heard as an Ogg Opus file (RFC 7845) made on
// opening: two mono Opus streams in one, the caller left and the operator
// right (channel mapping family 1, two uncoupled streams), each packet as
// it arrived. Nothing is decoded or re-encoded, so the file holds exactly
// what was said on the wire. Each 20 ms step carries one packet of each
// channel: a channel that said nothing then (silence, a pause, loss) gets
// a silent packet. Opus is small (a few kB per second), so the file is
// made whole in memory and a byte range is a slice of it.
const (
	opusFrame    = 20 * time.Millisecond
	opusSamples  = 960 // per 20 ms at 48 kHz, the granule unit
	pagePackets  = 50  // packets per Ogg page: a second
	opusMaxFrame = 1275
)

// opusSilence is a 20 ms CELT-only frame that decodes to silence.
var opusSilence = []byte{0xf8, 0xff, 0xfe}

// OpusAudio is an Opus recording rendered as an Ogg Opus file.
type OpusAudio struct {
	file *bytes.Reader
	// Dropped counts packets left out: not 20 ms long, or a second packet
	// for a step already filled.
	Dropped int
	// Decrypted counts the segments decrypted.
	Decrypted int
}

// NewOpusAudio renders the window [from, to) (to 0: the end) of the Opus
// recording in r, which lasted duration. before is called before each
// segment is decrypted; an error from it stops the rendering.
func NewOpusAudio(r *Reader, duration time.Duration, from, to time.Duration, before func(segment int) error) (*OpusAudio, error) {
	m := r.Meta()
	if m.ChannelCodec(ChannelCaller) != "opus" || m.ChannelCodec(ChannelOperator) != "opus" {
		return nil, fmt.Errorf("recordings: %s/%s is not Opus", m.ChannelCodec(ChannelCaller), m.ChannelCodec(ChannelOperator))
	}
	if to == 0 || to > duration {
		to = duration
	}
	if from < 0 || from >= to {
		return nil, fmt.Errorf("recordings: the window %s–%s is outside the recording's %s", from, to, duration)
	}
	steps := int((to - from + opusFrame - 1) / opusFrame)
	var channels [2][][]byte
	channels[0], channels[1] = make([][]byte, steps), make([][]byte, steps)
	a := &OpusAudio{}
	for i := range r.Segments() {
		if before != nil {
			if err := before(i); err != nil {
				return nil, err
			}
		}
		recs, err := r.Segment(i)
		if err != nil {
			return nil, err
		}
		a.Decrypted++
		for _, rec := range recs {
			if rec.Kind != KindAudio || rec.Channel > ChannelOperator {
				continue
			}
			at := rec.At.Sub(m.Start) - from
			if at < -opusFrame/2 || at >= to-from {
				continue
			}
			if opusDuration(rec.Payload) != opusSamples {
				a.Dropped++
				continue
			}
			// The step nearest its arrival, or the next if jitter put two
			// packets on one step.
			ch, step := channels[rec.Channel], int((at+opusFrame/2)/opusFrame)
			if step < steps && ch[step] != nil {
				step++
			}
			if step >= steps || ch[step] != nil {
				a.Dropped++
				continue
			}
			ch[step] = rec.Payload
		}
	}
	var file bytes.Buffer
	w := &oggWriter{w: &file, serial: binary.BigEndian.Uint32(m.RecordingID[12:])}
	w.packet(opusHead(), 0, false)
	w.flush(0x02) // beginning of stream: the header alone on its page
	w.packet(opusTags(), 0, false)
	w.flush(0)
	for step := range steps {
		first := channels[0][step]
		if first == nil {
			first = opusSilence
		}
		second := channels[1][step]
		if second == nil {
			second = opusSilence
		}
		pkt, ok := selfDelimited(first)
		if !ok {
			pkt, _ = selfDelimited(opusSilence)
			a.Dropped++
		}
		w.packet(append(pkt, second...), uint64(step+1)*opusSamples, step == steps-1)
	}
	if w.err != nil {
		return nil, w.err
	}
	a.file = bytes.NewReader(file.Bytes())
	return a, nil
}

// Size is the file's length in bytes.
func (a *OpusAudio) Size() int64 { return a.file.Size() }

// ReadAt reads the file's bytes at off.
func (a *OpusAudio) ReadAt(p []byte, off int64) (int, error) { return a.file.ReadAt(p, off) }

// opusHead is the identification header: two channels, each its own mono
// stream (family 1, two streams, none coupled).
func opusHead() []byte {
	h := make([]byte, 0, 21)
	h = append(h, "OpusHead"...)
	h = append(h, 1, 2)                            // version, channels
	h = binary.LittleEndian.AppendUint16(h, 0)     // pre-skip: the packets come from running encoders
	h = binary.LittleEndian.AppendUint32(h, 48000) // input sample rate
	h = binary.LittleEndian.AppendUint16(h, 0)     // output gain
	return append(h, 1, 2, 0, 0, 1)                // family 1, 2 streams, 0 coupled, channel 0 ← stream 0, 1 ← 1
}

func opusTags() []byte {
	const vendor = "switchboard"
	t := append([]byte("OpusTags"), binary.LittleEndian.AppendUint32(nil, uint32(len(vendor)))...)
	t = append(t, vendor...)
	return binary.LittleEndian.AppendUint32(t, 0) // no comments
}

// opusDuration is the packet's length in 48 kHz samples, from its TOC
// byte (RFC 6716 §3.1), or 0 for a malformed packet.
func opusDuration(pkt []byte) int {
	if len(pkt) < 1 {
		return 0
	}
	config := pkt[0] >> 3
	var frame int // samples per frame
	switch {
	case config < 12: // SILK: 10, 20, 40, 60 ms
		frame = []int{480, 960, 1920, 2880}[config&3]
	case config < 16: // hybrid: 10, 20 ms
		frame = []int{480, 960}[config&1]
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = []int{120, 240, 480, 960}[config&3]
	}
	switch pkt[0] & 3 {
	case 0:
		return frame
	case 1, 2:
		return 2 * frame
	}
	if len(pkt) < 2 || pkt[1]&0x3f == 0 {
		return 0
	}
	return int(pkt[1]&0x3f) * frame
}

// selfDelimited rewrites a packet in the self-delimiting framing of RFC
// 6716 Appendix B, which every stream but the last of a multistream packet
// uses: the length of the last frame is written out. Code 3 packets (more
// than two frames) are not rewritten: 20 ms packets do not use it.
func selfDelimited(pkt []byte) ([]byte, bool) {
	if len(pkt) < 1 {
		return nil, false
	}
	out := make([]byte, 0, len(pkt)+2)
	out = append(out, pkt[0])
	switch pkt[0] & 3 {
	case 0: // one frame
		out = appendFrameLength(out, len(pkt)-1)
		return append(out, pkt[1:]...), len(pkt)-1 <= opusMaxFrame
	case 1: // two frames of equal size
		if (len(pkt)-1)%2 != 0 {
			return nil, false
		}
		out = appendFrameLength(out, (len(pkt)-1)/2)
		return append(out, pkt[1:]...), true
	case 2: // two frames, the first's length written
		n1, used, ok := frameLength(pkt[1:])
		if !ok || 1+used+n1 > len(pkt) {
			return nil, false
		}
		out = append(out, pkt[1:1+used]...)
		out = appendFrameLength(out, len(pkt)-1-used-n1)
		return append(out, pkt[1+used:]...), true
	}
	return nil, false
}

// appendFrameLength writes a frame length in one or two bytes (RFC 6716
// §3.2.1).
func appendFrameLength(b []byte, n int) []byte {
	if n < 252 {
		return append(b, byte(n))
	}
	first := 252 + n&3
	return append(b, byte(first), byte((n-first)/4))
}

func frameLength(b []byte) (n, used int, ok bool) {
	switch {
	case len(b) < 1:
		return 0, 0, false
	case b[0] < 252:
		return int(b[0]), 1, true
	case len(b) < 2:
		return 0, 0, false
	}
	return int(b[0]) + 4*int(b[1]), 2, true
}

// oggWriter writes Ogg pages (RFC 3533) of one logical stream.
type oggWriter struct {
	w       io.Writer
	serial  uint32
	seq     uint32
	granule uint64
	lacing  []byte
	body    []byte
	packets int
	err     error
}

// packet adds a packet that ends at granule; a page is written every
// pagePackets packets, and at the last.
func (o *oggWriter) packet(p []byte, granule uint64, last bool) {
	n := len(p)
	if len(o.lacing)+n/255+1 > 255 {
		o.flush(0)
	}
	for ; n >= 255; n -= 255 {
		o.lacing = append(o.lacing, 255)
	}
	o.lacing = append(o.lacing, byte(n))
	o.body = append(o.body, p...)
	o.granule = granule
	o.packets++
	switch {
	case last:
		o.flush(0x04) // end of stream
	case o.packets == pagePackets:
		o.flush(0)
	}
}

func (o *oggWriter) flush(flags byte) {
	if o.err != nil || len(o.lacing) == 0 {
		return
	}
	page := make([]byte, 0, 27+len(o.lacing)+len(o.body))
	page = append(page, "OggS"...)
	page = append(page, 0, flags)
	page = binary.LittleEndian.AppendUint64(page, o.granule)
	page = binary.LittleEndian.AppendUint32(page, o.serial)
	page = binary.LittleEndian.AppendUint32(page, o.seq)
	page = append(page, 0, 0, 0, 0, byte(len(o.lacing)))
	page = append(page, o.lacing...)
	page = append(page, o.body...)
	binary.LittleEndian.PutUint32(page[22:], oggCRC(page))
	_, o.err = o.w.Write(page)
	o.seq++
	o.lacing, o.body, o.packets = o.lacing[:0], o.body[:0], 0
}

// oggCRCTable is for Ogg's CRC-32: polynomial 0x04c11db7, not reflected,
// no initial or final inversion (hash/crc32 reflects).
var oggCRCTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

func oggCRC(b []byte) uint32 {
	var crc uint32
	for _, c := range b {
		crc = crc<<8 ^ oggCRCTable[byte(crc>>24)^c]
	}
	return crc
}
