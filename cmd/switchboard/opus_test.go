package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
	"github.com/switchboard-voice/switchboard/opclient"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// A trunk that offers Opus over SDES-SRTP (a messenger platform calling
// over SIP) gets Opus, carried unchanged: the caller's frames reach the
// operator's browser byte for byte under the browser's payload type, and
// the operator's reach the caller under the trunk's. The operator's
// shift-long PeerConnection then carries the next caller's G.711. An
// operator whose connection took no Opus is not offered the Opus call,
// and Opus over plain RTP is refused with 488 rather than half working.
func TestOpusTrunkCallCarriedUnchanged(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 2)
	noOpus := mustOperator(t, m, f.Operators[0], opclient.WithoutOpus()) // idle longest: first in line
	op := mustOperator(t, m, f.Operators[1])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	trunkOpus := sb.Codec{Name: "opus", PayloadType: 109, ClockRate: 48000} // the trunk's own payload type
	phone := mustPhone(t, siptest.Options{Transport: "udp", Codec: trunkOpus, SRTP: "AES_CM_128_HMAC_SHA1_80"})
	call, in := answeredCall(t, m, phone, op, "+15550002222", "2000")
	if got := op.Codec(); got != "opus" {
		t.Fatalf("the operator was told to send %q, want opus", got)
	}
	talkBothWaysIn(t, call, op, trunkOpus.PayloadType, sb.Opus.PayloadType)
	if n := call.Undecryptable(); n != 0 {
		t.Errorf("%d packets from the service failed SRTP at the phone", n)
	}
	select {
	case in := <-noOpus.Incoming():
		t.Errorf("the Opus call was offered to an operator without Opus: %+v", in)
	default:
	}
	rec := callerHangsUp(ctx, t, m, f.APIKey, call, in.CallID)
	if rec.Status != sb.CallCompleted || rec.Codec != "opus" || rec.OperatorID == nil || *rec.OperatorID != f.Operators[1].ID {
		t.Errorf("record %q, codec %q, operator %v: want completed in opus by %s", rec.Status, rec.Codec, rec.OperatorID, f.Operators[1].ID)
	}

	// The same PeerConnection, the next call in G.711.
	if err := noOpus.SetAway(ctx); err != nil {
		t.Fatal(err)
	}
	call, in = answeredCall(t, m, mustPhone(t, siptest.Options{Transport: "udp"}), op, "+15550003333", "2000")
	if got := op.Codec(); got != "PCMU" {
		t.Errorf("after the Opus call the operator was told to send %q, want PCMU", got)
	}
	talkBothWays(t, call, op)
	if rec := callerHangsUp(ctx, t, m, f.APIKey, call, in.CallID); rec.Codec != "PCMU" {
		t.Errorf("the G.711 call's record says codec %q", rec.Codec)
	}

	// Opus in the clear is not taken: Opus goes to browsers unchanged, so
	// only a trunk that keeps it private on the way gets it.
	_, err := mustPhone(t, siptest.Options{Transport: "udp", Codec: trunkOpus}).Invite(ctx, m.SIPAddr(), "+15550004444", "2000")
	var se *siptest.StatusError
	if !errors.As(err, &se) || se.Code != 488 {
		t.Errorf("Opus over plain RTP: %v, want 488", err)
	}
}

// A recorded Opus call is stored as it arrived and played as Ogg Opus: the
// caller's packets and the operator's, byte for byte, in a file whose
// pages a separate Ogg reader (pion's) accepts, with two channels each
// its own stream.
func TestOpusCallRecordedAsOggOpus(t *testing.T) {
	g := mustGrantFixture(t, sb.SupportPolicy{Access: true, MaxTTLSeconds: 3600})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	trunkOpus := sb.Codec{Name: "opus", PayloadType: 109, ClockRate: 48000}
	phone := mustPhone(t, siptest.Options{Transport: "udp", Codec: trunkOpus, SRTP: "AEAD_AES_128_GCM",
		Headers: map[string]string{"X-Recording-Consent": "yes"}})
	call, in := answeredCall(t, g.m, phone, g.op, "3000", "2000")
	const frames = 50
	exchangeOpus(ctx, t, call, g.op, trunkOpus.PayloadType, frames)
	if rec := callerHangsUp(ctx, t, g.m, g.f.APIKey, call, in.CallID); rec.Codec != "opus" {
		t.Fatalf("record codec %q", rec.Codec)
	}
	checkOggOpus(t, g.admin, in.CallID, frames)
}

// checkOggOpus plays the call's recording through admin's grant: Ogg Opus
// with each side its own stream, holding nine in ten of the frames each
// side sent (opusFrame), about as long as they last.
func checkOggOpus(t *testing.T, admin *person, callID sb.ID, frames int) {
	t.Helper()
	head, audio, granule := playOggOpus(t, admin, callID)
	if head.Channels != 2 || head.ChannelMap != 1 || head.StreamCount != 2 || head.CoupledCount != 0 || head.SampleRate != 48000 {
		t.Errorf("OpusHead %+v: want 2 channels, each its own stream", head)
	}
	if heard := heardFrames(audio, frames); heard['c'] < frames*9/10 || heard['o'] < frames*9/10 {
		t.Errorf("the file holds %d of the caller's %d packets and %d of the operator's", heard['c'], frames, heard['o'])
	}
	if seconds := float64(granule) / 48000; seconds < 0.9 || seconds > 3 {
		t.Errorf("the file lasts %.2f s for a call of about a second of audio", seconds)
	}
}

// opusFrame is a 20 ms SILK packet (TOC 0x48) whose frame names its side
// and number.
func opusFrame(side byte, i int) []byte {
	return append([]byte{0x48}, bytes.Repeat([]byte{side, byte(i)}, 30+i)...)
}

// exchangeOpus has the caller and the operator each send frames
// opusFrames at the pace of audio, and returns once nine in ten of each
// side's have reached the other (a recording's tap is on their way).
func exchangeOpus(ctx context.Context, t *testing.T, call *siptest.Call, op *opclient.Client, callerPT uint8, frames int) {
	t.Helper()
	toCaller, toOperator := make(chan struct{}, frames), make(chan struct{}, frames)
	call.SetSink(func(pkt []byte) {
		if h, ok := media.ParseHeader(pkt); ok && h.PayloadType == callerPT && bytes.HasPrefix(pkt[h.PayloadOffset:h.PayloadEnd], []byte{0x48, 'o'}) {
			toCaller <- struct{}{}
		}
	})
	op.SetAudioSink(func(p *rtp.Packet) {
		if bytes.HasPrefix(p.Payload, []byte{0x48, 'c'}) {
			toOperator <- struct{}{}
		}
	})
	for i := range frames {
		if err := call.SendRTP(opusFrame('c', i), false); err != nil {
			t.Fatal(err)
		}
		if err := op.SendAudio(opusFrame('o', i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // the pace of audio
	}
	for _, arrived := range []chan struct{}{toCaller, toOperator} {
		for range frames * 9 / 10 {
			select {
			case <-arrived:
			case <-ctx.Done():
				t.Fatal("the Opus frames did not cross the call")
			}
		}
	}
}

// heardFrames counts, per side ('c' the caller, 'o' the operator), the
// frames opusFrame made that a recording's audio holds. A frame is found
// by what follows its first byte: in a multistream packet a length may
// follow it (RFC 6716 Appendix B).
func heardFrames(audio []byte, frames int) map[byte]int {
	heard := map[byte]int{}
	for i := range frames {
		for _, side := range []byte{'c', 'o'} {
			if bytes.Contains(audio, opusFrame(side, i)[1:]) {
				heard[side]++
			}
		}
	}
	return heard
}

// adminGrant is the tenant admin's grant to play the call's recording,
// once the recording is stored (the call's end comes first).
func (g *grantFixture) adminGrant(t *testing.T, callID sb.ID) *sb.AccessGrant {
	t.Helper()
	return grantFor(t, g.admin, callID)
}

// grantFor is admin's grant to play the call's recording, once it is
// stored.
func grantFor(t *testing.T, admin *person, callID sb.ID) *sb.AccessGrant {
	t.Helper()
	var gr sb.AccessGrant
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, body := admin.do(http.MethodPost, "/v1/calls/"+callID.String()+"/grants", `{"reason":"codec check","ticket":"T-7"}`, &gr)
		if code == http.StatusCreated {
			return &gr
		}
		if time.Now().After(deadline) {
			t.Fatalf("grant: %d %s", code, body)
		}
	}
}

// playOggOpus plays an Opus call's recording through admin's grant: the
// file must be Ogg Opus whose every page a separate reader (pion's)
// accepts. It returns the OpusHead, the pages' payloads and the last
// granule position.
func playOggOpus(t *testing.T, admin *person, callID sb.ID) (*oggreader.OggHeader, []byte, uint64) {
	t.Helper()
	gr := grantFor(t, admin, callID)
	req, _ := http.NewRequest(http.MethodGet, admin.m.HTTPURL()+"/v1/grants/"+gr.ID.String()+"/audio", nil)
	res, err := admin.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	file, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "audio/ogg" ||
		!strings.Contains(res.Header.Get("Content-Disposition"), ".opus") {
		t.Fatalf("audio: %d %v", res.StatusCode, res.Header)
	}
	r, head, err := oggreader.NewWith(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	var audio []byte
	var granule uint64
	for {
		payload, page, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("page: %v", err) // a bad CRC too
		}
		audio, granule = append(audio, payload...), page.GranulePosition
	}
	return head, audio, granule
}
