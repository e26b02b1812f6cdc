package webrtc

import (
	"context"
	"fmt"

	"github.com/pion/webrtc/v4"

	sb "github.com/switchboard-voice/switchboard"
)

// OfferVisitor makes the leg of a call we place to a messenger user
// (WhatsApp's business-initiated calls): a PeerConnection offering Opus,
// then G.711 and telephone-event, with our candidates in the offer. The
// answer arrives later through the messenger's signalling (SetAnswer); the
// leg's Answer waits for the media to connect, as for a caller's.
func (e *Engine) OfferVisitor(ctx context.Context) (*Visitor, string, error) {
	v, err := e.newVisitor()
	if err != nil {
		return nil, "", err
	}
	offer, err := v.offer(ctx)
	if err != nil {
		v.Close()
		return nil, "", err
	}
	return v, offer, nil
}

func (v *Visitor) offer(ctx context.Context) (string, error) {
	tr, err := v.pc.AddTransceiverFromTrack(v.port.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
	if err != nil {
		return "", fmt.Errorf("webrtc: messenger track: %w", err)
	}
	if err := tr.SetCodecPreferences([]webrtc.RTPCodecParameters{opus, pcmu, pcma, telephoneEvent, telephoneEvent48}); err != nil {
		return "", fmt.Errorf("webrtc: codec preferences: %w", err)
	}
	go drainSender(tr.Sender())
	o, err := v.pc.CreateOffer(nil)
	if err != nil {
		return "", fmt.Errorf("webrtc: offer: %w", err)
	}
	return v.setLocal(ctx, o)
}

// SetAnswer takes the far end's answer to our offer: the codec it chose
// is the leg's. An answer that does not parse or chose nothing we carry
// is EINVALID.
func (v *Visitor) SetAnswer(answer string) error {
	codec, err := answeredCodec(answer)
	if err != nil {
		return err
	}
	if err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return sb.Errorf(sb.EINVALID, "the SDP answer was not accepted: %v", err)
	}
	v.port.track.mu.Lock()
	v.port.track.codec = codec
	v.port.track.mu.Unlock()
	v.port.recvDTMF.Store(uint32(codec.DTMFType))
	return nil
}
