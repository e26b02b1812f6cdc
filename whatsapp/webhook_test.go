package whatsapp

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
)

const testSecret = "app-secret"

func sign(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func TestValidSignature(t *testing.T) {
	body := []byte(`{"object":"whatsapp_business_account"}`)
	good := sign(body, testSecret)
	for _, c := range []struct {
		name, header string
		body         []byte
		want         bool
	}{
		{"right", good, body, true},
		{"upper-case hex", "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), body, true},
		{"another secret", sign(body, "other"), body, false},
		{"another body", good, append([]byte(" "), body...), false},
		{"no prefix", strings.TrimPrefix(good, "sha256="), body, false},
		{"sha1", "sha1=" + strings.TrimPrefix(good, "sha256="), body, false},
		{"truncated", good[:len(good)-2], body, false},
		{"not hex", "sha256=zz", body, false},
		{"empty", "", body, false},
	} {
		if got := validSignature(c.header, c.body, testSecret); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// oneConnection is a directory of one connection.
type oneConnection struct{ conn sb.WhatsAppConnection }

func (d oneConnection) WhatsAppByID(_ context.Context, id sb.ID) (*sb.WhatsAppConnection, *sb.WhatsAppSecrets, error) {
	if id != d.conn.ID {
		return nil, nil, sb.Errorf(sb.ENOTFOUND, "WhatsApp connection not found")
	}
	c := d.conn
	h := sha256.Sum256([]byte("verify-me"))
	return &c, &sb.WhatsAppSecrets{AppSecret: testSecret, AccessToken: "token", VerifyHash: h[:]}, nil
}

func (d oneConnection) AuditPermissionRequest(context.Context, *sb.WhatsAppConnection) error {
	return nil
}

func (d oneConnection) TenantWhatsApp(ctx context.Context, tenantID sb.ID) (*sb.WhatsAppConnection, *sb.WhatsAppSecrets, error) {
	if tenantID != d.conn.TenantID {
		return nil, nil, sb.Errorf(sb.ENOTFOUND, "WhatsApp connection not found")
	}
	return d.WhatsAppByID(ctx, d.conn.ID)
}

// newTestService has a Graph API that refuses everything and peers that
// cannot be made: what a webhook sets in motion stops at once.
func newTestService(t testing.TB, dispatched *atomic.Int64) (*Service, sb.ID) {
	graph := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"code":100,"message":"no"}}`, http.StatusBadRequest)
	}))
	t.Cleanup(graph.Close)
	conn := sb.WhatsAppConnection{ID: sb.NewID(), TenantID: sb.NewID(), Name: "line", PhoneNumberID: "123", Number: "+15550001000", GraphURL: graph.URL}
	s := New(oneConnection{conn},
		func(context.Context, string) (Peer, string, error) {
			return nil, "", errors.New("no peers in this test")
		},
		func(context.Context) (OfferingPeer, string, error) {
			return nil, "", errors.New("no peers in this test")
		},
		func(*sb.InboundCall) { dispatched.Add(1) }, WithPrivateGraph())
	t.Cleanup(s.Close)
	return s, conn.ID
}

func TestHandshake(t *testing.T) {
	var dispatched atomic.Int64
	s, id := newTestService(t, &dispatched)
	for _, c := range []struct {
		query string
		code  int
	}{
		{"hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=42", http.StatusOK},
		{"hub.mode=subscribe&hub.verify_token=verify-you&hub.challenge=42", http.StatusForbidden},
		{"hub.mode=unsubscribe&hub.verify_token=verify-me&hub.challenge=42", http.StatusForbidden},
		{"hub.mode=subscribe&hub.verify_token=verify-me", http.StatusForbidden},
	} {
		w := httptest.NewRecorder()
		s.ServeWebhook(w, httptest.NewRequest(http.MethodGet, "/?"+c.query, nil), id)
		if w.Code != c.code || c.code == http.StatusOK && w.Body.String() != "42" {
			t.Errorf("%s: %d %q", c.query, w.Code, w.Body.String())
		}
	}
	w := httptest.NewRecorder()
	s.ServeWebhook(w, httptest.NewRequest(http.MethodGet, "/?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=42", nil), sb.NewID())
	if w.Code != http.StatusNotFound {
		t.Errorf("another connection's handshake: %d", w.Code)
	}
	if n := s.Counts()[resultHandshakeRefused]; n != 3 {
		t.Errorf("%d refused handshakes counted", n)
	}
}

// FuzzWebhook feeds signed bodies to the webhook: whatever they hold, the
// answer is 200 or 400, nothing panics, and no call is dispatched without
// a peer.
func FuzzWebhook(f *testing.F) {
	for _, seed := range []string{
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"calls","value":{"metadata":{"phone_number_id":"123"},` +
			`"calls":[{"id":"wacid.1","from":"4915112345678","event":"connect","direction":"USER_INITIATED","session":{"sdp_type":"offer","sdp":"v=0\r\n"}}]}}]}]}`,
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"calls","value":{"metadata":{"phone_number_id":"123"},` +
			`"calls":[{"id":"wacid.1","event":"terminate","status":"FAILED","errors":[{"code":131000}]}],"statuses":[{"id":"wacid.1","type":"call","status":"RINGING"}]}}]}]}`,
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"calls","value":{"metadata":{"phone_number_id":"123"},` +
			`"calls":[{"id":"wacid.2","event":"connect","session":{"sdp_type":"answer","sdp":""}}]}}]}]}`,
		`{"object":"page"}`,
		`[]`,
	} {
		f.Add([]byte(seed))
	}
	var dispatched atomic.Int64
	s, id := newTestService(f, &dispatched)
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
		r.Header.Set("X-Hub-Signature-256", sign(body, testSecret))
		w := httptest.NewRecorder()
		s.ServeWebhook(w, r, id)
		if w.Code != http.StatusOK && w.Code != http.StatusBadRequest && w.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d", w.Code)
		}
		if dispatched.Load() != 0 {
			t.Fatal("a call was dispatched without a peer")
		}
	})
}
