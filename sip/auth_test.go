package sip

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"

	sb "github.com/switchboard-voice/switchboard"
)

// rawUA sends hand-made SIP requests over UDP and reads the answers, as an
// attacker replaying captured headers would.
type rawUA struct {
	tb   testing.TB
	conn net.Conn
	n    int
}

func mustRawUA(tb testing.TB, server string) *rawUA {
	tb.Helper()
	conn, err := net.Dial("udp", server)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return &rawUA{tb: tb, conn: conn}
}

// invite sends an INVITE to ruri with the extra headers, a new branch and
// the given Call-ID (a new one when empty), and returns its first
// response: 100 Trying for an INVITE taken, the refusal otherwise.
func (u *rawUA) invite(ruri, callID string, extra ...string) (int, map[string]string) {
	u.tb.Helper()
	return u.inviteWith(ruri, callID, "application/sdp", sampleOffer, extra...)
}

// inviteWith is invite with a body of contentType ("" and no body: a late
// offer).
func (u *rawUA) inviteWith(ruri, callID, contentType, body string, extra ...string) (int, map[string]string) {
	u.tb.Helper()
	u.n++
	if callID == "" {
		callID = fmt.Sprintf("raw-%d-%d@test", time.Now().UnixNano(), u.n)
	}
	local := u.conn.LocalAddr().String()
	user := strings.TrimPrefix(strings.SplitN(ruri, "@", 2)[0], "sip:")
	msg := "INVITE " + ruri + " SIP/2.0\r\nVia: SIP/2.0/UDP " + local + fmt.Sprintf(";branch=z9hG4bKraw%d%d\r\n", time.Now().UnixNano(), u.n) +
		"From: <sip:3000@" + local + ">;tag=raw" + fmt.Sprint(u.n) + "\r\nTo: <sip:" + user + "@" + u.conn.RemoteAddr().String() + ">\r\n" +
		"Call-ID: " + callID + "\r\nCSeq: 1 INVITE\r\nContact: <sip:3000@" + local + ">\r\nMax-Forwards: 70\r\n" +
		strings.Join(append(extra, ""), "\r\n")
	if contentType != "" {
		msg += "Content-Type: " + contentType + "\r\n"
	}
	msg += fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
	if _, err := u.conn.Write([]byte(msg)); err != nil {
		u.tb.Fatal(err)
	}
	buf := make([]byte, 8192)
	for {
		u.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := u.conn.Read(buf)
		if err != nil {
			u.tb.Fatalf("no answer to the INVITE: %v", err)
		}
		code, headers := parseResponse(string(buf[:n]))
		if code >= 100 && headers["call-id"] == callID {
			return code, headers
		}
	}
}

func parseResponse(s string) (int, map[string]string) {
	r := bufio.NewScanner(strings.NewReader(s))
	headers := map[string]string{}
	code := 0
	if r.Scan() {
		fmt.Sscanf(r.Text(), "SIP/2.0 %d", &code)
	}
	for r.Scan() && r.Text() != "" {
		if k, v, ok := strings.Cut(r.Text(), ":"); ok {
			headers[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	return code, headers
}

// answerChallenge computes a Proxy-Authorization for the 407's challenge.
func answerChallenge(tb testing.TB, headers map[string]string, uri string, nc int) string {
	tb.Helper()
	chal, err := digest.ParseChallenge(headers["proxy-authenticate"])
	if err != nil {
		tb.Fatalf("challenge %q: %v", headers["proxy-authenticate"], err)
	}
	cred, err := digest.Digest(chal, digest.Options{Method: "INVITE", URI: uri, Username: "acme", Password: "s3cret", Count: nc})
	if err != nil {
		tb.Fatal(err)
	}
	return "Proxy-Authorization: " + cred.String()
}

// Digest credentials are good once: a captured Proxy-Authorization sent
// again is challenged, and one made for another Request-URI is refused.
func TestDigestCredentialsCannotBeReplayed(t *testing.T) {
	trunk := &sb.Trunk{ID: sb.NewID(), Name: "carrier", Username: "acme", DigestHA1: md5hex("acme:" + sb.DigestRealm + ":s3cret"), Numbers: []string{"2100", "2101"}}
	ts := mustServer(t, &directory{trunks: []*sb.Trunk{trunk}}, Config{})
	pbx := mustRawUA(t, ts.udp)
	ruri := "sip:2100@" + ts.udp

	code, chal := pbx.invite(ruri, "")
	if code != 407 {
		t.Fatalf("INVITE without credentials answered %d, want 407", code)
	}
	auth := answerChallenge(t, chal, ruri, 1)
	if code, _ := pbx.invite(ruri, "", auth); code != 100 {
		t.Fatalf("the PBX's credentials were answered %d", code)
	}
	nextCall(t, ts)

	attacker := mustRawUA(t, ts.udp)
	if code, _ := attacker.invite(ruri, "", auth); code != 407 && code != 403 {
		t.Errorf("a replayed Proxy-Authorization was answered %d, want 407 or 403", code)
	}
	// The same nonce with a higher count is the PBX's next request: good.
	if code, _ := pbx.invite(ruri, "", answerChallenge(t, chal, ruri, 2)); code != 100 {
		t.Fatalf("the nonce's next count was answered %d", code)
	}
	nextCall(t, ts)

	// Credentials made for 2100 sent with a Request-URI for 2101.
	_, chal = pbx.invite(ruri, "")
	if code, _ := attacker.invite("sip:2101@"+ts.udp, "", answerChallenge(t, chal, ruri, 1)); code != 403 {
		t.Errorf("credentials for another URI were answered %d, want 403", code)
	}
	select {
	case c := <-ts.calls:
		c.Leg.Close()
		t.Error("a replayed or misdirected INVITE was dispatched")
	case <-time.After(50 * time.Millisecond):
	}
}

// Two calls of a digest trunk challenged in the same second each answer
// their own challenge with nc=1, and both are taken (a PBX's concurrent
// calls). An answer that was right but is spent is challenged again with
// stale=true, so the PBX retries rather than taking it for a wrong
// password (RFC 2617 §3.2.1); a wrong password's challenge is not stale.
func TestDigestConcurrentCallsAndStale(t *testing.T) {
	trunk := &sb.Trunk{ID: sb.NewID(), Name: "carrier", Username: "acme", DigestHA1: md5hex("acme:" + sb.DigestRealm + ":s3cret"), Numbers: []string{"2100"}}
	ts := mustServer(t, &directory{trunks: []*sb.Trunk{trunk}}, Config{})
	ruri := "sip:2100@" + ts.udp
	a, b := mustRawUA(t, ts.udp), mustRawUA(t, ts.udp)
	_, chalA := a.invite(ruri, "")
	_, chalB := b.invite(ruri, "")
	if chalA["proxy-authenticate"] == chalB["proxy-authenticate"] {
		t.Errorf("two challenges carry the same nonce: %s", chalA["proxy-authenticate"])
	}
	authA := answerChallenge(t, chalA, ruri, 1)
	for name, ua := range map[string]*rawUA{"first": a, "second": b} {
		chal := map[*rawUA]map[string]string{a: chalA, b: chalB}[ua]
		if code, _ := ua.invite(ruri, "", answerChallenge(t, chal, ruri, 1)); code != 100 {
			t.Errorf("the %s call's credentials were answered %d, want 100", name, code)
			continue
		}
		nextCall(t, ts)
	}
	code, again := a.invite(ruri, "", authA)
	if ch, err := digest.ParseChallenge(again["proxy-authenticate"]); code != 407 || err != nil || !ch.Stale {
		t.Errorf("spent credentials answered %d %q, want 407 with stale=true", code, again["proxy-authenticate"])
	}
	wrong, err := digest.Digest(mustChallenge(t, again), digest.Options{Method: "INVITE", URI: ruri, Username: "acme", Password: "wrong", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := a.invite(ruri, "", "Proxy-Authorization: "+wrong.String()); code != 403 {
		t.Errorf("a wrong password was answered %d, want 403", code)
	}
}

func mustChallenge(t *testing.T, headers map[string]string) *digest.Challenge {
	t.Helper()
	ch, err := digest.ParseChallenge(headers["proxy-authenticate"])
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// An answer without qop has no count in its hash, so a count added to it
// proves nothing: it is good once, whatever nc it carries after.
func TestDigestWithoutQopIsGoodOnce(t *testing.T) {
	trunk := &sb.Trunk{ID: sb.NewID(), Name: "carrier", Username: "acme", DigestHA1: md5hex("acme:" + sb.DigestRealm + ":s3cret"), Numbers: []string{"2100"}}
	ts := mustServer(t, &directory{trunks: []*sb.Trunk{trunk}}, Config{})
	pbx := mustRawUA(t, ts.udp)
	ruri := "sip:2100@" + ts.udp
	code, hdrs := pbx.invite(ruri, "")
	if code != 407 {
		t.Fatalf("INVITE without credentials answered %d, want 407", code)
	}
	chal, err := digest.ParseChallenge(hdrs["proxy-authenticate"])
	if err != nil {
		t.Fatal(err)
	}
	response := md5hex(trunk.DigestHA1 + ":" + chal.Nonce + ":" + md5hex("INVITE:"+ruri))
	auth := func(nc string) string {
		h := `Proxy-Authorization: Digest username="acme", realm="` + chal.Realm + `", nonce="` + chal.Nonce + `", uri="` + ruri +
			`", response="` + response + `", algorithm=MD5`
		if nc != "" {
			h += ", nc=" + nc
		}
		return h
	}
	if code, _ := pbx.invite(ruri, "", auth("")); code != 100 {
		t.Fatalf("a qop-less answer was answered %d", code)
	}
	nextCall(t, ts)
	for _, nc := range []string{"", "00000002", "00000099"} {
		if code, _ := pbx.invite(ruri, "", auth(nc)); code != 407 && code != 403 {
			t.Errorf("the qop-less answer replayed with nc %q was answered %d, want 407 or 403", nc, code)
		}
	}
	select {
	case c := <-ts.calls:
		c.Leg.Close()
		t.Error("a replayed qop-less answer was dispatched")
	case <-time.After(50 * time.Millisecond):
	}
}

// next reads the next response on the UA's socket for callID.
func (u *rawUA) next(t *testing.T, callID string) (int, map[string]string) {
	t.Helper()
	buf := make([]byte, 8192)
	for {
		u.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := u.conn.Read(buf)
		if err != nil {
			t.Fatalf("no response: %v", err)
		}
		if code, h := parseResponse(string(buf[:n])); code >= 100 && h["call-id"] == callID {
			return code, h
		}
	}
}

// until reads responses for callID until one with code.
func (u *rawUA) until(t *testing.T, callID string, code int) map[string]string {
	t.Helper()
	for {
		if c, h := u.next(t, callID); c == code {
			return h
		}
	}
}
