package switchboard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Channels a call can come in on or go out by, besides a trunk's SIP
// (which records none).
const (
	ChannelWhatsApp = "whatsapp"
)

// DefaultGraphURL is the WhatsApp Cloud API's base URL (Graph API, with its
// version) that a connection uses unless it names another.
const DefaultGraphURL = "https://graph.facebook.com/v21.0"

// WhatsAppNoPermission is the Graph API's error code for a call to a
// WhatsApp user who has not given the business permission to call them.
const WhatsAppNoPermission = 138006

// whatsAppCallIDPrefix begins every WhatsApp call ID.
const whatsAppCallIDPrefix = "wacid."

// MaskExternalRef is a call's external reference as a reader who sees
// numbers masked may see it. A WhatsApp call ID is the base64 of a
// protobuf that holds the user's and the business's numbers: it becomes
// its prefix and a short digest, which tells calls apart and holds no
// digit of either number (the ID's own random token makes the digest
// useless for guessing numbers). Other references, an integrator's own,
// are as they were set.
func MaskExternalRef(ref string) string {
	if !strings.HasPrefix(ref, whatsAppCallIDPrefix) {
		return ref
	}
	sum := sha256.Sum256([]byte(ref))
	return whatsAppCallIDPrefix + "…" + hex.EncodeToString(sum[:4])
}

// WhatsAppConnection is a tenant's WhatsApp business phone number in Graph
// API mode: WhatsApp users' calls to it arrive as webhooks, and operators
// call users through it. Its secrets are never read back.
type WhatsAppConnection struct {
	ID       ID     `json:"id"`
	TenantID ID     `json:"tenant_id"`
	Name     string `json:"name"`
	// PhoneNumberID is Meta's ID of the business phone number.
	PhoneNumberID string `json:"phone_number_id"`
	// Number is the business number itself (E.164): calls to it are
	// routed like calls to a trunk's number (its queue, if any).
	Number    string    `json:"number"`
	GraphURL  string    `json:"graph_url"`
	CreatedAt time.Time `json:"created_at"`
}

// WhatsAppSecrets are a connection's secrets: the app secret that signs
// Meta's webhooks (X-Hub-Signature-256), the access token our requests
// carry, and the SHA-256 of the verify token of the webhook subscription
// handshake (the token itself is not kept).
type WhatsAppSecrets struct {
	AppSecret   string
	AccessToken string
	VerifyHash  []byte
}

// WhatsAppAdmin is a tenant's admins' management of its WhatsApp
// connections; every change is audited, and no secret is returned but
// the verify token, once, when it is made.
type WhatsAppAdmin interface {
	// CreateWhatsApp stores the connection with its app secret and access
	// token (sealed) and returns the verify token to give Meta.
	CreateWhatsApp(ctx context.Context, c *WhatsAppConnection, appSecret, accessToken string) (verifyToken string, err error)
	FindWhatsApp(ctx context.Context) ([]*WhatsAppConnection, error)
	// DeleteWhatsApp returns ENOTFOUND if the tenant has no such
	// connection.
	DeleteWhatsApp(ctx context.Context, id ID) error
}

// WhatsAppDirectory finds connections for the webhook endpoint and for
// calls placed to WhatsApp users, with their secrets opened; the metadata
// store implements it.
type WhatsAppDirectory interface {
	// WhatsAppByID returns ENOTFOUND for no such connection.
	WhatsAppByID(ctx context.Context, id ID) (*WhatsAppConnection, *WhatsAppSecrets, error)
	// TenantWhatsApp is the tenant's connection calls to WhatsApp users
	// go out through (its first); ENOTFOUND if it has none.
	TenantWhatsApp(ctx context.Context, tenantID ID) (*WhatsAppConnection, *WhatsAppSecrets, error)
	// AuditPermissionRequest records, for the actor in ctx, a call
	// permission request about to go out through the connection
	// (whatsapp.permission_request); an error means it must not be sent.
	AuditPermissionRequest(ctx context.Context, conn *WhatsAppConnection) error
}

// MessengerError is a messenger platform's refusal of a request of ours:
// its HTTP status and its own error code.
type MessengerError struct {
	Channel string
	Status  int
	Code    int
	Message string
}

func (e *MessengerError) Error() string {
	return fmt.Sprintf("%s: %d, error %d: %s", e.Channel, e.Status, e.Code, e.Message)
}

// NoPermission reports whether the user has not allowed the business to
// call them.
func (e *MessengerError) NoPermission() bool {
	return e.Channel == ChannelWhatsApp && e.Code == WhatsAppNoPermission
}

// MessengerLeg is a call we place to a messenger user: an OutboundLeg
// whose reference is the platform's call ID, placed through one of the
// tenant's connections (which the record names as its trunk).
type MessengerLeg interface {
	OutboundLeg
	ExternalRef() string
	ConnectionID() ID
}

// MessengerDialer places calls to messenger users through a tenant's
// connection. An error from the platform is a *MessengerError.
type MessengerDialer interface {
	DialMessenger(ctx context.Context, tenantID ID, channel, number string) (MessengerLeg, error)
}

// DialTarget reads what an operator or an integration dials: a phone
// number, or "whatsapp:" and a WhatsApp user's number. It returns the
// channel ("" for a phone number through the trunks) and the number.
func DialTarget(s string) (channel, number string, err error) {
	if rest, ok := cutPrefixFold(strings.TrimSpace(s), ChannelWhatsApp+":"); ok {
		n, err := NormalizeNumber(rest)
		if err != nil {
			return "", "", err
		}
		if !strings.HasPrefix(n, "+") {
			n = "+" + n
		}
		return ChannelWhatsApp, n, nil
	}
	n, err := NormalizeNumber(s)
	return "", n, err
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
