package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// An A-law caller answered by a page that sends μ-law: the recording keeps
// each direction in the codec it arrived in, and the WAV played through a
// grant holds, sample by sample, what each side sent, each decoded in its
// own law.
func TestMixedLawCallPlaysBackAsEachSideSpoke(t *testing.T) {
	g := mustGrantFixture(t, sb.SupportPolicy{Access: true, MaxTTLSeconds: 3600})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	phone := mustPhone(t, siptest.Options{Transport: "udp", Codec: sb.PCMA, Headers: map[string]string{"X-Recording-Consent": "yes"}})
	call, in := answeredCall(t, g.m, phone, g.op, "3000", "2000")
	if got := g.op.Codec(); got != "PCMU" {
		t.Fatalf("the operator's page sends %s, want PCMU for this test", got)
	}
	const frames = 25
	var mu sync.Mutex
	sent := map[bool][][]byte{} // by fromCaller
	send := func(fromCaller bool, fn func([]byte) error) {
		sendPattern(t, frames, func(p []byte) error {
			mu.Lock()
			sent[fromCaller] = append(sent[fromCaller], bytes.Clone(p))
			mu.Unlock()
			return fn(p)
		})
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		send(false, g.op.SendAudio)
	}()
	send(true, func(p []byte) error { return call.SendRTP(p, false) })
	wg.Wait()
	time.Sleep(100 * time.Millisecond) // the last frames cross the bridge
	callerHangsUp(ctx, t, g.m, g.f.APIKey, call, in.CallID)

	gr := g.adminGrant(t, in.CallID)
	var rec sb.Recording
	if code := apiGet(t, g.m, g.f.APIKey, "/v1/calls/"+in.CallID.String()+"/recording", &rec); code != http.StatusOK ||
		rec.Codec != "PCMA" || rec.OperatorCodec != "PCMU" {
		t.Fatalf("recording record: %d %+v, want PCMA for the caller and PCMU for the operator", code, rec)
	}
	req, _ := http.NewRequest(http.MethodGet, g.m.HTTPURL()+"/v1/grants/"+gr.ID.String()+"/audio", nil)
	res, err := g.admin.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	wav, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "audio/wav" || len(wav) < 44 {
		t.Fatalf("audio: %d %v, %d bytes", res.StatusCode, res.Header, len(wav))
	}
	// Each channel as its own run of 16-bit samples.
	var left, right []byte
	for f := 44; f+4 <= len(wav); f += 4 {
		left, right = append(left, wav[f:f+2]...), append(right, wav[f+2:f+4]...)
	}
	// A frame is laid where it arrived; the next one, arriving a little
	// early, may cover its last samples, so the first 100 are compared.
	heard := func(channel []byte, frames [][]byte, decode func(byte) int16) int {
		n := 0
		for _, f := range frames {
			var want []byte
			for _, b := range f[:100] {
				want = binary.LittleEndian.AppendUint16(want, uint16(decode(b)))
			}
			if bytes.Contains(channel, want) {
				n++
			}
		}
		return n
	}
	if n := heard(left, sent[true], media.AlawToLinear); n < frames-3 {
		t.Errorf("the caller's channel holds %d of the %d A-law frames sent, decoded as A-law", n, frames)
	}
	if n := heard(right, sent[false], media.UlawToLinear); n < frames-3 {
		t.Errorf("the operator's channel holds %d of the %d μ-law frames sent, decoded as μ-law", n, frames)
	}
}
