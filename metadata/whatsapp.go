package metadata

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// WhatsAppStore keeps tenants' WhatsApp connections (Graph API mode). The
// app secret and access token are sealed with the keyring, bound to the
// connection's ID (`keys rotate` re-seals them); the webhook's verify
// token is kept as its SHA-256 only. Without a sealer no connection can
// be made.
type WhatsAppStore struct {
	db     *DB
	sealer Sealer
}

var (
	_ sb.WhatsAppAdmin     = (*WhatsAppStore)(nil)
	_ sb.WhatsAppDirectory = (*WhatsAppStore)(nil)
)

// NewWhatsAppStore returns a WhatsAppStore on db; sealer may be nil.
func NewWhatsAppStore(db *DB, sealer Sealer) *WhatsAppStore {
	return &WhatsAppStore{db: db, sealer: sealer}
}

var phoneNumberID = regexp.MustCompile(`^[0-9]{1,30}$`)

// validWhatsApp checks what an admin gives for a connection and fills in
// the defaults.
func validWhatsApp(c *sb.WhatsAppConnection, appSecret, accessToken string) error {
	c.Name = strings.TrimSpace(c.Name)
	if c.Name == "" || len(c.Name) > 100 {
		return sb.Errorf(sb.EINVALID, "name: 1 to 100 characters")
	}
	if !phoneNumberID.MatchString(c.PhoneNumberID) {
		return sb.Errorf(sb.EINVALID, "phone_number_id: Meta's ID of the business phone number, digits only")
	}
	_, n, err := sb.DialTarget(sb.ChannelWhatsApp + ":" + c.Number)
	if err != nil {
		return sb.Errorf(sb.EINVALID, "number: the business phone number in E.164 (+ and digits)")
	}
	c.Number = n
	if c.GraphURL == "" {
		c.GraphURL = sb.DefaultGraphURL
	}
	c.GraphURL = strings.TrimRight(c.GraphURL, "/")
	if u, err := url.Parse(c.GraphURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.RawQuery != "" || u.User != nil || len(c.GraphURL) > 300 {
		return sb.Errorf(sb.EINVALID, "graph_url: an http(s) URL of at most 300 characters, without query or credentials")
	}
	if appSecret == "" || len(appSecret) > 200 || accessToken == "" || len(accessToken) > 2000 {
		return sb.Errorf(sb.EINVALID, "app_secret and access_token: both required (at most 200 and 2000 characters)")
	}
	return nil
}

// VerifyHash is what is kept of a webhook verify token.
func VerifyHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// CreateWhatsApp stores a connection for a tenant's admin, audited, and
// returns the verify token for Meta's webhook subscription, shown only
// now.
func (s *WhatsAppStore) CreateWhatsApp(ctx context.Context, c *sb.WhatsAppConnection, appSecret, accessToken string) (string, error) {
	a, err := staff(ctx, "connecting WhatsApp", sb.RoleAdmin)
	if err != nil {
		return "", err
	}
	if err := validWhatsApp(c, appSecret, accessToken); err != nil {
		return "", err
	}
	if s.sealer == nil {
		return "", sb.Errorf(sb.EUNAVAILABLE, "WhatsApp connections need a keyring to keep their secrets (SWITCHBOARD_KEYRING)")
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("metadata: verify token: %w", err)
	}
	verify := "sbv_" + base64.RawURLEncoding.EncodeToString(raw)
	c.ID, c.TenantID, c.CreatedAt = sb.NewID(), a.TenantID, s.db.now()
	sealedSecret, err := s.sealer.Seal([]byte(appSecret), c.ID[:])
	if err != nil {
		return "", fmt.Errorf("metadata: seal app secret: %w", err)
	}
	sealedToken, err := s.sealer.Seal([]byte(accessToken), c.ID[:])
	if err != nil {
		return "", fmt.Errorf("metadata: seal access token: %w", err)
	}
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO whatsapp_connections (id, tenant_id, name, phone_number_id, number, graph_url,
			app_secret, access_token, verify_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			c.ID, c.TenantID, c.Name, c.PhoneNumberID, c.Number, c.GraphURL, sealedSecret, sealedToken, VerifyHash(verify), c.CreatedAt); err != nil {
			return mapError(err, "WhatsApp connection")
		}
		e := actorEntry(a, "whatsapp.create", "whatsapp_connection", c.ID)
		e.Detail = "phone_number_id " + c.PhoneNumberID
		return appendAudit(ctx, tx, c.CreatedAt, e)
	})
	if err != nil {
		return "", err
	}
	return verify, nil
}

// AuditPermissionRequest records a call permission request about to go
// out through the tenant's connection: who asked, through which
// connection; not the WhatsApp user's number, as no audit entry carries a
// number (the log outlives an erasure). A request whose entry cannot be
// written is not sent.
func (s *WhatsAppStore) AuditPermissionRequest(ctx context.Context, conn *sb.WhatsAppConnection) error {
	a, err := actor(ctx)
	if err != nil {
		return err
	}
	if a.TenantID != conn.TenantID {
		return sb.Errorf(sb.ENOTFOUND, "WhatsApp connection not found")
	}
	e := actorEntry(a, "whatsapp.permission_request", "whatsapp_connection", conn.ID)
	e.Detail = "a call permission request to a WhatsApp user (the number is not kept here)"
	return s.db.inTx(ctx, func(tx pgx.Tx) error { return appendAudit(ctx, tx, s.db.now(), e) })
}

const whatsAppColumns = "id, tenant_id, name, phone_number_id, number, graph_url, created_at"

func scanWhatsApp(row pgx.Row, more ...any) (*sb.WhatsAppConnection, error) {
	c := &sb.WhatsAppConnection{}
	err := row.Scan(append([]any{&c.ID, &c.TenantID, &c.Name, &c.PhoneNumberID, &c.Number, &c.GraphURL, &c.CreatedAt}, more...)...)
	return c, err
}

// FindWhatsApp lists the tenant's connections, without secrets, for its
// admins.
func (s *WhatsAppStore) FindWhatsApp(ctx context.Context) ([]*sb.WhatsAppConnection, error) {
	a, err := staff(ctx, "listing WhatsApp connections", sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.pool.Query(ctx, "SELECT "+whatsAppColumns+" FROM whatsapp_connections WHERE tenant_id = $1 ORDER BY id", a.TenantID)
	if err != nil {
		return nil, fmt.Errorf("metadata: WhatsApp connections: %w", err)
	}
	defer rows.Close()
	out := []*sb.WhatsAppConnection{}
	for rows.Next() {
		c, err := scanWhatsApp(rows)
		if err != nil {
			return nil, fmt.Errorf("metadata: WhatsApp connections: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// DeleteWhatsApp removes a connection, for an admin, audited; its calls'
// records (which name it by ID, as their trunk) keep its name. Calls in
// progress through it go on; the next webhook for it is not found.
func (s *WhatsAppStore) DeleteWhatsApp(ctx context.Context, id sb.ID) error {
	a, err := staff(ctx, "deleting a WhatsApp connection", sb.RoleAdmin)
	if err != nil {
		return err
	}
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		var name string
		if err := tx.QueryRow(ctx, "DELETE FROM whatsapp_connections WHERE tenant_id = $1 AND id = $2 RETURNING name", a.TenantID, id).Scan(&name); err != nil {
			return mapError(err, "WhatsApp connection")
		}
		if _, err := tx.Exec(ctx, "UPDATE calls SET trunk_name = $3 WHERE tenant_id = $1 AND trunk_id = $2", a.TenantID, id, name); err != nil {
			return fmt.Errorf("metadata: delete WhatsApp connection: %w", err)
		}
		return appendAudit(ctx, tx, s.db.now(), actorEntry(a, "whatsapp.delete", "whatsapp_connection", id))
	})
}

// WhatsAppByID returns a connection with its secrets opened, for the
// webhook endpoint (no actor: the signature is what is checked).
func (s *WhatsAppStore) WhatsAppByID(ctx context.Context, id sb.ID) (*sb.WhatsAppConnection, *sb.WhatsAppSecrets, error) {
	return s.open(ctx, "id = $1", id)
}

// TenantWhatsApp returns the tenant's first connection with its secrets
// opened, for calls placed to WhatsApp users.
func (s *WhatsAppStore) TenantWhatsApp(ctx context.Context, tenantID sb.ID) (*sb.WhatsAppConnection, *sb.WhatsAppSecrets, error) {
	return s.open(ctx, "tenant_id = $1", tenantID)
}

func (s *WhatsAppStore) open(ctx context.Context, where string, arg sb.ID) (*sb.WhatsAppConnection, *sb.WhatsAppSecrets, error) {
	var secret, token, verify []byte
	c, err := scanWhatsApp(s.db.pool.QueryRow(ctx, "SELECT "+whatsAppColumns+", app_secret, access_token, verify_hash FROM whatsapp_connections WHERE "+
		where+" ORDER BY id LIMIT 1", arg), &secret, &token, &verify)
	if err != nil {
		return nil, nil, mapError(err, "WhatsApp connection")
	}
	if s.sealer == nil {
		return nil, nil, sb.Errorf(sb.EUNAVAILABLE, "WhatsApp connections need the keyring (SWITCHBOARD_KEYRING)")
	}
	plainSecret, err := s.sealer.Open(secret, c.ID[:])
	if err != nil {
		return nil, nil, fmt.Errorf("metadata: open WhatsApp app secret: %w", err)
	}
	plainToken, err := s.sealer.Open(token, c.ID[:])
	if err != nil {
		return nil, nil, fmt.Errorf("metadata: open WhatsApp access token: %w", err)
	}
	return c, &sb.WhatsAppSecrets{AppSecret: string(plainSecret), AccessToken: string(plainToken), VerifyHash: verify}, nil
}
