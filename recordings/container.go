// Package recordings keeps call audio encrypted from the moment it is
// recorded. This file is the container format: a plaintext header, then
// fixed-size segments sealed with AES-256-GCM under a key derived from the
// recording's own data key, in the manner of Tink's streaming AEAD and
// age's STREAM. docs/recording-format.md describes it byte by byte.
package recordings

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// FormatVersion is the container format this package writes, recorded
// with each recording. It reads version 1 too.
const FormatVersion = 2

// Format constants. A changed value is a new version.
const (
	magicV1 = "SBREC\x00\x00\x01" // 8 bytes: name and version 1
	magic   = "SBREC\x00\x00\x02" // version 2: a codec per channel
	// headerSizeV1 is version 1's header: one codec for both channels.
	headerSizeV1 = 8 + 4 + 32 + 7 + 8 + 4 + 8 + 1
	// headerSize is version 2's: version 1's, then the operator's
	// channel's codec.
	headerSize     = headerSizeV1 + 8
	saltSize       = 32
	prefixSize     = 7
	tagSize        = 16
	DataKeySize    = 32
	SegmentSize    = 64 << 10              // ciphertext bytes per segment, the last one shorter
	segmentPayload = SegmentSize - tagSize // plaintext bytes per full segment
	recordHeader   = 1 + 1 + 8 + 2         // kind, channel, time, length
	maxPayload     = segmentPayload - recordHeader
)

// Errors a reader reports. Each means the recording is not what was
// written; none says more than which check failed.
var (
	ErrFormat    = errors.New("recordings: not a switchboard recording, or an unknown version")
	ErrTampered  = errors.New("recordings: a segment failed authentication (altered, reordered, or from another recording)")
	ErrTruncated = errors.New("recordings: the recording ends before its last segment")
)

// Kind is what a record holds.
type Kind uint8

const (
	kindPadding Kind = 0 // fills the rest of a segment
	KindAudio   Kind = 1 // an RTP payload in the channel's codec
	KindPause   Kind = 2 // recording paused (e.g. while a card number is read)
	KindResume  Kind = 3 // recording resumed
)

// Channels of a call recording: each direction is kept apart.
const (
	ChannelCaller   uint8 = 0 // what the caller said (trunk → operator)
	ChannelOperator uint8 = 1 // what the operator said
)

// Record is one entry of a recording.
type Record struct {
	Kind    Kind
	Channel uint8
	At      time.Time
	Payload []byte
}

// Meta is what a recording says about itself in its header. The IDs are
// not in the header: they are bound as associated data, so a segment moved
// into another call's recording fails to open.
type Meta struct {
	TenantID, CallID, RecordingID sb.ID
	// Codec is the caller's channel's: "PCMU", "PCMA" or "opus".
	Codec string
	// OperatorCodec is the operator's channel's; empty means Codec. The
	// bridge converts between μ-law and A-law, so the two directions of a
	// call may arrive in different codecs, and each is kept as it arrived.
	OperatorCodec string
	ClockRate     uint32
	Start         time.Time
	Channels      uint8
}

// ChannelCodec is the codec of channel ch's payloads.
func (m Meta) ChannelCodec(ch uint8) string {
	if ch == ChannelOperator && m.OperatorCodec != "" {
		return m.OperatorCodec
	}
	return m.Codec
}

// NewDataKey returns a fresh random data key for one recording.
func NewDataKey() ([]byte, error) {
	k := make([]byte, DataKeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("recordings: data key: %w", err)
	}
	return k, nil
}

// header is the plaintext header: everything a reader needs but the key.
// Nothing in it is to be believed before a segment has opened, since it is
// authenticated only as part of every segment's associated data.
type header struct {
	salt      [saltSize]byte
	prefix    [prefixSize]byte
	codec     [8]byte // the caller's channel's
	codec1    [8]byte // the operator's channel's (version 2)
	clockRate uint32
	start     int64
	channels  uint8
	size      int // headerSize, or headerSizeV1 for a version 1 recording
	raw       [headerSize]byte
}

// encode lays out a version 2 header.
func (h *header) encode() {
	b := h.raw[:0]
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint32(b, SegmentSize)
	b = append(b, h.salt[:]...)
	b = append(b, h.prefix[:]...)
	b = append(b, h.codec[:]...)
	b = binary.BigEndian.AppendUint32(b, h.clockRate)
	b = binary.BigEndian.AppendUint64(b, uint64(h.start))
	b = append(b, h.channels)
	b = append(b, h.codec1[:]...)
	h.size = len(b)
}

// decodeHeader reads a version 1 or 2 header from raw, which holds at
// least headerSizeV1 bytes.
func decodeHeader(raw []byte) (*header, error) {
	if len(raw) < headerSizeV1 || binary.BigEndian.Uint32(raw[8:]) != SegmentSize {
		return nil, ErrFormat
	}
	h := &header{}
	switch string(raw[:8]) {
	case magicV1:
		h.size = headerSizeV1
	case magic:
		if len(raw) < headerSize {
			return nil, ErrFormat
		}
		h.size = headerSize
	default:
		return nil, ErrFormat
	}
	copy(h.raw[:], raw[:h.size])
	p := raw[12:]
	copy(h.salt[:], p)
	p = p[saltSize:]
	copy(h.prefix[:], p)
	p = p[prefixSize:]
	copy(h.codec[:], p)
	p = p[8:]
	h.clockRate = binary.BigEndian.Uint32(p)
	h.start = int64(binary.BigEndian.Uint64(p[4:]))
	h.channels = p[12]
	if h.size == headerSize {
		copy(h.codec1[:], p[13:])
	} else {
		h.codec1 = h.codec
	}
	return h, nil
}

// sealer holds what sealing and opening segments need.
type sealer struct {
	aead cipher.AEAD
	ad   []byte // header ‖ tenant ‖ call ‖ recording
	h    *header
}

func newSealer(dataKey []byte, h *header, m Meta) (*sealer, error) {
	if len(dataKey) != DataKeySize {
		return nil, fmt.Errorf("recordings: data key must be %d bytes", DataKeySize)
	}
	// Each recording's segment key comes from its data key and its own
	// salt, so a data key is never used directly.
	key, err := hkdf.Key(sha256.New, dataKey, h.salt[:], "switchboard recording v1 segment key", 32)
	if err != nil {
		return nil, fmt.Errorf("recordings: derive segment key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	ad := append([]byte(nil), h.raw[:h.size]...)
	ad = append(ad, m.TenantID[:]...)
	ad = append(ad, m.CallID[:]...)
	ad = append(ad, m.RecordingID[:]...)
	return &sealer{aead: aead, ad: ad, h: h}, nil
}

// nonce is prefix ‖ segment counter ‖ last-segment flag.
func (s *sealer) nonce(dst *[12]byte, i uint32, last bool) []byte {
	copy(dst[:], s.h.prefix[:])
	binary.BigEndian.PutUint32(dst[prefixSize:], i)
	dst[11] = 0
	if last {
		dst[11] = 1
	}
	return dst[:]
}

// Writer seals a recording as it is made. Nothing but ciphertext and the
// header ever reaches the underlying writer.
type Writer struct {
	w     io.Writer
	s     *sealer
	buf   []byte // the current segment's plaintext
	out   []byte // sealed segment scratch
	n     uint32 // segments written
	nonce [12]byte
	err   error
	done  bool
	// starts holds the time of each segment's first record, the index a
	// player uses to decrypt only the segments a range touches.
	starts []time.Time
}

// NewWriter writes the header of a new recording to w and returns a writer
// for its records.
func NewWriter(w io.Writer, dataKey []byte, m Meta) (*Writer, error) {
	return NewWriterWith(w, dataKey, m, rand.Reader)
}

// NewWriterWith is NewWriter taking the salt and then the nonce prefix
// from random: the known-answer vectors use a fixed one.
func NewWriterWith(w io.Writer, dataKey []byte, m Meta, random io.Reader) (*Writer, error) {
	h := &header{clockRate: m.ClockRate, start: m.Start.UnixNano(), channels: m.Channels}
	copy(h.codec[:], m.Codec)
	copy(h.codec1[:], m.ChannelCodec(ChannelOperator))
	if _, err := io.ReadFull(random, h.salt[:]); err != nil {
		return nil, fmt.Errorf("recordings: salt: %w", err)
	}
	if _, err := io.ReadFull(random, h.prefix[:]); err != nil {
		return nil, fmt.Errorf("recordings: nonce prefix: %w", err)
	}
	h.encode()
	s, err := newSealer(dataKey, h, m)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(h.raw[:h.size]); err != nil {
		return nil, fmt.Errorf("recordings: write header: %w", err)
	}
	return &Writer{w: w, s: s, buf: make([]byte, 0, segmentPayload), out: make([]byte, 0, SegmentSize)}, nil
}

// Write appends a record. Records never straddle segments: a segment that
// cannot hold the next record is padded and sealed first, so every segment
// decodes alone.
func (w *Writer) Write(r Record) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return errors.New("recordings: write after close")
	}
	if len(r.Payload) > maxPayload {
		return fmt.Errorf("recordings: record of %d bytes is larger than a segment", len(r.Payload))
	}
	if len(w.buf)+recordHeader+len(r.Payload) > segmentPayload {
		w.pad()
		if w.err = w.seal(false); w.err != nil {
			return w.err
		}
	}
	if len(w.buf) == 0 {
		w.starts = append(w.starts, r.At)
	}
	w.buf = append(w.buf, byte(r.Kind), r.Channel)
	w.buf = binary.BigEndian.AppendUint64(w.buf, uint64(r.At.UnixNano()))
	w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(len(r.Payload)))
	w.buf = append(w.buf, r.Payload...)
	return nil
}

// pad fills the segment to its full size with zero bytes, which read as
// a padding record.
func (w *Writer) pad() {
	for len(w.buf) < segmentPayload {
		w.buf = append(w.buf, 0)
	}
}

func (w *Writer) seal(last bool) error {
	w.out = w.s.aead.Seal(w.out[:0], w.s.nonce(&w.nonce, w.n, last), w.buf, w.s.ad)
	if _, err := w.w.Write(w.out); err != nil {
		return fmt.Errorf("recordings: write segment %d: %w", w.n, err)
	}
	w.n++
	w.buf = w.buf[:0]
	clear(w.buf[:cap(w.buf)])
	return nil
}

// Close seals the last segment, marked last, so a reader can tell a
// complete recording from a truncated one.
func (w *Writer) Close() error {
	if w.err != nil || w.done {
		return w.err
	}
	w.done = true
	w.err = w.seal(true)
	return w.err
}

// errDiscarded is what a discarded writer says from then on.
var errDiscarded = errors.New("recordings: the recording was destroyed")

// discard zeroes the plaintext of the segment not yet sealed and ends the
// writer: the recording is destroyed, and what it held must not linger in
// memory.
func (w *Writer) discard() {
	clear(w.buf[:cap(w.buf)])
	w.buf = w.buf[:0]
	w.done, w.err = true, errDiscarded
}

// Segments reports how many segments have been written.
func (w *Writer) Segments() int { return int(w.n) }

// SegmentStarts returns the time of each written segment's first record;
// an empty segment has none, so there may be one fewer than Segments.
func (w *Writer) SegmentStarts() []time.Time { return w.starts[:min(len(w.starts), int(w.n))] }

// Reader opens a recording, all of it or one segment at a time.
type Reader struct {
	r     io.ReaderAt
	size  int64
	s     *sealer
	nSeg  int
	meta  Meta
	nonce [12]byte
	// truncated: the final segment was sealed as a middle one, so the
	// object ends before the recording did.
	truncated bool
}

// NewReader checks the recording in r (size bytes long) and returns a
// reader that decrypts with dataKey. The IDs in m must be the recording's
// own. The header is believed only once the object's final segment has
// opened with it, which also tells a complete recording from one cut at a
// segment boundary (Truncated); an object that ends inside a segment, or
// whose final segment does not open, is ErrTampered.
func NewReader(r io.ReaderAt, size int64, dataKey []byte, m Meta) (*Reader, error) {
	raw := make([]byte, headerSize)
	n, err := r.ReadAt(raw, 0)
	if err != nil && !(errors.Is(err, io.EOF) && n >= headerSizeV1) {
		return nil, ErrFormat
	}
	h, err := decodeHeader(raw[:n])
	if err != nil {
		return nil, err
	}
	s, err := newSealer(dataKey, h, m)
	if err != nil {
		return nil, err
	}
	body := size - int64(h.size)
	if body < tagSize {
		return nil, ErrTruncated
	}
	rd := &Reader{r: r, size: size, s: s, nSeg: int((body + SegmentSize - 1) / SegmentSize)}
	last := rd.nSeg - 1
	if _, err := rd.open(last, true); err != nil {
		if _, err2 := rd.open(last, false); err2 != nil {
			return nil, err
		}
		rd.truncated = true
	}
	// Authenticated: the header's fields may be used now.
	m.Codec, m.OperatorCodec = string(trimZero(h.codec[:])), string(trimZero(h.codec1[:]))
	m.ClockRate, m.Start, m.Channels = h.clockRate, time.Unix(0, h.start), h.channels
	rd.meta = m
	return rd, nil
}

func trimZero(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// Meta is the recording's header information.
func (r *Reader) Meta() Meta { return r.meta }

// Segments is the number of segments in the object.
func (r *Reader) Segments() int { return r.nSeg }

// Truncated reports whether the object ends at a segment boundary before
// the recording's final segment: a recording cut short (a crash), whose
// segments all read.
func (r *Reader) Truncated() bool { return r.truncated }

// Segment decrypts segment i alone and returns its records. Only the
// object's final segment may carry the last flag, and it must unless the
// reader found the object truncated.
func (r *Reader) Segment(i int) ([]Record, error) {
	if i < 0 || i >= r.nSeg {
		return nil, fmt.Errorf("recordings: no segment %d of %d", i, r.nSeg)
	}
	pt, err := r.open(i, i == r.nSeg-1 && !r.truncated)
	if err != nil {
		return nil, err
	}
	return parseRecords(pt)
}

// open reads and decrypts segment i, sealed with the last flag or not.
func (r *Reader) open(i int, last bool) ([]byte, error) {
	off := int64(r.s.h.size) + int64(i)*SegmentSize
	n := min(int64(SegmentSize), r.size-off)
	ct := make([]byte, n)
	if _, err := r.r.ReadAt(ct, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("recordings: read segment %d: %w", i, err)
	}
	pt, err := r.s.aead.Open(ct[:0], r.s.nonce(&r.nonce, uint32(i), last), ct, r.s.ad)
	if err != nil {
		return nil, ErrTampered
	}
	return pt, nil
}

// parseRecords splits a segment's plaintext into records.
func parseRecords(pt []byte) ([]Record, error) {
	var out []Record
	for len(pt) > 0 {
		if Kind(pt[0]) == kindPadding {
			break
		}
		if len(pt) < recordHeader {
			return nil, ErrTampered
		}
		n := int(binary.BigEndian.Uint16(pt[10:]))
		if len(pt) < recordHeader+n {
			return nil, ErrTampered
		}
		out = append(out, Record{
			Kind:    Kind(pt[0]),
			Channel: pt[1],
			At:      time.Unix(0, int64(binary.BigEndian.Uint64(pt[2:]))),
			Payload: pt[recordHeader : recordHeader+n],
		})
		pt = pt[recordHeader+n:]
	}
	return out, nil
}

// Records decrypts the whole recording in order, calling fn for each
// record, and fails if any segment is altered, missing or reordered. A
// truncated recording's records are all given, then ErrTruncated.
func (r *Reader) Records(fn func(Record) error) error {
	for i := 0; i < r.nSeg; i++ {
		recs, err := r.Segment(i)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if err := fn(rec); err != nil {
				return err
			}
		}
	}
	if r.truncated {
		return ErrTruncated
	}
	return nil
}
