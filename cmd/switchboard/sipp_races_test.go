package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/opclient"
)

// sippRig is the binary provisioned for SIPp trunk calls to 2000 from
// 127.0.0.1, with one operator who is available.
type sippRig struct {
	s   *binaryService
	key string // a supervisor's API key
	op  *opclient.Client
}

func mustSIPpRig(t *testing.T, ctx context.Context, env ...string) *sippRig {
	t.Helper()
	if _, err := exec.LookPath("sipp"); err != nil {
		requireDependency(t, "sipp (Debian package sip-tester)")
	}
	s := mustStartBinary(t, env...)
	tenant := s.run(t, "", "tenant", "create", "--name", "SIPp races")
	s.run(t, testPassword, "user", "create", "--tenant", tenant, "--email", "op@races.test", "--role", "operator")
	s.run(t, "", "trunk", "create", "--tenant", tenant, "--name", "sipp", "--allow", "127.0.0.1/32", "--number", "2000")
	r := &sippRig{s: s, key: s.run(t, "", "apikey", "create", "--tenant", tenant, "--role", "supervisor")}
	var err error
	if r.op, err = opclient.Login(ctx, s.httpURL, "op@races.test", testPassword, opclient.WithLoopbackOnly()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.op.Close() })
	if err := r.op.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.op.SetAvailable(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}

// answer has the operator accept the next call offered, from the given
// number; the call's ID comes once accepted (or the channel closes).
func (r *sippRig) answer(ctx context.Context, from string) <-chan sb.ID {
	answered := make(chan sb.ID, 1)
	go func() {
		defer close(answered)
		select {
		case in := <-r.op.Incoming():
			if in.From == from && r.op.Accept(ctx, in.CallID) == nil {
				answered <- in.CallID
			}
		case <-ctx.Done():
		}
	}()
	return answered
}

// answered runs the SIPp scenario as a call from the number that the
// operator accepts, and returns the call's ID.
func (r *sippRig) answered(ctx context.Context, t *testing.T, scenario, from string) sb.ID {
	t.Helper()
	answered := r.answer(ctx, from)
	if out, err := sipp(ctx, t, scenario, "2000", r.s.sipAddr); err != nil {
		t.Fatalf("%v\n%s", err, lastLines(string(out), 40))
	}
	id, ok := <-answered
	if !ok {
		t.Fatal("the operator was not offered the call")
	}
	return id
}

// trace is the call's SIP trace and timeline.
func (r *sippRig) trace(t *testing.T, id sb.ID) binaryTrace {
	t.Helper()
	var tr binaryTrace
	r.s.getJSON(t, r.key, "/v1/calls/"+id.String()+"/trace", &tr)
	return tr
}

// TestSIPpCancelLosingTheRaceWithThe200 sends the CANCEL just after the 200
// OK reaches the caller, before and after its ACK: RFC 3261 §9.2, the
// CANCEL has no effect on an INVITE that has its final response. The
// caller's BYE is answered 200 and ends the call at once, completed by the
// caller, and switchboard sends no BYE of its own.
func TestSIPpCancelLosingTheRaceWithThe200(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := mustSIPpRig(t, ctx)
	for _, c := range []struct{ scenario, from string }{
		{"uac_cancel_after_200.xml", "15550008881"},
		{"uac_cancel_after_ack.xml", "15550008882"},
	} {
		t.Run(c.scenario, func(t *testing.T) {
			answered := r.answer(ctx, c.from)
			start := time.Now()
			if out, err := sipp(ctx, t, c.scenario, "2000", r.s.sipAddr); err != nil {
				t.Errorf("%v\n%s", err, lastLines(string(out), 5))
			}
			id, ok := <-answered
			if !ok {
				t.Fatal("the operator was not offered the call")
			}
			rec := waitBinaryCall(t, r.s, r.key, id)
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("the call ended %s after it began", took.Round(time.Millisecond))
			}
			if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyCaller || rec.FailureStage != "" {
				t.Errorf("record %q by %q, failed at %q; want completed by the caller", rec.Status, rec.HangupBy, rec.FailureStage)
			}
			tr := r.trace(t, id)
			if t.Failed() {
				for _, m := range tr.SIP {
					t.Logf("inbound %v %s\n%s", m.Inbound, m.At, m.Message)
				}
				t.Logf("events %+v", tr.Events)
			}
			if bye, ok := tr.sent("BYE "); ok {
				t.Errorf("switchboard sent a BYE of its own:\n%s", bye)
			}
			if slices.ContainsFunc(tr.Events, func(e sb.CallEvent) bool { return e.Type == sb.EventCanceled }) {
				t.Errorf("the timeline says canceled")
			}
			for _, m := range tr.SIP {
				if !m.Inbound && strings.HasPrefix(m.Message, "SIP/2.0 487") {
					t.Errorf("switchboard answered 487 after its 200:\n%s", m.Message)
				}
			}
		})
	}
}

// TestSIPpNothingAfterThe487 cancels at once, before switchboard rings
// anyone, and leaves the 487 unacknowledged for two seconds: the 487 is
// retransmitted, and no 180 (or anything else) follows it; the call is
// recorded as canceled.
func TestSIPpNothingAfterThe487(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := mustSIPpRig(t, ctx)
	go func() { // the operator may be offered the call before the CANCEL is taken
		for {
			select {
			case <-r.op.Incoming():
			case <-ctx.Done():
				return
			}
		}
	}()
	out, messages, err := sippMessages(ctx, t, "uac_cancel_before_180.xml", "2000", r.s.sipAddr)
	if err != nil {
		t.Fatalf("%v\n%s", err, lastLines(string(out), 40))
	}
	// SIPp's log of what it received: the 487, again and again until the
	// ACK, and nothing else after it.
	if n := strings.Count(messages, "SIP/2.0 487"); n < 2 {
		t.Errorf("SIPp received the 487 %d times in the two seconds it went unacknowledged, want it retransmitted", n)
	}
	if i := strings.Index(messages, "SIP/2.0 487"); i >= 0 && strings.Contains(messages[i:], "SIP/2.0 180") {
		t.Errorf("SIPp received a 180 after the 487")
	}
	rec := r.callFrom(t, "15550008883")
	if rec.Status != sb.CallCanceled || rec.SIPCode != 487 {
		t.Errorf("record %q with %d, want canceled with 487", rec.Status, rec.SIPCode)
	}
	if strings.Contains(messages, "BYE sip:") {
		t.Errorf("a BYE for a dialog that never was")
	}
}

// callFrom waits for the ended record of the call from the number.
func (r *sippRig) callFrom(t *testing.T, from string) *sb.Call {
	t.Helper()
	var list struct {
		Calls []sb.Call `json:"calls"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r.s.getJSON(t, r.key, "/v1/calls", &list)
		if i := slices.IndexFunc(list.Calls, func(c sb.Call) bool { return c.From == from && c.Status.Ended() }); i >= 0 {
			return &list.Calls[i]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ended call from %s among %d", from, len(list.Calls))
		}
	}
}

// TestSIPpByeBeforeTheAck: a caller who gives up as the 200 reaches them
// sends BYE instead of the ACK; it is answered 200, and the record says
// the caller hung up an answered call.
func TestSIPpByeBeforeTheAck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := mustSIPpRig(t, ctx)
	id := r.answered(ctx, t, "uac_bye_before_ack.xml", "15550008884")
	rec := waitBinaryCall(t, r.s, r.key, id)
	if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyCaller || rec.AnsweredAt == nil || rec.FailureStage != "" {
		t.Errorf("record %q by %q, answered %v, failed at %q; want completed by the caller, answered", rec.Status, rec.HangupBy, rec.AnsweredAt, rec.FailureStage)
	}
	if bye, ok := r.trace(t, id).sent("BYE "); ok {
		t.Errorf("switchboard sent a BYE of its own:\n%s", bye)
	}
}

// TestSIPpHoldSendsNothing: the trunk holds the call (sendonly), makes it
// inactive, then resumes it, 1.5 s each, while the operator talks all
// along. Counted on the wire at the media address the trunk's SDP names:
// switchboard sends RTP while the call talks, none while it is held or
// inactive, and again once resumed.
func TestSIPpHoldSendsNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := mustSIPpRig(t, ctx, "SWITCHBOARD_MEDIA_TIMEOUT=20s")
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	var mu sync.Mutex
	var arrivals []time.Time
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := sink.ReadFromUDP(buf); err != nil {
				return
			}
			mu.Lock()
			arrivals = append(arrivals, time.Now())
			mu.Unlock()
		}
	}()
	answered := r.answer(ctx, "15550008885")
	talk, stop := context.WithCancel(ctx)
	defer stop()
	go func() { // the operator talks, 50 frames a second, all through
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		frame := bytes.Repeat([]byte{0x55}, 160)
		for {
			select {
			case <-tick.C:
				r.op.SendAudio(frame)
			case <-talk.Done():
				return
			}
		}
	}()
	out, err := sippIn(ctx, t, t.TempDir(), "127.0.0.1", "uac_hold_rtp.xml", "2000", r.s.sipAddr,
		"-key", "rtpsink", fmt.Sprint(sink.LocalAddr().(*net.UDPAddr).Port))
	if err != nil {
		t.Fatalf("%v\n%s", err, lastLines(string(out), 40))
	}
	stop()
	id, ok := <-answered
	if !ok {
		t.Fatal("the operator was not offered the call")
	}
	waitBinaryCall(t, r.s, r.key, id)
	// The phases begin when switchboard answers each re-INVITE.
	var oks []time.Time
	for _, m := range r.trace(t, id).SIP {
		if !m.Inbound && strings.HasPrefix(m.Message, "SIP/2.0 200") && strings.Contains(m.Message, " INVITE\r\n") {
			oks = append(oks, m.At)
		}
	}
	if len(oks) != 4 {
		t.Fatalf("switchboard answered %d INVITEs with 200, want the call's and three re-INVITEs'", len(oks))
	}
	mu.Lock()
	defer mu.Unlock()
	count := func(from, to time.Time) int {
		n := 0
		for _, at := range arrivals {
			if at.After(from) && at.Before(to) {
				n++
			}
		}
		return n
	}
	settle := 100 * time.Millisecond // packets already on their way at a change
	talking := count(oks[0].Add(settle), oks[1])
	silent := count(oks[1].Add(settle), oks[3])
	resumed := count(oks[3].Add(settle), oks[3].Add(1400*time.Millisecond))
	t.Logf("RTP to the trunk: %d while talking, %d while held and inactive, %d once resumed", talking, silent, resumed)
	if talking < 25 || silent != 0 || resumed < 25 {
		t.Errorf("RTP to the trunk: %d while talking, %d while held and inactive, %d once resumed; want ≥ 25, 0, ≥ 25", talking, silent, resumed)
	}
}

// TestSIPpLoopedAnnouncement plays the pcap twice, so the RTP sequence
// numbers start over mid-call: the record counts both plays and never a
// negative loss (RFC 3550 A.1).
func TestSIPpLoopedAnnouncement(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := mustSIPpRig(t, ctx, "SWITCHBOARD_MEDIA_TIMEOUT=20s")
	id := r.answered(ctx, t, "uac_pcap_loop.xml", "15550008886")
	rec := waitBinaryCall(t, r.s, r.key, id)
	played := pcapPackets(t, "/usr/share/sip-tester/g711a.pcap")
	if got := int(rec.FromCaller.Packets); got < 2*played*95/100 || rec.FromCaller.Lost < 0 || rec.FromCaller.Lost > int64(played/20) {
		t.Errorf("from the caller: %d packets, %d lost; want about %d (the pcap twice) and a loss between 0 and %d",
			got, rec.FromCaller.Lost, 2*played, played/20)
	}
}
