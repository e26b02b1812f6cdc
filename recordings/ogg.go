package recordings

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"time"
)

// An Opus recording is heard as an Ogg Opus file (RFC 7845): two mono
// Opus streams in one, the caller left and the operator right (channel
// mapping family 1, two uncoupled streams), each packet as it arrived.
// Nothing is decoded or re-encoded, so the file holds exactly what was said
// on the wire. Each 20 ms step carries one packet of each channel: a
// channel that said nothing then (silence, a pause, loss) gets a silent
// packet.
//
// The file is made as it is read, a second at a time, so that a byte
// range decrypts only the segments that hold its seconds, each after the
// grant is checked again. Each step is its own Ogg page, so a second's
// bytes depend on its own packets alone; the length of each second's pages
// (the layout) is learnt by reading the recording once, and a player may
// keep it (Layout) to open the recording again without that read.
const (
	opusFrame    = 20 * time.Millisecond
	opusSamples  = 960 // per 20 ms at 48 kHz, the granule unit
	stepsPerSec  = 50
	opusMaxFrame = 1275
	// keepSeconds is how many rendered seconds a stream keeps at hand.
	keepSeconds = 4
)

// opusSilence is a 20 ms CELT-only frame that decodes to silence.
var opusSilence = []byte{0xf8, 0xff, 0xfe}

// OpusAudio is an Opus recording rendered as an Ogg Opus file.
type OpusAudio struct {
	segmentSet
	start  time.Time // the recording's
	from   time.Duration
	steps  int
	serial uint32
	head   []byte  // the OpusHead and OpusTags pages
	offs   []int64 // where each second's pages begin; the last is the file's size
	done   map[int][]byte
	// Dropped counts packets left out: not 20 ms long, or a second packet
	// for a step already filled (counted as seconds are laid out or made).
	Dropped int
}

// NewOpusAudio renders the window [from, to) (to 0: the end) of the Opus
// recording in r, which lasted duration. starts is each segment's start in
// milliseconds (nil: unknown). layout is the window's Layout from an
// earlier open of the same window, or nil: then every segment is
// decrypted once, each after before, to lay the file out. before is
// called before each segment is decrypted; an error from it stops the
// read.
func NewOpusAudio(r *Reader, duration time.Duration, starts []int64, from, to time.Duration, before func(segment int) error, layout []int64) (*OpusAudio, error) {
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
	a := &OpusAudio{segmentSet: newSegmentSet(r, starts), start: m.Start, from: from,
		steps: int((to - from + opusFrame - 1) / opusFrame), serial: binary.BigEndian.Uint32(m.RecordingID[12:]), done: map[int][]byte{}}
	a.Before = before
	var head bytes.Buffer
	w := &oggWriter{w: &head, serial: a.serial}
	w.packet(opusHead(), 0, false)
	w.flush(0x02) // beginning of stream: the header alone on its page
	w.packet(opusTags(), 0, false)
	w.flush(0)
	a.head = head.Bytes()
	seconds := (a.steps + stepsPerSec - 1) / stepsPerSec
	if len(layout) != seconds {
		var err error
		if layout, err = a.layOut(seconds); err != nil {
			return nil, err
		}
	}
	a.offs = make([]int64, seconds+1)
	a.offs[0] = int64(len(a.head))
	for s, n := range layout {
		a.offs[s+1] = a.offs[s] + n
	}
	return a, nil
}

// Layout is the length of each second's pages: what NewOpusAudio needs to
// open the same window again without reading the whole recording.
func (a *OpusAudio) Layout() []int64 {
	out := make([]int64, len(a.offs)-1)
	for s := range out {
		out[s] = a.offs[s+1] - a.offs[s]
	}
	return out
}

// steps is a second's packets, by channel and step within the second.
type steps [2][stepsPerSec][]byte

// place puts rec on the step nearest its arrival, or the next one of the
// same second if jitter put two packets on one step, and reports the
// second; it returns -1 for a record that is not a 20 ms packet of the
// window.
func (a *OpusAudio) place(rec Record, seconds map[int]*steps) int {
	if rec.Kind != KindAudio || rec.Channel > ChannelOperator {
		return -1
	}
	at := rec.At.Sub(a.start) - a.from
	if at < -opusFrame/2 || at >= time.Duration(a.steps)*opusFrame {
		return -1
	}
	step := int((at + opusFrame/2) / opusFrame)
	if opusDuration(rec.Payload) != opusSamples || step >= a.steps {
		a.Dropped++
		return -1
	}
	sec := step / stepsPerSec
	st := seconds[sec]
	if st == nil {
		return sec // not a second being made
	}
	ch, k := &st[rec.Channel], step%stepsPerSec
	if ch[k] != nil && k+1 < stepsPerSec && sec*stepsPerSec+k+1 < a.steps {
		k++
	}
	if ch[k] != nil {
		a.Dropped++
		return sec
	}
	ch[k] = rec.Payload
	return sec
}

// layOut reads every segment once and returns each second's length.
func (a *OpusAudio) layOut(seconds int) ([]int64, error) {
	all := make(map[int]*steps, seconds)
	for s := range seconds {
		all[s] = &steps{}
	}
	for i := range a.r.Segments() {
		if err := a.decrypt(i); err != nil {
			return nil, err
		}
		for _, rec := range a.cache[i] {
			a.place(rec, all)
		}
		delete(a.cache, i)
	}
	layout := make([]int64, seconds)
	for s := range layout {
		var b bytes.Buffer
		if err := a.write(&b, s, all[s]); err != nil {
			return nil, err
		}
		layout[s] = int64(b.Len())
	}
	return layout, nil
}

// write writes second s's pages: one page per step.
func (a *OpusAudio) write(out io.Writer, s int, st *steps) error {
	w := &oggWriter{w: out, serial: a.serial, seq: uint32(2 + s*stepsPerSec)}
	for k := range stepsPerSec {
		step := s*stepsPerSec + k
		if step >= a.steps {
			break
		}
		first, second := st[0][k], st[1][k]
		if first == nil {
			first = opusSilence
		}
		if second == nil {
			second = opusSilence
		}
		pkt, ok := selfDelimited(first)
		if !ok {
			pkt, _ = selfDelimited(opusSilence)
		}
		w.packet(append(pkt, second...), uint64(step+1)*opusSamples, step == a.steps-1)
		if step != a.steps-1 {
			w.flush(0)
		}
	}
	return w.err
}

// second makes second s's pages from the segments that hold it.
func (a *OpusAudio) second(s int) ([]byte, error) {
	if b, ok := a.done[s]; ok {
		return b, nil
	}
	t0 := a.from + time.Duration(s*stepsPerSec)*opusFrame - opusFrame/2
	segs, err := a.segments(t0, t0+time.Second)
	if err != nil {
		return nil, err
	}
	st := map[int]*steps{s: {}}
	dropped := a.Dropped // counted once, when laid out
	defer func() { a.Dropped = dropped }()
	for _, i := range segs {
		for _, rec := range a.cache[i] {
			a.place(rec, st)
		}
	}
	var b bytes.Buffer
	if err := a.write(&b, s, st[s]); err != nil {
		return nil, err
	}
	if int64(b.Len()) != a.offs[s+1]-a.offs[s] {
		return nil, fmt.Errorf("recordings: second %d of the Opus file is %d bytes, laid out as %d", s, b.Len(), a.offs[s+1]-a.offs[s])
	}
	for k := range a.done {
		if k < s-keepSeconds || k > s+keepSeconds {
			delete(a.done, k)
		}
	}
	a.done[s] = b.Bytes()
	return b.Bytes(), nil
}

// Size is the file's length in bytes.
func (a *OpusAudio) Size() int64 { return a.offs[len(a.offs)-1] }

// ReadAt reads the file's bytes at off, making the seconds they fall in.
func (a *OpusAudio) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) && off < a.Size() {
		var chunk []byte
		var base int64
		if off < int64(len(a.head)) {
			chunk = a.head
		} else {
			s := sort.Search(len(a.offs)-1, func(i int) bool { return a.offs[i+1] > off })
			b, err := a.second(s)
			if err != nil {
				return n, err
			}
			chunk, base = b, a.offs[s]
		}
		k := copy(p[n:], chunk[off-base:])
		n, off = n+k, off+int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

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
	if last {
		o.flush(0x04) // end of stream
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
