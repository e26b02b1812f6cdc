package sip

import (
	"bytes"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// leak finds a credential or a media key in a SIP message.
var leak = regexp.MustCompile(`(?i)authorization:[^\r\n]*(response|nonce)=|inline:[A-Za-z0-9+/]`)

// lockedBuffer is a log destination written by several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A digest-authenticated SRTP call's credentials and keys reach neither
// the exporter (HEP), nor the SIP log, nor the call's trace.
func TestTraceKeepsNoCredentialsNorKeys(t *testing.T) {
	trunk := &sb.Trunk{ID: sb.NewID(), Name: "carrier", Username: "acme", DigestHA1: md5hex("acme:" + sb.DigestRealm + ":s3cret"), Numbers: []string{"2000"}}
	var mu sync.Mutex
	var exported []string
	logs := &lockedBuffer{}
	ts := mustServer(t, &directory{trunks: []*sb.Trunk{trunk}}, Config{
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Export: func(m sb.SIPMessage, _ string) { mu.Lock(); exported = append(exported, m.Message); mu.Unlock() },
	})
	ts.SetTrunkLogging(trunk.ID, true)
	phone := mustPhone(t, siptest.Options{LocalIP: "127.0.0.6", Username: "acme", Password: "s3cret", SRTP: "AES_CM_128_HMAC_SHA1_80"})
	in, _ := answer(t, ts, phone, "udp")

	mu.Lock()
	all := strings.Join(exported, "\n---\n")
	mu.Unlock()
	if !strings.Contains(all, `Proxy-Authorization: Digest username="acme", <redacted>`) || !strings.Contains(all, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:*") {
		t.Fatalf("the exporter did not see the authenticated INVITE and its answer, redacted:\n%s", all)
	}
	for _, m := range ts.capture.messages(in.SIPCallID) {
		all += "\n---\n" + m.Message
	}
	if l := leak.FindString(all); l != "" {
		t.Errorf("exported or traced messages keep a secret (%q):\n%s", l, all)
	}
	if l := leak.FindString(logs.String()); l != "" {
		t.Errorf("the SIP log keeps a secret (%q):\n%s", l, logs.String())
	}
}
