package sip

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	sb "github.com/switchboard-voice/switchboard"
)

// A carrier that sends its 183 reliably (Require: 100rel, RSeq) gets a
// PRACK naming the RSeq and the INVITE's CSeq before it answers; our
// INVITE said we take 100rel and timers.
func TestDialPRACKsReliableEarlyMedia(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	invites := make(chan *sip.Request, 1)
	c := mustCarrier(t, func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		invites <- req
		early := sip.NewSDPResponseFromRequest(req, c.sdp())
		early.StatusCode, early.Reason = sip.StatusSessionInProgress, "Session Progress"
		early.AppendHeader(sip.NewHeader("Require", "100rel"))
		early.AppendHeader(sip.NewHeader("RSeq", "7"))
		early.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: addrPortOf(t, c.addr)}})
		tx.Respond(early)
		select {
		case <-c.prack:
		case <-time.After(3 * time.Second):
			tx.Respond(sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "no PRACK", nil))
			return
		}
		tx.Respond(sip.NewSDPResponseFromRequest(req, c.sdp()))
	})
	l, err := ts.Dial(context.Background(), route(c), "+15550001111")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegEarlyMedia {
		t.Fatalf("first event %v, want early media", ev.Kind)
	}
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegAnswered {
		t.Fatalf("event %+v, want answered (the carrier answers only once PRACKed)", ev)
	}
	inv := <-invites
	if h := inv.GetHeader("Supported"); h == nil || !strings.Contains(h.Value(), "100rel") || !strings.Contains(h.Value(), "timer") {
		t.Errorf("our INVITE's Supported: %v", h)
	}
	var prack string
	for _, m := range l.SIPTrace() {
		if strings.HasPrefix(m.Message, "PRACK ") {
			prack = m.Message
		}
	}
	if want := fmt.Sprintf("\r\nRAck: 7 %d INVITE\r\n", inv.CSeq().SeqNo); !strings.Contains(prack, want) {
		t.Errorf("the PRACK lacks %q:\n%s", strings.TrimSpace(want), prack)
	}
	if cseq := prackCSeq(prack); cseq <= inv.CSeq().SeqNo {
		t.Errorf("the PRACK's CSeq %d is not above the INVITE's %d", cseq, inv.CSeq().SeqNo)
	}
}

func prackCSeq(msg string) uint32 {
	var n uint32
	if i := strings.Index(msg, "\r\nCSeq: "); i >= 0 {
		fmt.Sscanf(msg[i+len("\r\nCSeq: "):], "%d", &n)
	}
	return n
}

func addrPortOf(t *testing.T, addr string) int {
	t.Helper()
	_, port, err := sip.ParseAddr(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// timerAnswer answers our INVITE with a session timer naming refresher,
// and UPDATE in Allow when update.
func timerAnswer(refresher string, update bool) func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
	return func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		res := sip.NewSDPResponseFromRequest(req, c.sdp())
		res.AppendHeader(sip.NewHeader("Session-Expires", "2;refresher="+refresher))
		res.AppendHeader(sip.NewHeader("Require", "timer"))
		_, port, _ := sip.ParseAddr(c.addr)
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: port}})
		if update {
			res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, BYE, CANCEL, UPDATE"))
		}
		tx.Respond(res)
	}
}

// On a call we place we ask for a session timer; when the answer makes us
// the refresher (uac), we refresh at half the interval, by UPDATE when
// the carrier allows it, else by re-INVITE, and the call stays up.
func TestDialSessionTimerWeRefresh(t *testing.T) {
	for _, update := range []bool{false, true} {
		t.Run(fmt.Sprint("update=", update), func(t *testing.T) {
			ts := mustServer(t, nil, Config{MinSE: time.Second, SessionExpires: 2 * time.Second})
			refreshes := make(chan *sip.Request, 8)
			c := mustCarrier(t, timerAnswer("uac", update))
			c.mu.Lock()
			c.refresh = func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
				res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
				if req.IsInvite() {
					res = sip.NewSDPResponseFromRequest(req, c.sdp())
				}
				res.AppendHeader(sip.NewHeader("Session-Expires", "2;refresher=uac"))
				tx.Respond(res)
				refreshes <- req
			}
			c.mu.Unlock()
			l, err := ts.Dial(context.Background(), route(c), "+15550001111")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if ev := nextLegEvent(t, l); ev.Kind != sb.LegAnswered {
				t.Fatalf("event %+v, want answered", ev)
			}
			for i := range 3 {
				select {
				case req := <-refreshes:
					if want := map[bool]sip.RequestMethod{true: sip.UPDATE, false: sip.INVITE}[update]; req.Method != want {
						t.Errorf("refresh %d by %s, want %s", i, req.Method, want)
					}
					if h := req.GetHeader("Session-Expires"); h == nil || h.Value() != "2;refresher=uac" {
						t.Errorf("refresh %d Session-Expires %v", i, h)
					}
				case ev := <-l.Events():
					t.Fatalf("refresh %d: event %v (%s)", i, ev.Kind, ev.Reason)
				case <-time.After(2 * time.Second):
					t.Fatalf("no refresh %d within the interval", i)
				}
			}
		})
	}
}

// When the answer makes the carrier the refresher (uas) and its refresh
// never comes, the leg reports the session expiring before it does.
func TestDialSessionTimerTheyStopRefreshing(t *testing.T) {
	ts := mustServer(t, nil, Config{MinSE: time.Second, SessionExpires: 2 * time.Second})
	c := mustCarrier(t, timerAnswer("uas", false))
	l, err := ts.Dial(context.Background(), route(c), "+15550001111")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegAnswered {
		t.Fatalf("event %+v, want answered", ev)
	}
	start := time.Now()
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegSessionExpired {
		t.Fatalf("event %+v, want session expired", ev)
	}
	if d := time.Since(start); d < 1200*time.Millisecond || d > 1900*time.Millisecond {
		t.Errorf("expiry reported after %s, want about 1.33 s", d)
	}
	if got := c.seen(); strings.Contains(got, "in dialog") {
		t.Errorf("we refreshed though the carrier was the refresher: %s", got)
	}
}
