package switchboard

import (
	"context"
	"time"
)

// Browser callers: a website's "call us" widget or a messenger platform
// brings a call in over WebRTC (WHIP: an SDP offer posted over HTTP)
// instead of SIP. The tenant's backend issues a short-lived, single-use
// token for one of the tenant's numbers; the visitor's browser presents it
// with its offer, and the call is routed like a call to that number from
// the number's trunk.

// Ingress token lifetimes: short by default, because a token is a
// bearer's right to ring the tenant's operators.
const (
	DefaultTokenTTL = 2 * time.Minute
	MaxTokenTTL     = 30 * time.Minute
)

// WebRTCToken is a visitor's permission to call one of a tenant's numbers
// once from a browser.
type WebRTCToken struct {
	ID       ID     `json:"id"`
	TenantID ID     `json:"tenant_id"`
	TrunkID  ID     `json:"trunk_id"`
	Number   string `json:"number"` // the tenant's number the call goes to
	// From names the visitor on the call record, e.g. "web:chat-4711"; it
	// is what a trunk's caller number is for a SIP call.
	From string `json:"from"`
	// ExternalRef is set on the call: a chat, messenger user or CRM ID.
	ExternalRef string    `json:"external_ref,omitempty"`
	ExpiresAt   time.Time `json:"expires_at"`
	CreatedAt   time.Time `json:"created_at"`
}

// IngressService issues and redeems browser callers' tokens.
type IngressService interface {
	// IssueToken stores t for the actor's tenant (supervisors and admins,
	// people or API keys) and returns its secret, which is never
	// available again. The number must be one of the tenant's (ENOTFOUND);
	// the lifetime is t.ExpiresAt, at most MaxTokenTTL ahead.
	IssueToken(ctx context.Context, t *WebRTCToken) (secret string, err error)
	// RedeemToken uses the token whose secret this is and returns it with
	// the trunk its number belongs to. An unknown, used or expired token is
	// EUNAUTHORIZED, with nothing said about which.
	RedeemToken(ctx context.Context, secret string) (*WebRTCToken, *Trunk, error)
	// RestoreToken makes a redeemed token usable again while it is valid,
	// for a visitor whose call nobody answered to try again; it reports
	// whether it did (false for an expired or unknown token).
	RestoreToken(ctx context.Context, id ID) (bool, error)
}
