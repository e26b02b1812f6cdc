package switchboard_test

import (
	"strings"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
)

const invite = "INVITE sip:+4930123456@192.0.2.1:5060 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bK776asdhds\r\n" +
	"From: \"Alice 01715551234\" <sip:+4915112345678@pbx.example>;tag=1928301774\r\n" +
	"t: <sip:+4930123456@192.0.2.1>\r\n" +
	"Call-ID: a84b4c76e66710@pc33\r\n" +
	"CSeq: 314159 INVITE\r\n" +
	"Content-Length: 14\r\n\r\n" +
	"v=0\r\no=- 1 1\r\n"

func TestRedactMasksPartiesAndDropsBodies(t *testing.T) {
	m := sb.SIPMessage{Message: invite}
	if got := m.Redact(sb.TracePolicy{}); got.Message != invite {
		t.Fatal("an empty policy changed the message")
	}
	got := m.Redact(sb.TracePolicy{DropBodies: true, MaskNumbers: true}).Message
	for _, gone := range []string{"4930123456", "4915112345678", "01715551234", "v=0"} {
		if strings.Contains(got, gone) {
			t.Errorf("%q survived redaction:\n%s", gone, got)
		}
	}
	for _, kept := range []string{"sip:+******3456@192.0.2.1:5060", "<sip:+*********5678@pbx.example>", "t: <sip:+******3456@192.0.2.1>",
		"Call-ID: a84b4c76e66710@pc33", "CSeq: 314159 INVITE", "branch=z9hG4bK776asdhds", "[body removed by the tenant's trace policy: 14 bytes]"} {
		if !strings.Contains(got, kept) {
			t.Errorf("%q missing after redaction:\n%s", kept, got)
		}
	}
	if got := m.Redact(sb.TracePolicy{DropBodies: true}).Message; !strings.Contains(got, "4915112345678") || strings.Contains(got, "v=0") {
		t.Errorf("dropping bodies alone:\n%s", got)
	}
}

func TestQ850Cause(t *testing.T) {
	for code, want := range map[int]int{200: 16, 404: 1, 486: 17, 480: 18, 403: 21, 603: 21, 408: 102, 488: 127, 503: 41, 487: 127, 100: 0} {
		if got := sb.Q850Cause(code); got != want {
			t.Errorf("Q850Cause(%d) = %d, want %d", code, got, want)
		}
	}
}

func TestNormalizeNumber(t *testing.T) {
	for in, want := range map[string]string{"+1 (555) 000-1111": "+15550001111", "0049 30 123456": "+4930123456",
		"030/123.456": "030123456", " 112 ": "112"} {
		if got, err := sb.NormalizeNumber(in); err != nil || got != want {
			t.Errorf("NormalizeNumber(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "12", "+", "1234567890123456", "12a45", "sip:alice@example.com", "++4930"} {
		if _, err := sb.NormalizeNumber(bad); sb.ErrorCode(err) != sb.EINVALID {
			t.Errorf("NormalizeNumber(%q) took it: %v", bad, err)
		}
	}
}

func TestRedactSecrets(t *testing.T) {
	msg := "INVITE sip:2000@192.0.2.1 SIP/2.0\r\n" +
		"Proxy-Authorization: Digest username=\"acme\", realm=\"switchboard\", nonce=\"abc\", uri=\"sip:2000@192.0.2.1\", response=\"0123456789abcdef\", nc=00000001\r\n" +
		"authorization: Basic YWNtZTpzM2NyZXQ=\r\n" +
		"Authorization: Digest username=\"acme\",\r\n  realm=\"switchboard\",\r\n\tresponse=\"fedcba9876543210\"\r\n" +
		"Content-Length: 111\r\n\r\n" +
		"v=0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32\r\n" +
		"a=ice-ufrag:F7gI\r\na=ice-pwd:x9cml/YzichV2+XlhiMu8g\r\n"
	got := sb.SIPMessage{Message: msg}.Redact(sb.TracePolicy{}).Message
	for _, gone := range []string{"0123456789abcdef", "nonce", "YWNtZTpzM2NyZXQ=", "WVNfX19zZW1jdGwg", "fedcba9876543210", "x9cml"} {
		if strings.Contains(got, gone) {
			t.Errorf("%q survived:\n%s", gone, got)
		}
	}
	for _, kept := range []string{"Proxy-Authorization: Digest username=\"acme\", <redacted>\r\n", "authorization: Basic <redacted>\r\n",
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:****************************************|2^20|1:32\r\n",
		"a=ice-ufrag:F7gI\r\na=ice-pwd:**********************\r\n"} {
		if !strings.Contains(got, kept) {
			t.Errorf("%q missing:\n%s", kept, got)
		}
	}
	if len(got[strings.Index(got, "\r\n\r\n"):]) != len(msg[strings.Index(msg, "\r\n\r\n"):]) {
		t.Error("the body's length changed: Content-Length no longer holds")
	}
}

// Redacting secrets never changes a message's line count nor its body's
// length, and leaves nothing to redact.
func FuzzRedactSecrets(f *testing.F) {
	f.Add("INVITE sip:a@b SIP/2.0\r\nProxy-Authorization: Digest username=\"u\", response=\"r\"\r\n\r\na=crypto:1 X inline:KEY|2^20\r\n")
	f.Add("Authorization: Basic x\r\n\r\nA=CRYPTO:2 Y inline:k1|1:4;inline:k2\r\n")
	f.Add("\r\n\r\ninline:")
	f.Add("INVITE sip:a@b SIP/2.0\r\n\r\na=ice-pwd:secretsecretsecret\r\nA=ICE-PWD:\r\n")
	f.Fuzz(func(t *testing.T, msg string) {
		got := sb.RedactSecrets(msg)
		if strings.Count(got, "\n") != strings.Count(msg, "\n") {
			t.Fatalf("lines changed:\n%q\n%q", msg, got)
		}
		if i := strings.Index(msg, "\r\n\r\n"); i >= 0 {
			if j := strings.Index(got, "\r\n\r\n"); j < 0 || len(got)-j != len(msg)-i {
				t.Fatalf("body length changed:\n%q\n%q", msg, got)
			}
		}
		if again := sb.RedactSecrets(got); again != got {
			t.Fatalf("redacting twice differs:\n%q\n%q", got, again)
		}
	})
}

// Redacting a message that holds no secret, which is nearly every
// captured one, copies nothing.
func TestRedactSecretsLeavesPlainMessagesAlone(t *testing.T) {
	msg := "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	if n := testing.AllocsPerRun(100, func() { sb.RedactSecrets(msg) }); n != 0 {
		t.Errorf("%v allocations redacting a message with no secret, want 0", n)
	}
	if got := sb.RedactSecrets("X: 1\r\nPROXY-AUTHORIZATION: Digest username=\"u\", response=\"r\"\r\n\r\n"); strings.Contains(got, "response") {
		t.Errorf("an upper-case header kept its credentials: %q", got)
	}
}

// BenchmarkRedact is an INVITE redacted by the strictest policy, as every
// message of a call whose tenant is not yet known is exported.
func BenchmarkRedact(b *testing.B) {
	m := sb.SIPMessage{Message: invite}
	p := sb.TracePolicy{DropBodies: true, MaskNumbers: true}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m.Redact(p)
	}
}

// Redacting copies a message once, and not at all when the policy
// changes nothing in it.
func TestRedactCopiesOnce(t *testing.T) {
	strict := sb.TracePolicy{DropBodies: true, MaskNumbers: true}
	plain := "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\nTo: <sip:2000@192.0.2.1>\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n"
	for _, c := range []struct {
		msg  string
		want float64
	}{{invite, 1}, {plain, 0}} {
		m := sb.SIPMessage{Message: c.msg}
		if n := testing.AllocsPerRun(100, func() { m.Redact(strict) }); n != c.want {
			t.Errorf("%v allocations redacting %q, want %v", n, c.msg[:20], c.want)
		}
	}
	if got := (sb.SIPMessage{Message: plain}).Redact(strict).Message; got != plain {
		t.Errorf("a message with nothing to redact changed:\n%s", got)
	}
	if n := testing.AllocsPerRun(100, func() { sb.MaskNumber("2000") }); n != 0 {
		t.Errorf("%v allocations masking a number too short to mask, want 0", n)
	}
}
