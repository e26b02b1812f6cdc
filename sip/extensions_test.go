package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

var originRE = regexp.MustCompile(`(?m)^o=switchboard (\d+) (\d+) `)

// sdpOrigin returns the session id and version of one of our descriptions.
func sdpOrigin(t *testing.T, body []byte) (id, version string) {
	t.Helper()
	m := originRE.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no o= line of ours in:\n%s", body)
	}
	return string(m[1]), string(m[2])
}

// answerBody is the SDP of our 200 to the INVITE, from the leg's trace.
func answerBody(t *testing.T, leg sb.TrunkLeg) []byte {
	t.Helper()
	for _, m := range leg.SIPTrace() {
		if !m.Inbound && strings.HasPrefix(m.Message, "SIP/2.0 200") && strings.Contains(m.Message, " INVITE\r\n") {
			_, body, _ := strings.Cut(m.Message, "\r\n\r\n")
			return []byte(body)
		}
	}
	t.Fatal("no 200 OK to the INVITE in the trace")
	return nil
}

// noEvent fails if the leg reports anything for d.
func noEvent(t *testing.T, leg sb.TrunkLeg, d time.Duration) {
	t.Helper()
	select {
	case ev := <-leg.Events():
		t.Fatalf("unexpected leg event %v (%s)", ev.Kind, ev.Reason)
	case <-time.After(d):
	}
}

// A re-INVITE that changes nothing (a refresh) is answered with the o=
// version the caller already has (RFC 3264 §8); a hold changes our
// description and raises it by one.
func TestRefreshKeepsTheSDPVersion(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	phone := mustPhone(t, siptest.Options{})
	in, call := answer(t, ts, phone, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, v := sdpOrigin(t, answerBody(t, in.Leg))
	for i := range 2 {
		res, err := call.Reinvite(ctx, call.SDP("sendrecv"), nil)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("refresh %d: %v %v", i, res, err)
		}
		if gotID, gotV := sdpOrigin(t, res.Body()); gotID != id || gotV != v {
			t.Errorf("refresh %d answered with o= %s %s, want %s %s (unchanged)", i, gotID, gotV, id, v)
		}
	}
	res, err := call.Reinvite(ctx, call.SDP("sendonly"), nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("hold: %v %v", res, err)
	}
	nextEvent(t, in.Leg, sb.LegHeld)
	if _, gotV := sdpOrigin(t, res.Body()); gotV == v || !strings.Contains(string(res.Body()), "a=recvonly") {
		t.Errorf("hold answered with version %s (was %s):\n%s", gotV, v, res.Body())
	}
}

// A re-INVITE the call cannot take is refused with 488 and the call goes
// on as it was (RFC 3261 §14.2): a carrier's fax detection switching to
// T.38 (m=image, which the SDP parser alone would call malformed), and an
// offer without the call's codec (the bridge carries it: no codec change
// mid-call). A later refresh still gets 200.
func TestReinviteRefusedStreamsLeaveTheCall(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	phone := mustPhone(t, siptest.Options{})
	in, call := answer(t, ts, phone, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	codec := in.Leg.Media().Codec()
	t38 := strings.Split(string(call.SDP("sendrecv")), "m=")[0] +
		"m=image 40004 udptl t38\r\na=T38FaxVersion:0\r\na=T38FaxRateManagement:transferredTCF\r\n"
	other := "0"
	if codec.PayloadType == 0 {
		other = "8"
	}
	otherCodec := regexp.MustCompile(`(m=audio \d+ RTP/AVP) [0-9 ]+`).ReplaceAllString(string(call.SDP("sendrecv")), "${1} "+other)
	for name, body := range map[string]string{"T.38": t38, "another codec": otherCodec} {
		res, err := call.Reinvite(ctx, []byte(body), nil)
		if err != nil || res.StatusCode != 488 {
			t.Errorf("%s: %v %v, want 488", name, res, err)
		}
	}
	if res, err := call.Reinvite(ctx, call.SDP("sendrecv"), nil); err != nil || res.StatusCode != 200 {
		t.Fatalf("refresh after the refusals: %v %v", res, err)
	}
	noEvent(t, in.Leg, 100*time.Millisecond)
	// The same codec at another (dynamic) payload type is the same codec
	// (RFC 3264 §8.3.2): taken, and answered at that payload type.
	moved := regexp.MustCompile(`(m=audio \d+ RTP/AVP) [0-9 ]+`).ReplaceAllString(string(call.SDP("sendrecv")), "${1} 96") +
		fmt.Sprintf("a=rtpmap:96 %s/%d\r\n", codec.Name, codec.ClockRate)
	res, err := call.Reinvite(ctx, []byte(moved), nil)
	if err != nil || res.StatusCode != 200 || !strings.Contains(string(res.Body()), " RTP/AVP 96\r\n") {
		t.Errorf("the codec at payload type 96: %v %v, want 200 answering 96", res, err)
	}
	if got := in.Leg.Media().Codec(); got.Name != codec.Name || got.PayloadType != 96 {
		t.Errorf("the leg's codec is now %+v, want %s at 96", got, codec.Name)
	}
}

// A re-INVITE without SDP gets our current description as the offer in
// the 200 (version unchanged, since nothing changed), and the answer in
// the ACK is taken: here it holds the call, then names a new address.
func TestReinviteWithoutSDP(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	phone := mustPhone(t, siptest.Options{})
	in, call := answer(t, ts, phone, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, v := sdpOrigin(t, answerBody(t, in.Leg))
	var offered []byte
	res, err := call.Reinvite(ctx, nil, func(offer []byte) []byte {
		offered = offer
		return call.SDP("sendonly")
	})
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("re-INVITE without SDP: %v %v", res, err)
	}
	if gotID, gotV := sdpOrigin(t, offered); gotID != id || gotV != v || !strings.Contains(string(offered), "a=sendrecv") {
		t.Errorf("our offer in the 200 has o= %s %s (want %s %s, unchanged) or is not sendrecv:\n%s", gotID, gotV, id, v, offered)
	}
	nextEvent(t, in.Leg, sb.LegHeld) // the ACK's answer was taken

	moved := netip.MustParseAddrPort("127.0.0.1:40002")
	res, err = call.Reinvite(ctx, nil, func([]byte) []byte { return call.SDPAt(moved, "sendrecv") })
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("second re-INVITE without SDP: %v %v", res, err)
	}
	nextEvent(t, in.Leg, sb.LegResumed)
	if got := in.Leg.Media().(*rtpPort).remote.Load(); got == nil || *got != moved {
		t.Errorf("RTP goes to %v, want the ACK's answer's %v", got, moved)
	}
}

// UPDATE (RFC 3311) inside the call: with SDP an offer like a re-INVITE's
// (hold, resume), answered in its 200; without SDP a refresh, 200 and no
// body. No ACK follows an UPDATE.
func TestUpdate(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	phone := mustPhone(t, siptest.Options{})
	in, call := answer(t, ts, phone, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, v := sdpOrigin(t, answerBody(t, in.Leg))
	res, err := call.Update(ctx, call.SDP("sendonly"))
	if err != nil || res.StatusCode != 200 || !strings.Contains(string(res.Body()), "a=recvonly") {
		t.Fatalf("UPDATE holding: %v %v", res, err)
	}
	nextEvent(t, in.Leg, sb.LegHeld)
	res, err = call.Update(ctx, call.SDP("sendrecv"))
	if err != nil || res.StatusCode != 200 || !strings.Contains(string(res.Body()), "a=sendrecv") {
		t.Fatalf("UPDATE resuming: %v %v", res, err)
	}
	nextEvent(t, in.Leg, sb.LegResumed)
	if _, gotV := sdpOrigin(t, res.Body()); gotV == v {
		t.Errorf("o= version %s after hold and resume, want it raised", gotV)
	}
	res, err = call.Update(ctx, nil)
	if err != nil || res.StatusCode != 200 || len(res.Body()) != 0 {
		t.Fatalf("UPDATE without SDP: %v %v", res, err)
	}
	noEvent(t, in.Leg, 200*time.Millisecond)
	res, err = call.Update(ctx, []byte("v=0\r\nnot sdp"))
	if err != nil || res.StatusCode != 400 {
		t.Errorf("UPDATE with bad SDP: %v %v, want 400", res, err)
	}
}

// Require: timer and Require: 100rel are honoured (reliable_test.go has
// the reliable provisional responses); a tag we do not implement is
// refused with 420 naming it.
func TestRequireTimerAnd100relTaken(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	for _, c := range []struct {
		require string
		code    int
	}{{"100rel", 0}, {"timer, 100rel", 0}, {"timer", 0}, {"timer, nothingsupportsthis", 420}} {
		phone := mustPhone(t, siptest.Options{Headers: map[string]string{"Require": c.require, "Supported": "timer", "Session-Expires": "1800"}})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		call, err := phone.InviteAsync(ctx, ts.udp, "3000", "2000")
		if err != nil {
			t.Fatal(err)
		}
		if c.code == 0 {
			in := nextCall(t, ts)
			in.Leg.Reject(ctx, 480, "test")
		}
		var se *siptest.StatusError
		if err := call.Wait(ctx); !errors.As(err, &se) || (c.code != 0 && se.Code != c.code) || (c.code == 0 && se.Code != 480) {
			t.Errorf("Require: %s: %v, want %d", c.require, err, c.code)
		}
		cancel()
		call.Close()
	}
	select {
	case in := <-ts.calls:
		t.Errorf("a call that requires an extension we do not implement reached call control: %+v", in)
	default:
	}
}

// A Session-Expires below our Min-SE is refused with 422 naming it.
func TestSessionIntervalTooSmall(t *testing.T) {
	ts := mustServer(t, nil, Config{MinSE: 2 * time.Second})
	phone := mustPhone(t, siptest.Options{Headers: map[string]string{"Supported": "timer", "Session-Expires": "1"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call, err := phone.InviteAsync(ctx, ts.udp, "3000", "2000")
	if err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	var se *siptest.StatusError
	if err := call.Wait(ctx); !errors.As(err, &se) || se.Code != 422 {
		t.Fatalf("Session-Expires: 1 against Min-SE 2: %v, want 422", err)
	}
	var refused *sb.RefusedCall
	select {
	case refused = <-ts.refused:
	case <-ctx.Done():
		t.Fatal("the 422 was not recorded")
	}
	for _, m := range refused.Trace {
		if strings.HasPrefix(m.Message, "SIP/2.0 422") && !strings.Contains(m.Message, "\r\nMin-SE: 2\r\n") {
			t.Errorf("the 422 does not name our Min-SE:\n%s", m.Message)
		}
	}
	if refused.Code != 422 {
		t.Errorf("recorded refusal %d", refused.Code)
	}
}

// A Session-Expires below our Min-SE from a caller that does not support
// timers (a proxy put it there) is not refused: the caller could not act
// on a 422 and the call would fail (RFC 4028 §9 lets a UAS refuse only a
// requester that says Supported: timer). The 200 raises the interval to
// our Min-SE, and we refresh at it (legTimer.take says why, against §9's
// letter). It was taken as it was: with Session-Expires: 1 we refreshed
// every half second.
func TestSessionIntervalTooSmallWithoutTimerSupport(t *testing.T) {
	for _, c := range []struct {
		minSE    time.Duration // ours; zero: the default, 90 s
		asked    string
		interval time.Duration
	}{
		{5 * time.Second, "4", 5 * time.Second},
		{0, "1", 90 * time.Second},
	} {
		t.Run("Session-Expires "+c.asked, func(t *testing.T) {
			ts := mustServer(t, nil, Config{MinSE: c.minSE})
			phone := mustPhone(t, siptest.Options{Headers: map[string]string{"Session-Expires": c.asked}})
			in, _ := answer(t, ts, phone, "udp")
			var ok string
			for _, m := range in.Leg.SIPTrace() {
				if !m.Inbound && strings.HasPrefix(m.Message, "SIP/2.0 200") {
					ok = m.Message
				}
			}
			want := fmt.Sprintf("\r\nSession-Expires: %d;refresher=uas\r\n", int(c.interval/time.Second))
			if !strings.Contains(ok, want) || strings.Contains(ok, "Require: timer") {
				t.Errorf("the 200 does not state our Min-SE with us refreshing (want %q):\n%s", strings.TrimSpace(want), ok)
			}
			timer := in.Leg.(*leg).timers.current()
			if timer == nil {
				t.Fatal("no session timer runs")
			}
			if interval, we := timer.terms(); interval != c.interval || !we {
				t.Errorf("the session timer runs at %s, we refreshing %t; want %s, we refreshing", interval, we, c.interval)
			}
		})
	}
}

// headerOf returns the value of a header of a response.
func headerOf(res *sip.Response, name string) string {
	if h := res.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

// A caller that supports timers refreshes: the 200 says so (refresher=uac,
// Require: timer). Refreshes by re-INVITE and by UPDATE, each within the
// interval, keep the call up over several intervals; when they stop, the
// leg reports the session expiring before it does (RFC 4028 §10).
func TestSessionTimerCallerRefreshes(t *testing.T) {
	ts := mustServer(t, nil, Config{MinSE: time.Second})
	phone := mustPhone(t, siptest.Options{Headers: map[string]string{"Supported": "timer", "Session-Expires": "3;refresher=uac", "Min-SE": "1"}})
	in, call := answer(t, ts, phone, "udp")
	trace := in.Leg.SIPTrace()
	var ok string
	for _, m := range trace {
		if !m.Inbound && strings.HasPrefix(m.Message, "SIP/2.0 200") {
			ok = m.Message
		}
	}
	if !strings.Contains(ok, "\r\nSession-Expires: 3;refresher=uac\r\n") || !strings.Contains(ok, "\r\nRequire: timer\r\n") || !strings.Contains(ok, "\r\nSupported: 100rel, timer\r\n") {
		t.Fatalf("the 200 does not state the timer:\n%s", ok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	se, supported := sip.NewHeader("Session-Expires", "3;refresher=uac"), sip.NewHeader("Supported", "timer")
	var last time.Time
	for i := range 6 { // six refreshes, one a second: two intervals of 3 s
		select {
		case ev := <-in.Leg.Events():
			t.Fatalf("refresh %d: leg event %v (%s) while refreshed", i, ev.Kind, ev.Reason)
		case <-time.After(time.Second):
		}
		var res *sip.Response
		var err error
		if i%2 == 0 {
			res, err = call.Reinvite(ctx, call.SDP("sendrecv"), nil, se, supported)
		} else {
			res, err = call.Update(ctx, nil, se, supported)
		}
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("refresh %d: %v %v", i, res, err)
		}
		if got := headerOf(res, "Session-Expires"); got != "3;refresher=uac" {
			t.Errorf("refresh %d answered with Session-Expires %q", i, got)
		}
		last = time.Now()
	}
	// The refreshes stop: the call ends min(32 s, 3 s/3) before expiry.
	ev := nextEvent(t, in.Leg, sb.LegSessionExpired)
	// A timer fires late on a busy machine, never early.
	if d := time.Since(last); d < 1900*time.Millisecond || d > 5*time.Second {
		t.Errorf("session expiry reported %s after the last refresh, want about 2 s", d)
	}
	if !strings.Contains(ev.Reason, "no session refresh") {
		t.Errorf("reason %q", ev.Reason)
	}
}

// A caller that does not support timers cannot refresh: we do, at half
// the interval, with our unchanged description (same o= version) by
// re-INVITE, or by UPDATE when the caller allows it. The call stays up
// over several intervals.
func TestSessionTimerWeRefresh(t *testing.T) {
	for _, c := range []struct {
		name, allow, method string
	}{{"re-INVITE", "", "INVITE"}, {"UPDATE", "INVITE, ACK, BYE, CANCEL, UPDATE", "UPDATE"}} {
		t.Run(c.name, func(t *testing.T) {
			ts := mustServer(t, nil, Config{MinSE: time.Second})
			headers := map[string]string{"Session-Expires": "2"}
			if c.allow != "" {
				headers["Allow"] = c.allow
			}
			phone := mustPhone(t, siptest.Options{Headers: headers})
			in, call := answer(t, ts, phone, "udp")
			_, v := sdpOrigin(t, answerBody(t, in.Leg))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			got, err := call.WaitRefreshes(ctx, 4)
			if err != nil {
				t.Fatalf("%d refreshes: %v", len(got), err)
			}
			// A timer fires late on a busy machine, never early.
			if d := time.Since(start); d < 3500*time.Millisecond || d > 9*time.Second {
				t.Errorf("4 refreshes in %s, want one a second", d)
			}
			for i, r := range got {
				if r.Method != c.method || r.SessionExpires != "2;refresher=uac" {
					t.Errorf("refresh %d: %s with Session-Expires %q", i, r.Method, r.SessionExpires)
				}
				if r.Method == "INVITE" {
					if _, gotV := sdpOrigin(t, r.SDP); gotV != v {
						t.Errorf("refresh %d offers o= version %s, want %s (unchanged)", i, gotV, v)
					}
				}
			}
			noEvent(t, in.Leg, 100*time.Millisecond)
		})
	}
}

// When our refresh fails, the call is reported expiring before the
// session does.
func TestSessionTimerOurRefreshRefused(t *testing.T) {
	ts := mustServer(t, nil, Config{MinSE: time.Second})
	phone := mustPhone(t, siptest.Options{Headers: map[string]string{"Session-Expires": "2"}, RefuseReinvite: 500})
	in, _ := answer(t, ts, phone, "udp")
	start := time.Now()
	nextEvent(t, in.Leg, sb.LegSessionExpired)
	// A timer fires late on a busy machine, never early.
	if d := time.Since(start); d < time.Second || d > 4*time.Second {
		t.Errorf("expiry reported after %s, want between the refresh (1 s) and the expiry (2 s)", d)
	}
}

// Our refresh that crosses another offer (491) is sent again a moment
// later, and the call stays up.
func TestSessionTimerRefreshRetriedAfter491(t *testing.T) {
	ts := mustServer(t, nil, Config{MinSE: time.Second})
	phone := mustPhone(t, siptest.Options{Headers: map[string]string{"Session-Expires": "2"}, Refusals: []int{491}})
	in, call := answer(t, ts, phone, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got, err := call.WaitRefreshes(ctx, 3); err != nil {
		t.Fatalf("%d refreshes: %v", len(got), err)
	}
	noEvent(t, in.Leg, 100*time.Millisecond)
}

func TestReadTimer(t *testing.T) {
	for _, c := range []struct {
		headers map[string]string
		want    timerTerms
	}{
		{map[string]string{}, timerTerms{}},
		{map[string]string{"Session-Expires": "1800"}, timerTerms{interval: 1800 * time.Second}},
		{map[string]string{"Session-Expires": "90 ; Refresher=UAS", "Supported": "100rel, timer"},
			timerTerms{interval: 90 * time.Second, refresher: "uas", supported: true}},
		{map[string]string{"x": "120;refresher=uac", "k": "timer", "Min-SE": "90"},
			timerTerms{interval: 120 * time.Second, refresher: "uac", minSE: 90 * time.Second, supported: true}},
		{map[string]string{"Session-Expires": "0", "Require": "timer"}, timerTerms{supported: true}},
		{map[string]string{"Session-Expires": "soon", "Min-SE": "-1"}, timerTerms{}},
		{map[string]string{"Session-Expires": "99999999999"}, timerTerms{}},
	} {
		req := sip.NewRequest(sip.INVITE, sip.Uri{Host: "example.com"})
		for k, v := range c.headers {
			req.AppendHeader(sip.NewHeader(k, v))
		}
		if got := readTimer(req); got != c.want {
			t.Errorf("%v: %+v, want %+v", c.headers, got, c.want)
		}
	}
}

// FuzzReadTimer: whatever the session timer's headers say, the terms read
// are whole seconds that write back as they were read, and a refresher
// named is in lower case.
func FuzzReadTimer(f *testing.F) {
	f.Add("1800;refresher=uac", "90", "timer")
	f.Add("90 ; Refresher=UAS", "", "100rel, timer")
	f.Add("0", "-1", "")
	f.Add("4294967296;refresher", "x", "timer,timer")
	f.Fuzz(func(t *testing.T, se, minSE, supported string) {
		req := sip.NewRequest(sip.INVITE, sip.Uri{Host: "example.com"})
		req.AppendHeader(sip.NewHeader("Session-Expires", se))
		req.AppendHeader(sip.NewHeader("Min-SE", minSE))
		req.AppendHeader(sip.NewHeader("Supported", supported))
		got := readTimer(req)
		for _, d := range []time.Duration{got.interval, got.minSE} {
			if d < 0 || d%time.Second != 0 || (d > 0 && seconds(d) == "0") {
				t.Fatalf("%q, %q: terms %+v", se, minSE, got)
			}
		}
		if got.interval > 0 && !strings.HasPrefix(strings.TrimLeft(strings.TrimSpace(se), "0"), seconds(got.interval)) {
			t.Fatalf("Session-Expires %q read as %s", se, got.interval)
		}
		if got.refresher != strings.ToLower(got.refresher) || (got.interval == 0 && got.refresher != "") {
			t.Fatalf("Session-Expires %q: refresher %q", se, got.refresher)
		}
	})
}

// timerGoroutines counts the session timers running.
func timerGoroutines() int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "(*sessionTimer).run(")
}

// A session timer's goroutine ends with its leg, whichever side refreshes.
func TestSessionTimerEndsWithTheLeg(t *testing.T) {
	ts := mustServer(t, nil, Config{MinSE: time.Second})
	// An earlier test's timer may still be on its way out: count once the
	// number holds still.
	before := timerGoroutines()
	for stable := 0; stable < 5; time.Sleep(20 * time.Millisecond) {
		if n := timerGoroutines(); n == before {
			stable++
		} else {
			before, stable = n, 0
		}
	}
	for _, h := range []map[string]string{{"Session-Expires": "60"}, {"Session-Expires": "60", "Supported": "timer"}} {
		phone := mustPhone(t, siptest.Options{Headers: h})
		in, _ := answer(t, ts, phone, "udp")
		if n := timerGoroutines(); n != before+1 {
			t.Fatalf("%v: %d session timers running, want %d", h, n, before+1)
		}
		in.Leg.Close()
		for deadline := time.Now().Add(2 * time.Second); timerGoroutines() != before; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%v: the session timer outlived its leg", h)
			}
		}
	}
}

// An UPDATE with an offer while the call rings: the INVITE's offer awaits
// our answer, so RFC 3311 §5.2 wants 500 with a Retry-After of 0 to 10
// seconds; the call rings on. Written out by hand: the test phone's dialog
// sends nothing in an early dialog.
func TestEarlyUpdateOfferGets500(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	conn, err := net.Dial("udp", ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=sendrecv\r\n"
	head := "sip:2000@" + ts.udp + " SIP/2.0\r\nVia: SIP/2.0/UDP " + local + ";branch=z9hG4bK%s\r\n" +
		"From: <sip:3000@" + local + ">;tag=early1\r\nTo: <sip:2000@" + ts.udp + ">%s\r\nCall-ID: early-update\r\nCSeq: %d %s\r\n" +
		"Contact: <sip:3000@" + local + ">\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s"
	fmt.Fprintf(conn, "INVITE "+head, "inv", "", 1, "INVITE", len(sdp), sdp)
	in := nextCall(t, ts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.Leg.Ring(ctx); err != nil {
		t.Fatal(err)
	}
	// read returns the next response whose start line begins with prefix.
	read := func(prefix string) string {
		buf := make([]byte, 8192)
		for deadline := time.Now().Add(5 * time.Second); ; {
			conn.SetReadDeadline(deadline)
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("no %s: %v", prefix, err)
			}
			if msg := string(buf[:n]); strings.HasPrefix(msg, prefix) {
				return msg
			}
		}
	}
	ringing := read("SIP/2.0 180")
	to := ringing[strings.Index(ringing, "\r\nTo:")+2:]
	toTag := to[strings.Index(to, ";tag="):strings.Index(to, "\r\n")]
	fmt.Fprintf(conn, "UPDATE "+head, "upd", toTag, 2, "UPDATE", len(sdp), sdp)
	res := read("SIP/2.0 ")
	retry := -1
	if i := strings.Index(res, "\r\nRetry-After: "); i >= 0 {
		v := res[i+len("\r\nRetry-After: "):]
		retry, _ = strconv.Atoi(v[:strings.Index(v, "\r\n")])
	}
	if !strings.HasPrefix(res, "SIP/2.0 500") || retry < 0 || retry > 10 {
		t.Errorf("an early UPDATE offer was answered, want 500 with a Retry-After of 0 to 10:\n%s", res)
	}
	noEvent(t, in.Leg, 100*time.Millisecond)
}

// A hold the trunk refuses leaves the call as it was (RFC 3261 §14.1: a
// failed re-INVITE changes nothing): our next description is sendrecv
// again, at the version the trunk already has, not the sendonly offer it
// refused, which a later refresh would otherwise put the caller on hold
// with while call control carries on talking.
func TestRefusedHoldLeavesTheCall(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	// 491 and 488: the retried hold is refused too.
	for _, refusals := range [][]int{{488}, {491, 488}} {
		phone := mustPhone(t, siptest.Options{Refusals: refusals})
		in, call := answer(t, ts, phone, "udp")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, v := sdpOrigin(t, answerBody(t, in.Leg))
		if err := in.Leg.Hold(ctx, true); err == nil {
			t.Fatalf("%v: a hold the trunk refused succeeded", refusals)
		}
		var offered []byte
		res, err := call.Reinvite(ctx, nil, func(offer []byte) []byte {
			offered = offer
			return call.SDP("sendrecv")
		})
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("%v: re-INVITE without SDP: %v %v", refusals, res, err)
		}
		if _, gotV := sdpOrigin(t, offered); gotV != v || !strings.Contains(string(offered), "a=sendrecv") {
			t.Errorf("%v: after a refused hold our offer has version %s (want %s) and says:\n%s", refusals, gotV, v, offered)
		}
	}
}

// A hold that crossed the trunk's own offer (491) is sent again a moment
// later, as RFC 3261 §14.1 asks (0 to 2 s: the caller owns the Call-ID),
// instead of failing the operator's hold.
func TestHoldRetriedAfter491(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	phone := mustPhone(t, siptest.Options{Refusals: []int{491}})
	in, call := answer(t, ts, phone, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.Leg.Hold(ctx, true); err != nil {
		t.Fatalf("hold: %v", err)
	}
	if !call.Held() {
		t.Error("the phone is not held")
	}
}

// atSecondReinvite stops the server's second re-INVITE of ours before it
// is described (Server.exchanging): a hold whose first was answered 491
// then stands as it does during its back-off, no re-INVITE of ours under
// way. reachedIt is closed once it is there; release lets it go on.
func atSecondReinvite(t *testing.T) (setup func(*Server), reachedIt <-chan struct{}, release func()) {
	var n atomic.Int32
	at, free := make(chan struct{}), make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(free) }) }
	t.Cleanup(release) // before the server closes
	setup = func(s *Server) {
		s.exchanging = func(theirs bool) {
			if !theirs && n.Add(1) == 2 {
				close(at)
				<-free
			}
		}
	}
	return setup, at, release
}

// An offer of the far end's that comes while a hold of ours waits to be
// sent again after its 491 (RFC 3261 §14.1) is answered as we stood
// before the hold, sendrecv to sendrecv: the far end has not been offered
// the hold, and if the retry failed it would not be held. It was answered
// sendonly, the hold taken for done while no offer of it was under way.
// The retried hold then holds, on a call that came in and on one we
// placed.
func TestOfferDuringTheHoldsBackOff(t *testing.T) {
	t.Run("came in", func(t *testing.T) {
		setup, retry, release := atSecondReinvite(t)
		ts := mustServer(t, nil, Config{}, setup)
		phone := mustPhone(t, siptest.Options{Refusals: []int{491}})
		in, call := answer(t, ts, phone, "udp")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		held := make(chan error, 1)
		go func() { held <- in.Leg.Hold(ctx, true) }()
		reached(t, retry, "the hold's second re-INVITE")
		res, err := call.Update(ctx, call.SDP("sendrecv"))
		if got := answeredDirection(t, "the caller's UPDATE during the back-off", res, err); got != "sendrecv" {
			t.Errorf("the caller's UPDATE offering sendrecv during our hold's back-off was answered %s, want sendrecv", got)
		}
		release()
		if err := <-held; err != nil {
			t.Fatalf("hold: %v", err)
		}
		if !call.Held() {
			t.Error("the phone is not held")
		}
		res, err = call.Update(ctx, call.SDP("sendrecv"))
		if got := answeredDirection(t, "the caller's UPDATE once held", res, err); got != "sendonly" {
			t.Errorf("once held, the caller's UPDATE offering sendrecv was answered %s, want sendonly", got)
		}
	})
	t.Run("placed", func(t *testing.T) {
		setup, retry, release := atSecondReinvite(t)
		ts := mustServer(t, nil, Config{}, setup)
		var refused atomic.Bool
		l, d := placedDialog(t, ts, func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
			if !refused.Swap(true) {
				tx.Respond(sip.NewResponseFromRequest(req, sip.StatusRequestPending, "Request Pending", nil))
				return
			}
			tx.Respond(sip.NewSDPResponseFromRequest(req, c.sdpDirected("recvonly")))
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		held := make(chan error, 1)
		go func() { held <- l.Hold(ctx, true) }()
		reached(t, retry, "the hold's second re-INVITE")
		res := d.request(t, sip.UPDATE, d.c.sdpDirected("sendrecv"), nil)
		if got := answeredDirection(t, "the carrier's UPDATE during the back-off", res, nil); got != "sendrecv" {
			t.Errorf("the carrier's UPDATE offering sendrecv during our hold's back-off was answered %s, want sendrecv", got)
		}
		release()
		if err := <-held; err != nil {
			t.Fatalf("hold: %v", err)
		}
		res = d.request(t, sip.UPDATE, d.c.sdpDirected("sendrecv"), nil)
		if got := answeredDirection(t, "the carrier's UPDATE once held", res, nil); got != "sendonly" {
			t.Errorf("once held, the carrier's UPDATE offering sendrecv was answered %s, want sendonly", got)
		}
	})
}

// A hold the trunk takes (200) with an answer we cannot use (another
// codec) fails the hold, but the trunk has our hold's description: our
// next offer is that description or a later one, its version never
// below the hold's (RFC 3264 §8), not the one before the hold.
func TestHoldTakenWithAnUnusableAnswerKeepsItsVersion(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	phone := mustPhone(t, siptest.Options{ReinviteCodec: &sb.PCMA})
	in, call := answer(t, ts, phone, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.Leg.Hold(ctx, true); err == nil {
		t.Fatal("a hold answered with another codec succeeded")
	}
	refreshes := call.Refreshes()
	if len(refreshes) != 1 {
		t.Fatalf("%d re-INVITEs reached the trunk, want the hold's", len(refreshes))
	}
	_, held := sdpOrigin(t, refreshes[0].SDP)
	var offered []byte
	res, err := call.Reinvite(ctx, nil, func(offer []byte) []byte {
		offered = offer
		return call.SDP("sendrecv")
	})
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("re-INVITE without SDP: %v %v", res, err)
	}
	heldN, _ := strconv.ParseUint(held, 10, 64)
	_, v := sdpOrigin(t, offered)
	if n, _ := strconv.ParseUint(v, 10, 64); n < heldN || (n == heldN && !strings.Contains(string(offered), "a=sendonly")) {
		t.Errorf("after the hold the trunk took at version %s, our offer has version %s and says:\n%s", held, v, offered)
	}
}

// whileWeHold is what an offer of the far end's gets while we hold it
// (RFC 3264 §6.1, §8.4): never a direction in which we receive, so our
// hold stands whatever the far end re-offers (a session refresh, a
// re-offer after a codec change).
var whileWeHold = []struct{ theirs, ours string }{
	{"sendrecv", "sendonly"},
	{"recvonly", "sendonly"},
	{"sendonly", "inactive"}, // the far end holds us too
	{"inactive", "inactive"},
	{"sendrecv", "sendonly"}, // the far end takes us back; we still hold
}

// answeredDirection is the direction of an answer of ours.
func answeredDirection(t *testing.T, what string, res *sip.Response, err error) string {
	t.Helper()
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("%s: %v %v", what, res, err)
	}
	return describedDirection(t, what+": our answer", res.Body())
}

// callerOffers has call's caller offer dir in a re-INVITE or UPDATE
// (method) and returns the direction we answered.
func callerOffers(t *testing.T, ctx context.Context, call *siptest.Call) func(method sip.RequestMethod, dir string) string {
	return func(method sip.RequestMethod, dir string) string {
		t.Helper()
		var res *sip.Response
		var err error
		if method == sip.INVITE {
			res, err = call.Reinvite(ctx, call.SDP(dir), nil)
		} else {
			res, err = call.Update(ctx, call.SDP(dir))
		}
		return answeredDirection(t, fmt.Sprintf("the caller's %s offering %s", method, dir), res, err)
	}
}

// describedDirection is the direction of a description of ours.
func describedDirection(t *testing.T, what string, body []byte) string {
	t.Helper()
	a, err := parseOffer(body)
	if err != nil {
		t.Fatalf("%s: %v\n%s", what, err, body)
	}
	return a.Direction
}

// While we hold the caller, their re-INVITE or UPDATE offering sendrecv
// is answered sendonly, not sendrecv, which took the caller off hold on
// the wire while call control still held the call; each other direction
// gets what whileWeHold says. Once we take the caller back, sendrecv is
// answered sendrecv again.
func TestOfferWhileWeHoldKeepsTheHold(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	phone := mustPhone(t, siptest.Options{})
	in, call := answer(t, ts, phone, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offer := callerOffers(t, ctx, call)
	if err := in.Leg.Hold(ctx, true); err != nil {
		t.Fatalf("hold: %v", err)
	}
	for _, c := range whileWeHold {
		for _, m := range []sip.RequestMethod{sip.INVITE, sip.UPDATE} {
			if got := offer(m, c.theirs); got != c.ours {
				t.Errorf("while we hold, the caller's %s offering %s was answered %s, want %s", m, c.theirs, got, c.ours)
			}
		}
	}
	if err := in.Leg.Hold(ctx, false); err != nil {
		t.Fatalf("resume: %v", err)
	}
	for _, m := range []sip.RequestMethod{sip.INVITE, sip.UPDATE} {
		if got := offer(m, "sendrecv"); got != "sendrecv" {
			t.Errorf("once resumed, the caller's %s offering sendrecv was answered %s", m, got)
		}
	}
}

// Where the caller holds us (its re-INVITE or UPDATE offered sendonly,
// answered recvonly), our hold offers inactive, not sendonly: the stream
// was recvonly (RFC 3264 §8.4). Our resume offers sendrecv; once the
// caller took us back, our hold offers sendonly again.
func TestHoldWhileTheCallerHoldsUsOffersInactive(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	phone := mustPhone(t, siptest.Options{})
	in, call := answer(t, ts, phone, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offer := callerOffers(t, ctx, call)
	hold := func(held bool) string {
		t.Helper()
		if err := in.Leg.Hold(ctx, held); err != nil {
			t.Fatalf("hold %v: %v", held, err)
		}
		got := call.Refreshes()
		return describedDirection(t, "our re-INVITE's offer", got[len(got)-1].SDP)
	}
	holdWhileHeldUs(t, offer, hold)
}

// holdWhileHeldUs has the far end hold us by each kind of offer (offer:
// it offers, we answer), then call control hold (hold: the direction our
// re-INVITE offered): inactive, since the far end holds us; our resume
// sendrecv; once the far end takes us back, our hold sendonly.
func holdWhileHeldUs(t *testing.T, offer func(method sip.RequestMethod, dir string) string, hold func(held bool) string) {
	t.Helper()
	for _, m := range []sip.RequestMethod{sip.INVITE, sip.UPDATE} {
		if got := offer(m, "sendonly"); got != "recvonly" {
			t.Errorf("the far end's %s offering sendonly was answered %s, want recvonly", m, got)
		}
		if got := hold(true); got != "inactive" {
			t.Errorf("held by the far end's %s, our hold offered %s, want inactive", m, got)
		}
		if got := hold(false); got != "sendrecv" {
			t.Errorf("our resume offered %s, want sendrecv", got)
		}
		if got := offer(m, "sendrecv"); got != "sendrecv" {
			t.Errorf("the far end's %s offering sendrecv was answered %s, want sendrecv", m, got)
		}
		if got := hold(true); got != "sendonly" {
			t.Errorf("no longer held, our hold offered %s, want sendonly", got)
		}
		hold(false)
	}
}

// Once we take the caller off hold and they answer sendrecv, our
// description is sendrecv again, whatever they offered while we held
// them: the answer to our resume is their direction now. It was their
// offer from before that stayed, so after a session refresh of theirs
// offering recvonly while held (answered sendonly) a re-INVITE without
// SDP after our resume got our offer of sendonly, and our own session
// refresh, which offers the same description, put the caller back on
// hold on the wire while call control talked.
func TestResumeOutlivesTheCallersOfferWhileHeld(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	phone := mustPhone(t, siptest.Options{})
	in, call := answer(t, ts, phone, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.Leg.Hold(ctx, true); err != nil {
		t.Fatalf("hold: %v", err)
	}
	for _, dir := range []string{"recvonly", "inactive", "sendonly"} {
		res, err := call.Update(ctx, call.SDP(dir))
		answeredDirection(t, "the caller's UPDATE offering "+dir, res, err)
		if err := in.Leg.Hold(ctx, false); err != nil {
			t.Fatalf("resume: %v", err)
		}
		var offered []byte
		res, err = call.Reinvite(ctx, nil, func(offer []byte) []byte {
			offered = offer
			return call.SDP("sendrecv")
		})
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("re-INVITE without SDP: %v %v", res, err)
		}
		if !strings.Contains(string(offered), "a=sendrecv") {
			t.Errorf("resumed after the caller offered %s while held, our offer says:\n%s", dir, offered)
		}
		if err := in.Leg.Hold(ctx, true); err != nil {
			t.Fatalf("hold: %v", err)
		}
	}
}
