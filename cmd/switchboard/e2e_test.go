package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/api"
	"github.com/switchboard-voice/switchboard/apiclient"
	"github.com/switchboard-voice/switchboard/internal/apispec"
	"github.com/switchboard-voice/switchboard/internal/testenv"
	"github.com/switchboard-voice/switchboard/media"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/opclient"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// mustOperator logs the operator in, connects their PeerConnection and
// makes them available.
func mustOperator(tb testing.TB, m *Main, u *sb.User, opts ...opclient.Option) *opclient.Client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := opclient.Login(ctx, m.HTTPURL(), u.Email, testPassword, append(opts, opclient.WithLoopbackOnly())...)
	if err != nil {
		tb.Fatalf("login %s: %v", u.Email, err)
	}
	tb.Cleanup(func() { c.Close() })
	if err := c.Connect(ctx); err != nil {
		tb.Fatalf("connect %s: %v", u.Email, err)
	}
	if err := c.SetAvailable(ctx); err != nil {
		tb.Fatalf("available %s: %v", u.Email, err)
	}
	return c
}

// autoAnswer has the operator accept every call offered, until the test
// ends.
func autoAnswer(t *testing.T, op *opclient.Client) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for {
			select {
			case in := <-op.Incoming():
				op.Accept(ctx, in.CallID)
			case <-ctx.Done():
				return
			}
		}
	}()
}

// mustPhone returns a SIP phone playing a trunk, on the given loopback
// address.
func mustPhone(tb testing.TB, opts siptest.Options) *siptest.Phone {
	tb.Helper()
	if opts.LocalIP == "" {
		opts.LocalIP = "127.0.0.1"
	}
	p, err := siptest.NewPhone(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// waitIncoming waits for the operator to be offered a call.
func waitIncoming(tb testing.TB, op *opclient.Client) opclient.Incoming {
	tb.Helper()
	select {
	case in := <-op.Incoming():
		return in
	case <-time.After(10 * time.Second):
		tb.Fatal("no call offered to the operator")
	}
	panic("unreachable")
}

// answeredCall rings the operator from phone and has them accept.
func answeredCall(tb testing.TB, m *Main, phone *siptest.Phone, op *opclient.Client, from, to string) (*siptest.Call, opclient.Incoming) {
	tb.Helper()
	return answeredAt(tb, m.SIPAddr(), phone, op, from, to)
}

// answeredAt is answeredCall to the service's SIP address addr (its TLS
// listener's, say).
func answeredAt(tb testing.TB, addr string, phone *siptest.Phone, op *opclient.Client, from, to string) (*siptest.Call, opclient.Incoming) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type result struct {
		call *siptest.Call
		err  error
	}
	done := make(chan result, 1)
	go func() {
		c, err := phone.Invite(ctx, addr, from, to)
		done <- result{c, err}
	}()
	in := waitIncoming(tb, op)
	if in.From != from || in.To != to {
		tb.Errorf("operator offered from %q to %q, want %q to %q", in.From, in.To, from, to)
	}
	if err := op.Accept(ctx, in.CallID); err != nil {
		tb.Fatalf("accept: %v", err)
	}
	r := <-done
	if r.err != nil {
		tb.Fatalf("invite: %v", r.err)
	}
	tb.Cleanup(func() { r.call.Close() })
	if err := op.WaitConnected(ctx, in.CallID); err != nil {
		tb.Fatalf("operator not connected: %v", err)
	}
	return r.call, in
}

// patternReceiver counts intact pattern frames, in order, and the delay
// each took.
type patternReceiver struct {
	mu      sync.Mutex
	frames  int
	corrupt int
	last    uint32
	maxLate time.Duration
	got     chan struct{}
}

func newPatternReceiver() *patternReceiver { return &patternReceiver{got: make(chan struct{}, 1)} }

func (r *patternReceiver) add(payload []byte) {
	seq, sent, ok := media.CheckPatternFrame(payload)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !ok {
		r.corrupt++
		return
	}
	if r.frames > 0 && seq <= r.last {
		r.corrupt++ // duplicate or reordered
		return
	}
	r.frames++
	r.last = seq
	if d := time.Since(sent); d > r.maxLate {
		r.maxLate = d
	}
	select {
	case r.got <- struct{}{}:
	default:
	}
}

func (r *patternReceiver) counts() (frames, corrupt int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.frames, r.corrupt
}

// waitFrames waits until n frames have arrived.
func (r *patternReceiver) waitFrames(tb testing.TB, n int, what string) {
	tb.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if f, _ := r.counts(); f >= n {
			return
		}
		select {
		case <-r.got:
		case <-deadline:
			f, c := r.counts()
			tb.Fatalf("%s: %d intact frames (%d corrupt), want %d", what, f, c, n)
		}
	}
}

// sendPattern sends n pattern frames, one every 20 ms, through send.
func sendPattern(tb testing.TB, n int, send func(payload []byte) error) {
	tb.Helper()
	buf := make([]byte, 160)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < n; i++ {
		if err := send(media.PatternFrame(buf, uint32(i+1), time.Now())); err != nil {
			tb.Fatalf("send frame %d: %v", i, err)
		}
		<-tick.C
	}
}

// apiGet fetches path with the API key and decodes the JSON answer into
// v; the answer is checked against the API's description.
func apiGet(tb testing.TB, m *Main, key, path string, v any) int {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, m.HTTPURL()+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := apispec.Load(tb, api.Description()).Client(tb, nil).Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			tb.Fatalf("GET %s: decode: %v", path, err)
		}
	}
	return resp.StatusCode
}

// apiCtx bounds one request of a test's API client.
func apiCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// listCalls lists the key's tenant's calls through the API client (params
// nil: the newest page).
func listCalls(tb testing.TB, m *Main, key string, params *apiclient.ListCallsParams) []sb.Call {
	tb.Helper()
	res, err := apiClient(tb, m, key).ListCallsWithResponse(apiCtx(tb), params)
	if err != nil {
		tb.Fatal(err)
	}
	if res.JSON200 == nil {
		tb.Fatalf("listing calls: %s %s", res.Status(), res.Body)
	}
	return res.JSON200.Calls
}

// waitCallEnded polls the API until the call's record is final.
func waitCallEnded(tb testing.TB, m *Main, key string, id sb.ID) *sb.Call {
	tb.Helper()
	return waitCallRecord(tb, m, key, id, "end", func(c *sb.Call) bool { return c.Status.Ended() })
}

// waitCallRecord polls the API until the call's record is as until wants
// it (what says how, for the failure).
func waitCallRecord(tb testing.TB, m *Main, key string, id sb.ID, what string, until func(*sb.Call) bool) *sb.Call {
	tb.Helper()
	client := apiClient(tb, m, key)
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := client.GetCallWithResponse(apiCtx(tb), id)
		if err != nil {
			tb.Fatal(err)
		}
		if res.JSON200 != nil && until(res.JSON200) {
			return res.JSON200
		}
		if time.Now().After(deadline) {
			tb.Fatalf("call %s did not %s in its record", id, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// timeline is the call's timeline through the API client.
func timeline(tb testing.TB, m *Main, key string, id sb.ID) []sb.CallEvent {
	tb.Helper()
	res, err := apiClient(tb, m, key).ListCallEventsWithResponse(apiCtx(tb), id)
	if err != nil {
		tb.Fatal(err)
	}
	if res.JSON200 == nil {
		tb.Fatalf("events: %s %s", res.Status(), res.Body)
	}
	return res.JSON200.Events
}

func callEvents(tb testing.TB, m *Main, key string, id sb.ID) []sb.EventType {
	tb.Helper()
	var types []sb.EventType
	for _, e := range timeline(tb, m, key, id) {
		types = append(types, e.Type)
	}
	return types
}

// hasInOrder reports whether want appears in got as a subsequence.
func hasInOrder(got []sb.EventType, want ...sb.EventType) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

func TestInboundCallAudioBothWays(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "+4930123456", 1)
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp", Codec: sb.PCMU})

	call, in := answeredCall(t, m, phone, op, "+15550001111", f.Number)
	talkBothWays(t, call, op)

	dtmf := make(chan struct{}, 16)
	op.SetAudioSink(func(p *rtp.Packet) {
		if p.PayloadType == 101 {
			select {
			case dtmf <- struct{}{}:
			default:
			}
		}
	})
	if err := call.SendDTMF('5'); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// RFC 4733 events pass through to the browser side. The digit is
	// reported on the first end packet, the fourth of six.
	for i := 0; i < 4; i++ {
		select {
		case <-dtmf:
		case <-ctx.Done():
			t.Fatalf("%d of the caller's DTMF packets reached the operator, want 4", i)
		}
	}
	if err := op.Mute(ctx, in.CallID, true); err != nil {
		t.Fatal(err)
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatalf("caller hangup: %v", err)
	}
	if _, err := op.WaitEnded(ctx, in.CallID); err != nil {
		t.Fatalf("operator not told the call ended: %v", err)
	}

	rec := waitCallEnded(t, m, f.APIKey, in.CallID)
	if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyCaller {
		t.Errorf("record status %q hung up by %q, want completed by caller", rec.Status, rec.HangupBy)
	}
	if rec.OperatorID == nil || *rec.OperatorID != f.Operators[0].ID {
		t.Errorf("record operator %v, want %s", rec.OperatorID, f.Operators[0].ID)
	}
	if rec.Direction != sb.Inbound || rec.From != "+15550001111" || rec.To != f.Number || rec.Codec != "PCMU" {
		t.Errorf("record %+v: want inbound PCMU call from +15550001111 to %s", rec, f.Number)
	}
	if rec.TrunkID == nil || *rec.TrunkID != f.Trunk.ID || !strings.HasPrefix(rec.Source, "udp:127.0.0.1:") {
		t.Errorf("record trunk %v source %q, want %s from udp:127.0.0.1", rec.TrunkID, rec.Source, f.Trunk.ID)
	}
	if rec.AnsweredAt == nil || rec.EndedAt == nil || rec.DurationMS < 900 {
		t.Errorf("record answered %v ended %v duration %d ms, want both set and ≥ 900 ms", rec.AnsweredAt, rec.EndedAt, rec.DurationMS)
	}
	if rec.FromCaller.Packets < talkFrames*9/10 || rec.ToCaller.Packets < talkFrames*9/10 {
		t.Errorf("record packets from caller %d to caller %d, want ≥ %d each", rec.FromCaller.Packets, rec.ToCaller.Packets, talkFrames*9/10)
	}
	events := callEvents(t, m, f.APIKey, in.CallID)
	if !hasInOrder(events, sb.EventReceived, sb.EventTrying, sb.EventOffered, sb.EventRinging, sb.EventAnswered, sb.EventHungUp, sb.EventEnded) ||
		!hasInOrder(events, sb.EventAnswered, sb.EventDTMF, sb.EventHungUp) || !hasInOrder(events, sb.EventAnswered, sb.EventMute, sb.EventHungUp) {
		t.Errorf("events %v lack the expected timeline", events)
	}
}

func TestOperatorHangsUp(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "tcp", Codec: sb.PCMA})
	call, in := answeredCall(t, m, phone, op, "3000", "2000")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := op.Hangup(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-call.Ended():
	case <-ctx.Done():
		t.Fatal("caller got no BYE")
	}
	rec := waitCallEnded(t, m, f.APIKey, in.CallID)
	if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyOperator || rec.Codec != "PCMA" {
		t.Errorf("record %q by %q codec %q, want completed by operator, PCMA", rec.Status, rec.HangupBy, rec.Codec)
	}
	if !strings.HasPrefix(rec.Source, "tcp:") {
		t.Errorf("record source %q, want tcp", rec.Source)
	}
	// The operator is available again and takes the next call.
	call2, in2 := answeredCall(t, m, phone, op, "3001", "2000")
	if in2.CallID == in.CallID {
		t.Fatal("second call has the first call's id")
	}
	if err := call2.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestCancelWhileRinging(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call, err := phone.InviteAsync(ctx, m.SIPAddr(), "3000", "2000")
	if err != nil {
		t.Fatal(err)
	}
	in := waitIncoming(t, op)
	select {
	case <-call.Ringing():
	case <-ctx.Done():
		t.Fatal("no 180 Ringing while the operator was offered the call")
	}
	if err := call.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	var se *siptest.StatusError
	if err := call.Wait(ctx); !errors.As(err, &se) || se.Code != 487 {
		t.Fatalf("INVITE after CANCEL ended with %v, want 487", err)
	}
	if ev := waitEvent(t, op, "revoked"); ev.CallID != in.CallID {
		t.Errorf("revoked %s, want %s", ev.CallID, in.CallID)
	}
	rec := waitCallEnded(t, m, f.APIKey, in.CallID)
	if rec.Status != sb.CallCanceled || rec.HangupBy != sb.PartyCaller || rec.SIPCode != 487 {
		t.Errorf("record %q by %q code %d, want canceled by caller, 487", rec.Status, rec.HangupBy, rec.SIPCode)
	}
	if rec.FailureLeg != sb.FailedOnTrunk || rec.FailureStage != sb.StageRinging || rec.PostDialDelayMS <= 0 || rec.TimeToAnswerMS != 0 {
		t.Errorf("record: failed on %q at %q, post-dial delay %d ms, time to answer %d ms; want the caller gave up while ringing",
			rec.FailureLeg, rec.FailureStage, rec.PostDialDelayMS, rec.TimeToAnswerMS)
	}
}

// waitEvent waits for an operator socket event of the given type.
func waitEvent(tb testing.TB, op *opclient.Client, typ string) opclient.Event {
	tb.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-op.Events():
			if ev.Type == typ {
				return ev
			}
		case <-deadline:
			tb.Fatalf("no %q event", typ)
		}
	}
}

func TestHoldAndResume(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	call, in := answeredCall(t, m, phone, op, "3000", "2000")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := call.Hold(ctx); err != nil {
		t.Fatalf("hold: %v", err)
	}
	if err := call.Resume(ctx); err != nil {
		t.Fatalf("resume: %v", err)
	}
	// Audio flows after the resume.
	toOperator := newPatternReceiver()
	op.SetAudioSink(func(p *rtp.Packet) { toOperator.add(p.Payload) })
	sendPattern(t, 10, func(p []byte) error { return call.SendRTP(p, false) })
	toOperator.waitFrames(t, 8, "caller → operator after resume")
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitCallEnded(t, m, f.APIKey, in.CallID)
	if events := callEvents(t, m, f.APIKey, in.CallID); !hasInOrder(events, sb.EventAnswered, sb.EventHeld, sb.EventResumed, sb.EventHungUp) {
		t.Errorf("events %v lack held then resumed", events)
	}
}

// The operator puts the caller on hold and takes them back: the caller is
// told with re-INVITEs, hears nothing while held, and audio flows again.
// waitCallerHeld waits until the caller's phone has been put on hold (a
// re-INVITE offering sendonly) or taken off it, as held says.
func waitCallerHeld(ctx context.Context, t *testing.T, call *siptest.Call, held bool) {
	t.Helper()
	for call.Held() != held {
		select {
		case <-ctx.Done():
			if held {
				t.Fatal("the caller was not told of the hold")
			}
			t.Fatal("the caller was not taken off hold")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// A PBX that refuses the hold's re-INVITE keeps the call as it was: the
// operator is told the call is not held, both sides hear each other, and
// the timeline says the hold failed.
func TestTrunkRefusesHold(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp", RefuseReinvite: 488})
	call, in := answeredCall(t, m, phone, op, "3000", "2000")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := op.Hold(ctx, in.CallID, true); err != nil {
		t.Fatal(err)
	}
	if err := op.WaitHeld(ctx, in.CallID, false); err != nil {
		t.Fatalf("the operator was not told the hold failed: %v", err)
	}
	if call.Held() {
		t.Error("the caller's phone counts itself held")
	}
	talkBothWays(t, call, op)
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitCallEnded(t, m, f.APIKey, in.CallID)
	if events := callEvents(t, m, f.APIKey, in.CallID); !hasInOrder(events, sb.EventAnswered, sb.EventHoldFailed, sb.EventHungUp) ||
		slices.Contains(events, sb.EventHeld) {
		t.Errorf("events %v, want the hold failed and never held", events)
	}
}

func TestOperatorHoldsTheCaller(t *testing.T) {
	// With SRTP, the hold's re-INVITE carries our key again and the
	// caller's answer keeps theirs.
	for name, suite := range map[string]string{"RTP": "", "SRTP": "AES_CM_128_HMAC_SHA1_80"} {
		t.Run(name, func(t *testing.T) {
			m := mustStartService(t, nil)
			f := mustProvision(t, m, "Acme", "2000", 1)
			op := mustOperator(t, m, f.Operators[0])
			phone := mustPhone(t, siptest.Options{Transport: "udp", SRTP: suite})
			call, in := answeredCall(t, m, phone, op, "3000", "2000")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			before := newPatternReceiver()
			op.SetAudioSink(func(p *rtp.Packet) { before.add(p.Payload) })
			sendPattern(t, 10, func(p []byte) error { return call.SendRTP(p, false) })
			before.waitFrames(t, 8, "caller → operator before the hold")
			if err := op.Hold(ctx, in.CallID, true); err != nil {
				t.Fatal(err)
			}
			waitCallerHeld(ctx, t, call, true)
			held := newPatternReceiver()
			op.SetAudioSink(func(p *rtp.Packet) { held.add(p.Payload) })
			sendPattern(t, 10, func(p []byte) error { return call.SendRTP(p, false) })
			time.Sleep(200 * time.Millisecond)
			if n, _ := held.counts(); n != 0 {
				t.Errorf("the operator heard %d frames of a held caller", n)
			}
			if err := op.Hold(ctx, in.CallID, false); err != nil {
				t.Fatal(err)
			}
			waitCallerHeld(ctx, t, call, false)
			back := newPatternReceiver()
			op.SetAudioSink(func(p *rtp.Packet) { back.add(p.Payload) })
			sendPattern(t, 10, func(p []byte) error { return call.SendRTP(p, false) })
			back.waitFrames(t, 8, "caller → operator after the hold")
			if err := call.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			rec := waitCallEnded(t, m, f.APIKey, in.CallID)
			if events := callEvents(t, m, f.APIKey, in.CallID); !hasInOrder(events, sb.EventAnswered, sb.EventHeld, sb.EventResumed, sb.EventHungUp) {
				t.Errorf("events %v lack the hold", events)
			}
			// The ten frames the caller sent while held were not relayed,
			// and not lost: the record counts no loss and no poor quality
			// for a hold.
			if rec.FromCaller.Lost != 0 || slices.Contains(rec.Tags, sb.TagHighLoss) || slices.Contains(rec.Tags, sb.TagLowMOS) {
				t.Errorf("after a hold: %d lost from the caller, tags %v; want none", rec.FromCaller.Lost, rec.Tags)
			}
		})
	}
}

// An operator hands the call to a colleague: the first is free at once,
// the colleague is offered it and answers, and the caller's audio reaches
// them; the record names the colleague and keeps the audio of both parts.
func TestBlindTransferToAnotherOperator(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 2)
	first := mustOperator(t, m, f.Operators[0]) // idle longest: offered first
	second := mustOperator(t, m, f.Operators[1])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	call, in := answeredCall(t, m, phone, first, "3000", "2000")
	sendPattern(t, 10, func(p []byte) error { return call.SendRTP(p, false) })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := first.Transfer(ctx, in.CallID, sb.NewID()); err == nil {
		t.Error("a transfer to nobody was taken")
	}
	if err := first.Transfer(ctx, in.CallID, f.Operators[1].ID); err != nil {
		t.Fatal(err)
	}
	offer := waitIncoming(t, second)
	if offer.CallID != in.CallID {
		t.Fatalf("the colleague was offered %s", offer.CallID)
	}
	if err := second.Accept(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	heard := newPatternReceiver()
	second.SetAudioSink(func(p *rtp.Packet) { heard.add(p.Payload) })
	sendPattern(t, 20, func(p []byte) error { return call.SendRTP(p, false) })
	heard.waitFrames(t, 16, "caller → the colleague")
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	rec := waitCallEnded(t, m, f.APIKey, in.CallID)
	if rec.OperatorID == nil || *rec.OperatorID != f.Operators[1].ID || rec.Status != sb.CallCompleted || rec.FromCaller.Packets < 28 {
		t.Errorf("record %+v", rec)
	}
	if events := callEvents(t, m, f.APIKey, in.CallID); !hasInOrder(events, sb.EventAnswered, sb.EventTransferred, sb.EventOffered, sb.EventAnswered, sb.EventHungUp) {
		t.Errorf("events %v", events)
	}
}

func TestNoOperatorGets480(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1) // the operator never logs in
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, err := phone.Invite(ctx, m.SIPAddr(), "3000", "2000")
	var se *siptest.StatusError
	if !errors.As(err, &se) || se.Code != 480 {
		t.Fatalf("invite: %v, want 480", err)
	}
	if !strings.Contains(se.ReasonHeader, "no operator available") {
		t.Errorf("Reason header %q does not say why", se.ReasonHeader)
	}
	calls := listCalls(t, m, f.APIKey, nil)
	if len(calls) != 1 {
		t.Fatalf("GET /v1/calls: %d calls, want 1", len(calls))
	}
	// The record is final a moment after the caller hears 480.
	rec := waitCallEnded(t, m, f.APIKey, calls[0].ID)
	if rec.SIPCode != 480 || rec.Status != sb.CallNoAnswer || !strings.Contains(rec.Reason, "no operator available") {
		t.Errorf("record %q code %d reason %q, want 480 with the reason", rec.Status, rec.SIPCode, rec.Reason)
	}
	if rec.FailureLeg != sb.FailedOnBrowser || rec.FailureStage != sb.StageRouting || rec.Q850Cause != 18 {
		t.Errorf("record: failed on %q at %q, cause %d; want the browser side at routing, cause 18", rec.FailureLeg, rec.FailureStage, rec.Q850Cause)
	}
	if failed := listCalls(t, m, f.APIKey, &apiclient.ListCallsParams{Failed: ref(true)}); len(failed) != 1 {
		t.Errorf("failed calls: %d", len(failed))
	}
}

func TestDeclineMovesToNextOperator(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 2)
	first := mustOperator(t, m, f.Operators[0]) // idle longest: offered first
	second := mustOperator(t, m, f.Operators[1])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	done := make(chan error, 1)
	var call *siptest.Call
	go func() {
		var err error
		call, err = phone.Invite(ctx, m.SIPAddr(), "3000", "2000")
		done <- err
	}()
	in := waitIncoming(t, first)
	if err := first.Decline(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	in2 := waitIncoming(t, second)
	if in2.CallID != in.CallID {
		t.Fatalf("second operator offered %s, want %s", in2.CallID, in.CallID)
	}
	if err := second.Accept(ctx, in2.CallID); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	rec := waitCallEnded(t, m, f.APIKey, in.CallID)
	if rec.OperatorID == nil || *rec.OperatorID != f.Operators[1].ID {
		t.Errorf("answered by %v, want the second operator %s", rec.OperatorID, f.Operators[1].ID)
	}
	if events := callEvents(t, m, f.APIKey, in.CallID); !hasInOrder(events, sb.EventOffered, sb.EventDeclined, sb.EventOffered, sb.EventAnswered) {
		t.Errorf("events %v lack offered, declined, offered, answered", events)
	}
}

func TestUnknownSourceGets403(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	mustOperator(t, m, f.Operators[0])
	// 127.0.0.3 is loopback on Linux, but not in the trunk's 127.0.0.1/32.
	phone := mustPhone(t, siptest.Options{Transport: "udp", LocalIP: "127.0.0.3"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := phone.Invite(ctx, m.SIPAddr(), "3000", "2000")
	var se *siptest.StatusError
	if !errors.As(err, &se) || se.Code != 403 {
		t.Fatalf("invite from an unknown source: %v, want 403", err)
	}
	if calls := listCalls(t, m, f.APIKey, nil); len(calls) != 0 {
		t.Errorf("an unknown source's attempt left %d call records in the tenant", len(calls))
	}
}

// mustDigestTrunk makes a trunk of the tenant that authenticates as
// username with the password "s3cret-digest", for number.
func mustDigestTrunk(tb testing.TB, m *Main, tenantID sb.ID, username, number string) *sb.Trunk {
	tb.Helper()
	trunk := &sb.Trunk{TenantID: tenantID, Name: username, Username: username, Numbers: []string{number}}
	if err := metadata.NewTrunkService(m.DB).CreateTrunk(context.Background(), trunk, "s3cret-digest"); err != nil {
		tb.Fatal(err)
	}
	return trunk
}

func TestDigestAuthenticatedTrunk(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	trunk := mustDigestTrunk(t, m, f.Tenant.ID, "acme-pbx", "2100")
	op := mustOperator(t, m, f.Operators[0])

	wrong := mustPhone(t, siptest.Options{Transport: "udp", LocalIP: "127.0.0.4", Username: "acme-pbx", Password: "guess"})
	_, err := wrong.Invite(ctx, m.SIPAddr(), "3000", "2100")
	var se *siptest.StatusError
	if !errors.As(err, &se) || se.Code != 403 {
		t.Fatalf("invite with a wrong password: %v, want 403", err)
	}

	right := mustPhone(t, siptest.Options{Transport: "udp", LocalIP: "127.0.0.4", Username: "acme-pbx", Password: "s3cret-digest", SRTP: "AES_CM_128_HMAC_SHA1_80"})
	call, in := answeredCall(t, m, right, op, "3000", "2100")
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	rec := waitCallEnded(t, m, f.APIKey, in.CallID)
	if rec.TrunkID == nil || *rec.TrunkID != trunk.ID {
		t.Errorf("record trunk %v, want the digest trunk %s", rec.TrunkID, trunk.ID)
	}

	// The call's pcap shows that it authenticated and was keyed, but
	// neither the credentials nor the keys.
	req, _ := http.NewRequestWithContext(ctx, "GET", m.HTTPURL()+"/v1/calls/"+in.CallID.String()+"/pcap", nil)
	req.Header.Set("Authorization", "Bearer "+f.APIKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pcap, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !bytes.Contains(pcap, []byte(`Proxy-Authorization: Digest username="acme-pbx", <redacted>`)) || !bytes.Contains(pcap, []byte("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:*")) {
		t.Errorf("the pcap (%d, %d bytes) lacks the redacted credentials or key", res.StatusCode, len(pcap))
	}
	if l := regexp.MustCompile(`(?i)authorization:[^\r\n]*(response|nonce)=|inline:[A-Za-z0-9+/]`).Find(pcap); l != nil {
		t.Errorf("the pcap keeps a secret: %q", l)
	}
}

// A digest trunk's PBX behind another tenant's IP trunk's address (a
// hosted PBX, one NAT) is challenged and reaches its own tenant; the IP
// trunk's tenant hears nothing of it.
func TestDigestTrunkSharingAnIPTrunksAddress(t *testing.T) {
	m := mustStartService(t, nil)
	ipTenant := mustProvision(t, m, "Acme", "2000", 0) // its trunk is 127.0.0.1
	f := mustProvision(t, m, "Hosted", "2001", 1, "192.0.2.0/24")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	trunk := mustDigestTrunk(t, m, f.Tenant.ID, "hosted-pbx", "2100")
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp", LocalIP: "127.0.0.1", Username: "hosted-pbx", Password: "s3cret-digest"})
	call, in := answeredCall(t, m, phone, op, "3000", "2100")
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if rec := waitCallEnded(t, m, f.APIKey, in.CallID); rec.TrunkID == nil || *rec.TrunkID != trunk.ID {
		t.Errorf("record trunk %v, want the digest trunk %s", rec.TrunkID, trunk.ID)
	}
	if calls := listCalls(t, m, ipTenant.APIKey, nil); len(calls) != 0 {
		t.Errorf("the IP trunk's tenant has %d call records of another tenant's PBX", len(calls))
	}
}

func TestAPIIsTenantScoped(t *testing.T) {
	m := mustStartService(t, nil)
	a := mustProvision(t, m, "Acme", "2000", 1)
	b := mustProvision(t, m, "Other", "2001", 0)
	op := mustOperator(t, m, a.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	call, in := answeredCall(t, m, phone, op, "3000", "2000")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitCallEnded(t, m, a.APIKey, in.CallID)

	if calls := listCalls(t, m, b.APIKey, nil); len(calls) != 0 {
		t.Errorf("other tenant lists %d calls, want none", len(calls))
	}
	for who, k := range map[string]struct {
		key  string
		want int
	}{"the other tenant": {b.APIKey, http.StatusNotFound}, "no key": {"", http.StatusUnauthorized}, "a bad key": {"sbk_not-a-key", http.StatusUnauthorized}} {
		c := apiClient(t, m, k.key)
		answers(t, k.want, who+" reading the call")(c.GetCallWithResponse(ctx, in.CallID))
		answers(t, k.want, who+" reading its events")(c.ListCallEventsWithResponse(ctx, in.CallID))
	}
	if code := apiGet(t, m, a.APIKey, "/v1/calls?since=yesterday", nil); code != http.StatusBadRequest {
		t.Errorf("bad since: %d, want 400", code)
	}
}

// A trunk that calls with SRTP (SDES) reaches the operator like any
// other: the pattern arrives intact both ways through the encrypted trunk
// leg, and the call's timeline says which suite protected it.
func TestSRTPTrunkCallReachesTheOperator(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp", Codec: sb.PCMU, SRTP: "AES_CM_128_HMAC_SHA1_80"})
	call, in := answeredCall(t, m, phone, op, "+15550002222", "2000")
	talkBothWays(t, call, op)
	if n := call.Undecryptable(); n != 0 {
		t.Errorf("%d packets from the service failed SRTP at the phone", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	rec := waitCallEnded(t, m, f.APIKey, in.CallID)
	if rec.Status != sb.CallCompleted || rec.FromCaller.Packets < 45 || rec.ToCaller.Packets < 45 {
		t.Errorf("record %q, packets from caller %d to caller %d", rec.Status, rec.FromCaller.Packets, rec.ToCaller.Packets)
	}
	if events := timeline(t, m, f.APIKey, in.CallID); len(events) == 0 || events[0].Type != sb.EventReceived || events[0].Detail["srtp"] != "AES_CM_128_HMAC_SHA1_80" {
		t.Errorf("timeline %+v, want received first, with the SRTP suite", events)
	}
}
