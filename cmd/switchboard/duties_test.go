package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/opclient"
	"github.com/switchboard-voice/switchboard/recordings"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// colleague connects a second operator of the fixture's tenant: the
// first stays the one idle longest.
func (x *recordingFixture) colleague(t *testing.T) (*sb.User, *opclient.Client) {
	t.Helper()
	u := mustUser(t, x.m, x.f.Tenant.ID, "colleague@acme.test", sb.RoleOperator)
	return u, mustOperator(t, x.m, u)
}

// transferRings places a consented call the first operator answers; both
// sides send 25 pattern frames (recorded), then the first operator hands
// the call to the colleague, whose offer is ringing when this returns.
func (x *recordingFixture) transferRings(t *testing.T, to *sb.User, colleague *opclient.Client) (*siptest.Call, sb.ID) {
	t.Helper()
	phone := mustPhone(t, siptest.Options{Transport: "udp", Headers: map[string]string{"X-Recording-Consent": "yes"}})
	call, in := answeredCall(t, x.m, phone, x.op, "3000", "2000")
	bothTalk(t, call, x.op, 25)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := x.op.Transfer(ctx, in.CallID, to.ID); err != nil {
		t.Fatal(err)
	}
	if offer := waitIncoming(t, colleague); offer.CallID != in.CallID {
		t.Fatalf("the colleague was offered %s, want %s", offer.CallID, in.CallID)
	}
	return call, in.CallID
}

// bothTalk has the caller and the operator each send n pattern frames at
// once, and lets the last ones cross the bridge.
func bothTalk(t *testing.T, call *siptest.Call, op *opclient.Client, n int) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 160)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < n; i++ {
			op.SendAudio(media.PatternFrame(buf, uint32(i+1), time.Now())) // a failure shows as missing frames
			<-tick.C
		}
	}()
	sendPattern(t, n, func(p []byte) error { return call.SendRTP(p, false) })
	<-done
	time.Sleep(100 * time.Millisecond) // the last frames cross the bridge
}

// recordingControl pauses or resumes the call's recording through the API.
//
// It returns once the pause or resume is on the call's timeline: it has
// taken effect in the phase the call is in.
func (x *recordingFixture) recordingControl(t *testing.T, id sb.ID, what string) {
	t.Helper()
	typ := map[string]sb.EventType{"pause": sb.EventRecordingPaused, "resume": sb.EventRecordingResumed}[what]
	before := countEvents(callEvents(t, x.m, x.f.APIKey, id), typ)
	c := apiClient(t, x.m, x.f.APIKey)
	control := map[string]func() (answer, error){
		"pause":  func() (answer, error) { return c.PauseRecordingWithResponse(apiCtx(t), id) },
		"resume": func() (answer, error) { return c.ResumeRecordingWithResponse(apiCtx(t), id) },
	}[what]
	answers(t, http.StatusAccepted, "recording "+what)(control())
	for deadline := time.Now().Add(5 * time.Second); countEvents(callEvents(t, x.m, x.f.APIKey, id), typ) == before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("recording %s: not on the call's timeline after 5 s", what)
		}
	}
}

// countEvents counts the events of type typ in events.
func countEvents(events []sb.EventType, typ sb.EventType) int {
	n := 0
	for _, e := range events {
		if e == typ {
			n++
		}
	}
	return n
}

// Consent withdrawn through the API while a blind transfer rings the
// colleague destroys the recording then, not at the end of the call: the
// ring phase must act on consent as the talk phase does, and the rest of
// the call, once the colleague answers, is not recorded again.
func TestConsentWithdrawnWhileTransferRings(t *testing.T) {
	x := mustRecordingFixtureWith(t, map[string]string{"ring-timeout": "15s"})
	to, colleague := x.colleague(t)
	call, id := x.transferRings(t, to, colleague)
	if code := x.postConsent(t, x.f.APIKey, id, `{"given":false}`); code != http.StatusAccepted {
		t.Fatalf("withdraw during the transfer: %d, want 202", code)
	}

	// Destroyed while the colleague's offer still rings.
	var rec *sb.Recording
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var code int
		rec, code = callRecording(t, x.m, x.f.APIKey, id)
		if code == http.StatusOK && rec.Status == sb.RecordingDestroyed {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("5 s after consent was withdrawn while the transfer rang, the recording is %q (GET %d), want destroyed", rec.Status, code)
			break
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := colleague.Accept(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := colleague.WaitConnected(ctx, id); err != nil {
		t.Fatal(err)
	}
	bothTalk(t, call, colleague, 25)
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitCallEnded(t, x.m, x.f.APIKey, id)

	rec, code := callRecording(t, x.m, x.f.APIKey, id)
	if code != http.StatusOK || rec.Status != sb.RecordingDestroyed {
		t.Errorf("after the call: recording %q (GET %d), want destroyed", rec.Status, code)
	}
	full, err := metadata.NewRecordingStore(x.m.DB).FindRecordingByID(context.Background(), x.f.Tenant.ID, rec.ID)
	if err != nil || full.WrappedKey != nil {
		t.Errorf("the withdrawn recording keeps its key: %x, %v", full.WrappedKey, err)
	}
	if _, err := x.store.Open(context.Background(), recordings.ObjectKey(x.f.Tenant.ID, rec.ID)); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("the withdrawn recording's object: %v, want gone", err)
	}
	if n := countObjects(t, filepath.Join(x.s3.Root, x.s3.Bucket, "tenants")); n != 0 {
		t.Errorf("%d objects in the bucket, want none", n)
	}
	if n := countObjects(t, x.m.Config.RecordingSpool); n != 0 {
		t.Errorf("%d files left in the recording spool, want none", n)
	}
	events := callEvents(t, x.m, x.f.APIKey, id)
	if !hasInOrder(events, sb.EventRecordingStarted, sb.EventTransferred, sb.EventRecordingDestroyed, sb.EventAnswered, sb.EventEnded) {
		t.Errorf("events %v: want the recording destroyed after the transfer and before the colleague answered", events)
	}
	if n := countEvents(events, sb.EventRecordingStarted); n != 1 {
		t.Errorf("events %v: %d recordings started, want 1 (none after the withdrawal)", events, n)
	}
	if countEvents(events, sb.EventRecordingStored) != 0 {
		t.Errorf("events %v: a recording was stored after consent was withdrawn", events)
	}
}

// A pause asked for through the API while a transfer rings the colleague
// holds once they answer: what both sides say from then until the resume
// is not in the recording. The ring phase used to drop the pause while
// the API answered 202.
func TestPauseWhileTransferRingsHoldsAfterTheAnswer(t *testing.T) {
	x := mustRecordingFixtureWith(t, map[string]string{"ring-timeout": "15s"})
	to, colleague := x.colleague(t)
	call, id := x.transferRings(t, to, colleague) // 25 frames a side, kept
	x.recordingControl(t, id, "pause")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := colleague.Accept(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := colleague.WaitConnected(ctx, id); err != nil {
		t.Fatal(err)
	}
	frames := x.talkPausedThenResumed(ctx, t, call, colleague, id)
	for _, ch := range []uint8{recordings.ChannelCaller, recordings.ChannelOperator} {
		if n := frames[ch]; n < 45 || n > 55 {
			t.Errorf("channel %d: recorded %d frames, want about 50 (25 before the transfer, 25 after the resume; none of the 25 while paused)", ch, n)
		}
	}
	if events := callEvents(t, x.m, x.f.APIKey, id); !hasInOrder(events, sb.EventRecordingStarted, sb.EventTransferred, sb.EventRecordingPaused, sb.EventRecordingResumed, sb.EventRecordingStored) {
		t.Errorf("events %v lack the pause taken during the transfer, then the resume", events)
	}
}

// A pause asked for while the caller waits in a queue holds once an
// operator answers: the recording, which starts at the answer, keeps
// nothing until the resume. The queue's wait used to drop the pause while
// the API answered 202.
func TestPauseWhileQueuedHoldsAfterTheAnswer(t *testing.T) {
	x := mustRecordingFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"queue", "create", "-database-url", x.m.Config.DatabaseURL, "-tenant", x.f.Tenant.ID.String(),
		"-name", "sales", "-max-wait", "30s", "-member", x.f.Operators[0].Email, "-number", "2000"}, nil, &out, &errOut); err != nil {
		t.Fatalf("queue create: %v\n%s", err, errOut.String())
	}
	if err := x.op.SetAway(ctx); err != nil {
		t.Fatal(err)
	}
	phone := mustPhone(t, siptest.Options{Transport: "udp", Headers: map[string]string{"X-Recording-Consent": "yes"}})
	call, err := phone.InviteAsync(ctx, x.m.SIPAddr(), "3000", "2000")
	if err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	select {
	case <-call.Ringing():
	case <-ctx.Done():
		t.Fatal("no ringback while the caller waits in the queue")
	}
	var list struct {
		Calls []*sb.Call `json:"calls"`
	}
	if code := apiGet(t, x.m, x.f.APIKey, "/v1/calls", &list); code != http.StatusOK || len(list.Calls) != 1 {
		t.Fatalf("GET /v1/calls: %d, %d calls, want the one waiting", code, len(list.Calls))
	}
	id := list.Calls[0].ID
	x.recordingControl(t, id, "pause")

	if err := x.op.SetAvailable(ctx); err != nil {
		t.Fatal(err)
	}
	if in := waitIncoming(t, x.op); in.CallID != id {
		t.Fatalf("offered %s, want %s", in.CallID, id)
	}
	if err := x.op.Accept(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := call.Wait(ctx); err != nil {
		t.Fatalf("not answered: %v", err)
	}
	if err := x.op.WaitConnected(ctx, id); err != nil {
		t.Fatal(err)
	}
	frames := x.talkPausedThenResumed(ctx, t, call, x.op, id)
	for _, ch := range []uint8{recordings.ChannelCaller, recordings.ChannelOperator} {
		if n := frames[ch]; n < 20 || n > 27 {
			t.Errorf("channel %d: recorded %d frames, want about 25 (after the resume only)", ch, n)
		}
	}
	if events := callEvents(t, x.m, x.f.APIKey, id); !hasInOrder(events, sb.EventQueued, sb.EventRecordingPaused, sb.EventRecordingResumed, sb.EventRecordingStored) {
		t.Errorf("events %v lack the pause taken in the queue, then the resume", events)
	}
}

// dtmfCarrier is a carrier for calls switchboard places: it answers each
// INVITE at once with PCMU and telephone-event, without a challenge, and
// answers BYE.
type dtmfCarrier struct {
	addr  string
	rtp   *net.UDPConn
	acked chan netip.AddrPort // where switchboard's offer wants RTP, once the ACK came
	bye   chan struct{}

	mu    sync.Mutex
	offer netip.AddrPort
}

func mustDTMFCarrier(t *testing.T) *dtmfCarrier {
	t.Helper()
	c := &dtmfCarrier{acked: make(chan netip.AddrPort, 1), bye: make(chan struct{}, 1)}
	var err error
	if c.rtp, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("carrier"), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.addr = conn.LocalAddr().String()
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		to, err := offerAddr(req.Body())
		if err != nil {
			tx.Respond(sip.NewResponseFromRequest(req, sip.StatusNotAcceptableHere, "Not Acceptable Here", nil))
			return
		}
		c.mu.Lock()
		c.offer = to
		c.mu.Unlock()
		ap := c.rtp.LocalAddr().(*net.UDPAddr).AddrPort()
		body := fmt.Sprintf("v=0\r\no=carrier 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0 101\r\n"+
			"a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n", ap.Addr(), ap.Addr(), ap.Port())
		res := sip.NewSDPResponseFromRequest(req, []byte(body))
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "carrier", Host: "127.0.0.1", Port: conn.LocalAddr().(*net.UDPAddr).Port}})
		tx.Respond(res)
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		c.mu.Lock()
		to := c.offer
		c.mu.Unlock()
		select {
		case c.acked <- to:
		default:
		}
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
		select {
		case c.bye <- struct{}{}:
		default:
		}
	})
	go srv.ServeUDP(conn)
	t.Cleanup(func() {
		srv.Close()
		ua.Close()
		conn.Close()
		c.rtp.Close()
	})
	return c
}

// offerAddr is where an SDP offer wants its audio: c= and m=audio.
func offerAddr(body []byte) (netip.AddrPort, error) {
	var addr netip.Addr
	var port uint64
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "c=IN IP4 "):
			a, err := netip.ParseAddr(strings.TrimPrefix(line, "c=IN IP4 "))
			if err != nil {
				return netip.AddrPort{}, err
			}
			addr = a
		case strings.HasPrefix(line, "m=audio "):
			p, err := strconv.ParseUint(strings.Fields(line)[1], 10, 16)
			if err != nil {
				return netip.AddrPort{}, err
			}
			port = p
		}
	}
	if !addr.IsValid() || port == 0 {
		return netip.AddrPort{}, errors.New("no audio address in the offer")
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

// sendDTMF sends digit to `to` as RFC 4733 events, 20 ms apart: three
// packets while the key is down, then the end packet three times.
func (c *dtmfCarrier) sendDTMF(to netip.AddrPort, digit byte, seq *uint16, ts *uint32) error {
	event := strings.IndexByte("0123456789*#ABCD", digit)
	for i := 0; i < 6; i++ {
		dur := uint16(160 * min(i+1, 4))
		payload := []byte{byte(event), 10, byte(dur >> 8), byte(dur)}
		if i >= 3 {
			payload[1] |= 0x80
		}
		pkt := append(media.AppendHeader(nil, i == 0, 101, *seq, *ts, 0xca11), payload...)
		*seq++
		if _, err := c.rtp.WriteToUDPAddrPort(pkt, to); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond) // packet pacing, as a carrier sends them
	}
	*ts += 160 * 6
	return nil
}

// Keys the far end presses on a call an operator places reach the
// operator (RFC 4733, relayed) and the call's timeline, as on a call
// that comes in: the bridge of a placed call did not report them.
func TestDTMFOnPlacedCallIsOnTheTimeline(t *testing.T) {
	m, f, op := mustOutboundService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	carrier := mustDTMFCarrier(t)
	outboundTrunk(t, m, f, "carrier", carrier.addr, 1)

	var relayed atomic.Int64
	op.SetAudioSink(func(p *rtp.Packet) {
		if p.PayloadType == 101 {
			relayed.Add(1)
		}
	})
	id, err := op.Dial(ctx, "+15550001111")
	if err != nil {
		t.Fatal(err)
	}
	if err := op.WaitConnected(ctx, id); err != nil {
		t.Fatal(err)
	}
	var to netip.AddrPort
	select {
	case to = <-carrier.acked:
	case <-ctx.Done():
		t.Fatal("the carrier's answer was not acknowledged")
	}
	seq, ts := uint16(1), uint32(160)
	for _, d := range []byte("42") {
		if err := carrier.sendDTMF(to, d, &seq, &ts); err != nil {
			t.Fatal(err)
		}
	}
	// Both digits reached the operator: 12 packets.
	for deadline := time.Now().Add(5 * time.Second); relayed.Load() < 12; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of the carrier's 12 DTMF packets reached the operator", relayed.Load())
		}
	}
	if err := op.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	select {
	case <-carrier.bye:
	case <-ctx.Done():
		t.Fatal("the carrier got no BYE")
	}
	rec := waitCallEnded(t, m, f.APIKey, id)
	if rec.Direction != sb.Outbound || rec.Status != sb.CallCompleted {
		t.Errorf("record %q %q, want a completed outbound call", rec.Direction, rec.Status)
	}
	var body struct {
		Events []*sb.CallEvent `json:"events"`
	}
	if code := apiGet(t, m, f.APIKey, "/v1/calls/"+id.String()+"/events", &body); code != http.StatusOK {
		t.Fatalf("events: status %d", code)
	}
	var digits string
	var types []sb.EventType
	for _, e := range body.Events {
		types = append(types, e.Type)
		if e.Type == sb.EventDTMF {
			d, _ := e.Detail["digit"].(string)
			digits += d
		}
	}
	if digits != "42" || !hasInOrder(types, sb.EventAnswered, sb.EventDTMF, sb.EventDTMF, sb.EventHungUp) {
		t.Errorf("timeline %v has the digits %q, want 4 then 2 between the answer and the hang-up", types, digits)
	}
}

// The operator's page is told a call ended only once its record is final:
// a page that reloads the call (or its list) on "ended" must not see it
// still answered. The call was told before its record was written, so
// the check is made at once, on several calls, both ends hanging up.
func TestEndedIsSentOnceTheRecordIsFinal(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < 6; i++ {
		call, in := answeredCall(t, m, phone, op, "3000", "2000")
		sendPattern(t, 5, func(p []byte) error { return call.SendRTP(p, false) })
		by := "caller"
		if i%2 == 1 {
			by = "operator"
			if err := op.Hangup(ctx, in.CallID); err != nil { // returns on "ended"
				t.Fatal(err)
			}
		} else {
			if err := call.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := op.WaitEnded(ctx, in.CallID); err != nil {
				t.Fatal(err)
			}
		}
		// At once: no wait, no retry.
		var c sb.Call
		code := apiGet(t, m, f.APIKey, "/v1/calls/"+in.CallID.String(), &c)
		if code != http.StatusOK || c.Status != sb.CallCompleted || c.EndedAt == nil || c.DurationMS <= 0 {
			t.Errorf("call %d (%s hung up): GET on \"ended\" gave %d, status %q, ended at %v, duration %d ms; want completed, ended, duration > 0",
				i+1, by, code, c.Status, c.EndedAt, c.DurationMS)
		}
		waitCallEnded(t, m, f.APIKey, in.CallID) // the next call starts from a finished one
	}
}

// An operator who declines a call is told the offer is gone (revoked), as
// on a ring timeout or a caller's cancel: otherwise the page keeps
// showing a call that has left. Here the caller, whom nobody else can
// take, gets 480.
func TestDeclinedOfferIsRevoked(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := phone.Invite(ctx, m.SIPAddr(), "3000", "2000")
		done <- err
	}()
	in := waitIncoming(t, op)
	if err := op.Decline(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	var se *siptest.StatusError
	if err := <-done; !errors.As(err, &se) || se.Code != 480 {
		t.Fatalf("the caller got %v, want 480", err)
	}
	rec := waitCallEnded(t, m, f.APIKey, in.CallID)
	if rec.Status != sb.CallRejected {
		t.Errorf("record %q, want rejected", rec.Status)
	}
	// The record is final, so whatever the operator is told about the call
	// has been sent; a few seconds more for the socket.
	deadline := time.After(3 * time.Second)
	for {
		select {
		case ev := <-op.Events():
			if ev.Type == "revoked" && ev.CallID == in.CallID {
				return
			}
		case <-deadline:
			t.Fatalf("the operator who declined call %s was never sent \"revoked\" for it", in.CallID)
		}
	}
}

// talkPausedThenResumed has both sides say 25 frames while the recording
// is paused, resume it, say 25 more, and hang up; it returns the frames the
// stored recording kept, by channel.
func (x *recordingFixture) talkPausedThenResumed(ctx context.Context, t *testing.T, call *siptest.Call, op *opclient.Client, id sb.ID) map[uint8]int {
	t.Helper()
	bothTalk(t, call, op, 25) // paused: not kept
	x.recordingControl(t, id, "resume")
	bothTalk(t, call, op, 25) // resumed: kept
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitCallEnded(t, x.m, x.f.APIKey, id)
	rec, code := callRecording(t, x.m, x.f.APIKey, id)
	if code != http.StatusOK || rec.Status != sb.RecordingComplete {
		t.Fatalf("GET recording: %d %+v", code, rec)
	}
	return x.frames(t, id, rec)
}
