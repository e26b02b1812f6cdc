package metadata

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// A browser caller's token works once, before it expires, only for its
// tenant's numbers, and only when whole.
func TestWebRTCTokenIsSingleUseAndShortLived(t *testing.T) {
	w := newGrantWorld(t, sb.SupportPolicy{MaxTTLSeconds: 3600})
	ctx := mustCtx(t)
	trunk := &sb.Trunk{TenantID: w.tenant.ID, Name: "widget", Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, Numbers: []string{"4000"}}
	if err := NewTrunkService(w.db).CreateTrunk(ctx, trunk, ""); err != nil {
		t.Fatal(err)
	}
	other := mustTenant(t, w.db, "Other")
	otherTrunk := &sb.Trunk{TenantID: other.ID, Name: "t", Allow: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, Numbers: []string{"4999"}}
	if err := NewTrunkService(w.db).CreateTrunk(ctx, otherTrunk, ""); err != nil {
		t.Fatal(err)
	}
	in := NewIngressService(w.db)
	issue := func(a *sb.Actor, tok sb.WebRTCToken) (string, error) {
		return in.IssueToken(w.as(t, a), &tok)
	}

	if _, err := issue(w.support, sb.WebRTCToken{Number: "4000", From: "web:1"}); sb.ErrorCode(err) != sb.EFORBIDDEN {
		t.Errorf("a support engineer issued a token: %v", err)
	}
	if _, err := issue(w.supervisor, sb.WebRTCToken{Number: "4999", From: "web:1"}); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("a token for another tenant's number: %v", err)
	}
	if _, err := issue(w.admin, sb.WebRTCToken{Number: "4000", From: "web:1", ExpiresAt: w.now.Add(time.Hour)}); sb.ErrorCode(err) != sb.EINVALID {
		t.Errorf("a token for an hour: %v", err)
	}

	secret, err := issue(w.supervisor, sb.WebRTCToken{Number: "4000", From: "web:chat-7", ExternalRef: "chat-7"})
	if err != nil || !strings.HasPrefix(secret, tokenPrefix) {
		t.Fatalf("issue: %q, %v", secret, err)
	}
	var stored []byte
	if err := w.db.pool.QueryRow(ctx, "SELECT hash FROM webrtc_tokens").Scan(&stored); err != nil || strings.Contains(string(stored), secret) {
		t.Fatalf("stored %x, %v: want the hash only", stored, err)
	}
	forged := secret[:len(secret)-1] + "x"
	if forged == secret {
		forged = secret[:len(secret)-1] + "y"
	}
	if _, _, err := in.RedeemToken(ctx, forged); sb.ErrorCode(err) != sb.EUNAUTHORIZED {
		t.Errorf("a forged token: %v", err)
	}
	tok, tr, err := in.RedeemToken(ctx, secret)
	if err != nil || tr.ID != trunk.ID || tok.TenantID != w.tenant.ID || tok.From != "web:chat-7" || tok.ExternalRef != "chat-7" ||
		!tok.ExpiresAt.Equal(w.now.Add(sb.DefaultTokenTTL)) {
		t.Fatalf("redeem: %+v %+v, %v", tok, tr, err)
	}
	if _, _, err := in.RedeemToken(ctx, secret); sb.ErrorCode(err) != sb.EUNAUTHORIZED {
		t.Errorf("a token used twice: %v", err)
	}

	late, err := issue(w.admin, sb.WebRTCToken{Number: "4000", From: "web:8", ExpiresAt: w.now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	w.now = w.now.Add(time.Minute)
	if _, _, err := in.RedeemToken(ctx, late); sb.ErrorCode(err) != sb.EUNAUTHORIZED {
		t.Errorf("a token at its expiry: %v", err)
	}
}
