package switchboard

// Several instances share one PostgreSQL. Each publishes its operators'
// presence there (a snapshot per instance, with a heartbeat) and is woken
// by a NOTIFY when another instance has an operator free. A call that
// finds no operator free on the instance it arrived at is handed to an
// operator free on another one: the instance places a SIP call to it,
// carrying a hop token (HMAC-signed with the cluster secret) that names
// the call, the operator and the caller. The first instance keeps the
// caller's leg and relays media to the second, which holds the operator's
// WebRTC leg and adds its events to the same call record; the record
// itself is written by the first instance only.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// Presence is one operator's state as an instance publishes it.
type Presence struct {
	OperatorID ID
	TenantID   ID
	State      string // "available", "ringing", "busy", "away"
	IdleSince  time.Time
}

// RemoteOperator is an operator free on another instance, and where that
// instance takes SIP.
type RemoteOperator struct {
	OperatorID ID
	Instance   string
	SIPAddr    string // host:port
}

// Cluster is what an instance shares with the others through the
// database.
type Cluster interface {
	// Publish replaces this instance's presence snapshot and notifies the
	// others when one of its operators is free.
	Publish(ctx context.Context, ops []Presence) error
	// Candidates lists operators free on other live instances for the
	// tenant (members only, when members is not empty), idle longest
	// first, without those in skip.
	Candidates(ctx context.Context, tenantID ID, members []ID, skip []ID) ([]RemoteOperator, error)
	// Listen calls wake whenever another instance has an operator free,
	// until ctx ends.
	Listen(ctx context.Context, wake func()) error
}

// Hop is what an instance tells another when it hands it a call.
type Hop struct {
	CallID     ID        `json:"c"`
	TenantID   ID        `json:"t"`
	OperatorID ID        `json:"o"`
	From       string    `json:"f"` // the caller's number
	To         string    `json:"n"` // the number dialled
	Instance   string    `json:"i"` // the instance handing it over
	Expires    time.Time `json:"e"`
	// Nonce makes each token one of a kind: the receiving instance takes
	// a token once, and the INVITE's Call-ID is derived from it
	// (HopSIPCallID). SealHop sets it when empty.
	Nonce string `json:"k"`
}

// HopLifetime bounds how long a hop token is honoured: long enough for a
// slow INVITE, too short to be worth replaying.
const HopLifetime = 30 * time.Second

// HopHeader carries the hop token on the INVITE between instances.
const HopHeader = "X-Switchboard-Hop"

// SealHop signs h with the cluster secret.
func SealHop(secret []byte, h Hop) string {
	if h.Nonce == "" {
		h.Nonce = rand.Text()
	}
	body, _ := json.Marshal(h)
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(body) + "." + enc.EncodeToString(mac.Sum(nil))
}

// HopSIPCallID is the SIP Call-ID of the INVITE that carries token: a
// function of the signed token, so that the token is good for that INVITE
// alone.
func HopSIPCallID(token string) string {
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return "hop-" + hex.EncodeToString(sum[:16])
}

// OpenHop checks a hop token's signature and lifetime; it does not know
// whether the token was used before (the SIP side does).
func OpenHop(secret []byte, token string, now time.Time) (*Hop, error) {
	enc := base64.RawURLEncoding
	b, s, ok := strings.Cut(strings.TrimSpace(token), ".")
	body, err1 := enc.DecodeString(b)
	sig, err2 := enc.DecodeString(s)
	if !ok || err1 != nil || err2 != nil || len(secret) == 0 {
		return nil, Errorf(EUNAUTHORIZED, "malformed hop token")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, Errorf(EUNAUTHORIZED, "hop token not signed with the cluster secret")
	}
	var h Hop
	if err := json.Unmarshal(body, &h); err != nil {
		return nil, Errorf(EUNAUTHORIZED, "malformed hop token")
	}
	if !now.Before(h.Expires) || h.Expires.Sub(now) > 2*HopLifetime {
		return nil, Errorf(EUNAUTHORIZED, "hop token expired")
	}
	return &h, nil
}
