package webrtc

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
)

// litePort is an ICE-lite session's switchboard.MediaPort.
type litePort struct {
	s        *liteSession
	prefer   []string // codec names, the first negotiated one is used until told otherwise
	sink     atomic.Pointer[func([]byte)]
	recvDTMF atomic.Uint32
	rxAt     int64 // of the packet being handed to the sink; under s.in

	mu     sync.RWMutex
	codecs map[string]negotiatedCodec // what the browser took, by name
	codec  sb.Codec                   // the one in use

	wmu     sync.Mutex // guards the rest, and the sending SRTP context
	hdr     rtp.Header // the packet being sent, parsed without allocating
	out     []byte     // its SRTP form
	packets uint32     // sent, for sender reports
	octets  uint32
	lastTS  uint32    // RTP timestamp of the last packet sent
	lastAt  time.Time // when it was sent
	lastSR  time.Time
	fresh   bool // sent since the last sender report
}

var (
	_ sb.ReceiveClock = (*litePort)(nil)
	_ sb.LinkReporter = (*litePort)(nil)
	_ sb.CodecChooser = (*litePort)(nil)
)

// negotiate takes the codecs of the answer: the first of ours the browser
// took is the one used, and the first telephone-event is what its keys
// come as.
func (p *litePort) negotiate(codecs []webrtc.RTPCodecParameters) error {
	byName := negotiatedCodecs(codecs)
	var use negotiatedCodec
	for _, name := range p.prefer {
		if c, ok := byName[name]; ok {
			use = c
			break
		}
	}
	if use.Name == "" {
		return sb.Errorf(sb.EINVALID, "the SDP answer was not accepted: it takes none of PCMU, PCMA and Opus")
	}
	p.mu.Lock()
	p.codecs, p.codec = byName, use.Codec
	p.mu.Unlock()
	for _, c := range codecs {
		if c.MimeType == "audio/telephone-event" {
			p.recvDTMF.Store(uint32(c.PayloadType))
			break
		}
	}
	return nil
}

// ReceivedAt is the kernel's receive time of the packet the sink is being
// handed, or 0 when unknown.
func (p *litePort) ReceivedAt() int64 { return p.rxAt }

// Link reports the ICE and DTLS states and the nominated pair.
func (p *litePort) Link() sb.LinkInfo { return p.s.link() }

// Codec is the audio codec in use; DTMFType is telephone-event's payload
// type at its clock rate.
func (p *litePort) Codec() sb.Codec {
	p.mu.RLock()
	c := p.codec
	p.mu.RUnlock()
	if c.Name == "" {
		c = sb.PCMU // not negotiated yet
	}
	if c.DTMFType == 0 && c.IsG711() {
		c.DTMFType = uint8(p.recvDTMF.Load())
	}
	return c
}

// CanUse reports whether the browser took the named codec.
func (p *litePort) CanUse(name string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	_, ok := p.codecs[name]
	return ok
}

// UseCodec makes the named codec the one sent and expected from now on.
func (p *litePort) UseCodec(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.codecs[name]
	if ok {
		p.codec = c.Codec
	}
	return ok
}

func (p *litePort) SetSink(fn func([]byte)) {
	if fn == nil {
		p.sink.Store(nil)
		return
	}
	p.sink.Store(&fn)
}

// received hands a decrypted packet to the sink; the caller holds s.in.
func (p *litePort) received(pkt []byte, at int64) {
	p.rxAt = at
	if fn := p.sink.Load(); fn != nil {
		(*fn)(pkt)
	}
}

// WriteRTP sends pkt to the browser under our SSRC, which it writes into
// pkt (the bridge allows it). Before DTLS is done there is nowhere to
// send to, and the packet is dropped.
func (p *litePort) WriteRTP(pkt []byte) error {
	k, r := p.s.keys.Load(), p.s.route.Load()
	if k == nil || r == nil || len(pkt) < 12 {
		return nil
	}
	media.SetSSRC(pkt, p.s.ssrc)
	p.wmu.Lock()
	defer p.wmu.Unlock()
	out, err := k.out.EncryptRTP(p.out[:0], pkt, &p.hdr)
	if err != nil {
		return nil // not RTP: nothing the browser could use
	}
	p.out = out[:0]
	p.packets++
	p.octets += uint32(payloadSize(pkt, p.hdr.MarshalSize()))
	p.lastTS, p.lastAt, p.fresh = p.hdr.Timestamp, time.Now(), true
	_, err = r.conn.WriteToAddrPort(out, r.to)
	return err
}

// senderReport sends an RTCP sender report (RFC 3550 §6.4.1) at most once
// every senderReportGap, when audio was sent since the last.
func (p *litePort) senderReport(now time.Time) {
	k, r := p.s.keys.Load(), p.s.route.Load()
	if k == nil || r == nil {
		return
	}
	p.mu.RLock()
	rate := p.codec.ClockRate
	p.mu.RUnlock()
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if !p.fresh || now.Sub(p.lastSR) < senderReportGap {
		return
	}
	p.lastSR, p.fresh = now, false
	ts := p.lastTS + uint32(now.Sub(p.lastAt).Seconds()*float64(rate))
	// A compound packet: the report, then our CNAME (RFC 3550 §6.1).
	raw, err := rtcp.Marshal([]rtcp.Packet{
		&rtcp.SenderReport{SSRC: p.s.ssrc, NTPTime: ntpTime(now), RTPTime: ts, PacketCount: p.packets, OctetCount: p.octets},
		&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: p.s.ssrc,
			Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: liteCNAME}}}}},
	})
	if err != nil {
		return
	}
	out, err := k.out.EncryptRTCP(nil, raw, nil)
	if err != nil {
		return
	}
	r.conn.WriteToAddrPort(out, r.to)
}

// payloadSize is the payload octets of an RTP packet whose header takes
// hdrLen: what follows the header, less any padding (RFC 3550 §5.1).
func payloadSize(pkt []byte, hdrLen int) int {
	n := len(pkt) - hdrLen
	if pkt[0]&0x20 != 0 && n > 0 {
		n -= min(int(pkt[len(pkt)-1]), n)
	}
	return n
}

// ntpTime is t in NTP's 32.32 fixed-point format.
func ntpTime(t time.Time) uint64 {
	const unixToNTP = 2208988800
	s := uint64(t.Unix()) + unixToNTP
	f := uint64(t.Nanosecond()) << 32 / 1e9
	return s<<32 | f
}
