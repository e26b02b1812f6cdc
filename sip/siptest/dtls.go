package siptest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	sb "github.com/switchboard-voice/switchboard"
)

// A phone offering DTLS-SRTP over ICE (UDP/TLS/RTP/SAVPF), as WebRTC-capable
// SBCs and messenger platforms' SIP servers do: its media is a pion
// PeerConnection, an implementation independent of the service's, on
// loopback. Its offer is the PeerConnection's, as it comes (a=mid, BUNDLE,
// rtcp-mux, every candidate gathered, a=setup:actpass).

// dtlsMedia is a call's PeerConnection.
type dtlsMedia struct {
	pc        *webrtc.PeerConnection
	track     *webrtc.TrackLocalStaticRTP
	connected chan struct{} // DTLS is up on the phone's side
	failed    chan struct{} // the PeerConnection failed (ICE or DTLS)
	state     atomic.Value  // webrtc.PeerConnectionState
	once      [2]sync.Once  // connected, failed: closed once (an ICE restart connects again)
}

// newDTLSMedia makes the PeerConnection for codec and its offer.
func newDTLSMedia(codec sb.Codec, lite bool, sink func([]byte)) (*dtlsMedia, error) {
	m := &webrtc.MediaEngine{}
	mime, channels := "audio/"+codec.Name, uint16(0)
	if codec.Name == "opus" {
		mime, channels = webrtc.MimeTypeOpus, 2
	}
	capability := webrtc.RTPCodecCapability{MimeType: mime, ClockRate: codec.ClockRate, Channels: channels}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: capability, PayloadType: webrtc.PayloadType(codec.PayloadType)}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	// A SIP answer names no SSRC (a=ssrc) and no mid header extension:
	// the one audio section's stream is the one that comes.
	se.SetHandleUndeclaredSSRCWithoutAnswer(true)
	se.SetLite(lite)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	d := &dtlsMedia{pc: pc, connected: make(chan struct{}), failed: make(chan struct{})}
	d.state.Store(webrtc.PeerConnectionStateNew)
	if d.track, err = webrtc.NewTrackLocalStaticRTP(capability, "audio", "siptest"); err != nil {
		pc.Close()
		return nil, err
	}
	if _, err := pc.AddTrack(d.track); err != nil {
		pc.Close()
		return nil, err
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			sink(buf[:n])
		}
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		d.state.Store(s)
		switch s {
		case webrtc.PeerConnectionStateConnected:
			d.once[0].Do(func() { close(d.connected) })
		case webrtc.PeerConnectionStateFailed:
			d.once[1].Do(func() { close(d.failed) })
		}
	})
	return d, nil
}

// offer is the PeerConnection's offer with every candidate; a non-empty
// fingerprint replaces the certificate's in it (a stranger's offer).
func (d *dtlsMedia) offer(fingerprint string) ([]byte, error) {
	sdp, err := d.localOffer(nil)
	if err == nil && fingerprint != "" {
		sdp = fingerprintRE.ReplaceAll(sdp, []byte("a=fingerprint:"+fingerprint))
	}
	return sdp, err
}

// localOffer makes and sets an offer with every candidate gathered.
func (d *dtlsMedia) localOffer(opts *webrtc.OfferOptions) ([]byte, error) {
	o, err := d.pc.CreateOffer(opts)
	if err != nil {
		return nil, err
	}
	gathered := webrtc.GatheringCompletePromise(d.pc)
	if err := d.pc.SetLocalDescription(o); err != nil {
		return nil, err
	}
	<-gathered
	return []byte(d.pc.LocalDescription().SDP), nil
}

var fingerprintRE = regexp.MustCompile(`a=fingerprint:[^\r\n]*`)

// answered takes the service's answer.
func (d *dtlsMedia) answered(body []byte) error {
	return d.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)})
}

// reoffer is the phone's description again with another direction: the
// same ICE credentials, fingerprint and candidates, so the association is
// kept.
func (d *dtlsMedia) reoffer(dir string) []byte {
	sdp := d.pc.LocalDescription().SDP
	for _, old := range []string{"a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"} {
		sdp = strings.ReplaceAll(sdp, old+"\r\n", "a="+dir+"\r\n")
	}
	return []byte(sdp)
}

// answer answers the service's offer: an INVITE's (a phone answering
// calls), or a re-INVITE's (hold or resume) on the association it has.
func (d *dtlsMedia) answer(offer []byte) ([]byte, error) {
	if err := d.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)}); err != nil {
		return nil, err
	}
	a, err := d.pc.CreateAnswer(nil)
	if err != nil {
		return nil, err
	}
	gathered := webrtc.GatheringCompletePromise(d.pc)
	if err := d.pc.SetLocalDescription(a); err != nil {
		return nil, err
	}
	<-gathered
	return []byte(d.pc.LocalDescription().SDP), nil
}

// restartOffer is a new offer of the PeerConnection's that restarts ICE
// (new credentials, the same certificate).
func (d *dtlsMedia) restartOffer() ([]byte, error) {
	return d.localOffer(&webrtc.OfferOptions{ICERestart: true})
}

// RestartICE restarts ICE on a DTLS phone's call by re-INVITE (RFC 8839
// §4.4.1.1.1): the PeerConnection's offer with new credentials, its
// answer taken. It returns the answer.
func (c *Call) RestartICE(ctx context.Context) ([]byte, error) {
	if c.dtls == nil {
		return nil, errors.New("siptest: not a DTLS call")
	}
	offer, err := c.dtls.restartOffer()
	if err != nil {
		return nil, err
	}
	res, err := c.Reinvite(ctx, offer, nil)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != 200 {
		return nil, &StatusError{Code: res.StatusCode, Reason: res.Reason}
	}
	return res.Body(), c.dtls.answered(res.Body())
}

// write sends one RTP packet; the track sets its SSRC and payload type.
func (d *dtlsMedia) write(pkt []byte) error {
	_, err := d.track.Write(pkt)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// WaitMedia waits until the call's DTLS-SRTP is up on the phone's side
// (a DTLS phone), or fails: ICE or DTLS failed, or ctx ended first. A
// phone of another kind has nothing to wait for.
func (c *Call) WaitMedia(ctx context.Context) error {
	if c.dtls == nil {
		return nil
	}
	select {
	case <-c.dtls.connected:
		return nil
	case <-c.dtls.failed:
		return errors.New("siptest: DTLS-SRTP failed")
	case <-ctx.Done():
		return fmt.Errorf("siptest: DTLS-SRTP not up (%v): %w", c.dtls.state.Load(), ctx.Err())
	}
}

// MediaState is the PeerConnection's state of a DTLS phone's call ("" for
// another phone).
func (c *Call) MediaState() string {
	if c.dtls == nil {
		return ""
	}
	return c.dtls.state.Load().(webrtc.PeerConnectionState).String()
}
