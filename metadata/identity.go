package metadata

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/argon2"

	sb "github.com/switchboard-voice/switchboard"
)

// TenantService stores tenants.
type TenantService struct{ db *DB }

var _ sb.TenantService = (*TenantService)(nil)

// NewTenantService returns a TenantService on db.
func NewTenantService(db *DB) *TenantService { return &TenantService{db: db} }

// CreateTenant stores t, setting its ID and creation time when zero.
func (s *TenantService) CreateTenant(ctx context.Context, t *sb.Tenant) error {
	t.Name = strings.TrimSpace(t.Name)
	if t.Name == "" {
		return sb.Errorf(sb.EINVALID, "a tenant needs a name")
	}
	if t.ID == (sb.ID{}) {
		t.ID = sb.NewID()
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.db.now()
	}
	if t.RecordingPolicy == "" {
		t.RecordingPolicy = sb.RecordNever
	}
	if _, err := sb.ParseRecordingPolicy(string(t.RecordingPolicy)); err != nil {
		return err
	}
	if t.Support.MaxTTLSeconds == 0 {
		t.Support.MaxTTLSeconds = 3600
	}
	if t.Trace.RetentionDays == 0 {
		t.Trace.RetentionDays = 30
	}
	_, err := s.db.pool.Exec(ctx, `INSERT INTO tenants (id, name, recording_policy, support_access, grant_approval,
		grant_max_ttl_seconds, grant_download, trace_retention_days, trace_drop_bodies, trace_mask_numbers, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		t.ID, t.Name, t.RecordingPolicy, t.Support.Access, t.Support.Approval, t.Support.MaxTTLSeconds, t.Support.Download,
		t.Trace.RetentionDays, t.Trace.DropBodies, t.Trace.MaskNumbers, t.CreatedAt)
	return mapError(err, "tenant")
}

// SetRecordingPolicy changes the tenant's recording policy.
func (s *TenantService) SetRecordingPolicy(ctx context.Context, tenantID sb.ID, p sb.RecordingPolicy) error {
	if _, err := sb.ParseRecordingPolicy(string(p)); err != nil {
		return err
	}
	tag, err := s.db.pool.Exec(ctx, "UPDATE tenants SET recording_policy = $2 WHERE id = $1", tenantID, p)
	if err != nil {
		return mapError(err, "tenant")
	}
	if tag.RowsAffected() == 0 {
		return sb.Errorf(sb.ENOTFOUND, "tenant not found")
	}
	return nil
}

// FindTenantByID returns ENOTFOUND if there is no such tenant.
func (s *TenantService) FindTenantByID(ctx context.Context, id sb.ID) (*sb.Tenant, error) {
	t := &sb.Tenant{}
	var targets []string
	err := s.db.pool.QueryRow(ctx, `SELECT id, name, recording_policy, support_access, grant_approval, grant_max_ttl_seconds,
		grant_download, trace_retention_days, trace_drop_bodies, trace_mask_numbers,
		call_retention_days, quality_retention_days, mask_operator_numbers, service_desk, dial_targets, created_at FROM tenants WHERE id = $1`, id).
		Scan(&t.ID, &t.Name, &t.RecordingPolicy, &t.Support.Access, &t.Support.Approval, &t.Support.MaxTTLSeconds, &t.Support.Download,
			&t.Trace.RetentionDays, &t.Trace.DropBodies, &t.Trace.MaskNumbers,
			&t.Privacy.CallRetentionDays, &t.Privacy.QualityRetentionDays, &t.Privacy.MaskOperatorNumbers, &t.ServiceDesk, &targets, &t.CreatedAt)
	if err != nil {
		return nil, mapError(err, "tenant")
	}
	t.DialTargets = targets
	return t, nil
}

// SetDialTargets replaces where the tenant's transfers and forwards to SIP
// URIs may go. It runs as the system (provisioning).
func (s *TenantService) SetDialTargets(ctx context.Context, tenantID sb.ID, targets []string) error {
	d, err := sb.ParseDialTargets(targets)
	if err != nil {
		return err
	}
	tag, err := s.db.pool.Exec(ctx, "UPDATE tenants SET dial_targets = $2 WHERE id = $1", tenantID, []string(d))
	if err != nil {
		return mapError(err, "tenant")
	}
	if tag.RowsAffected() == 0 {
		return sb.Errorf(sb.ENOTFOUND, "tenant not found")
	}
	return nil
}

// DialTargets is where the tenant's transfers and forwards to SIP URIs may
// go, for call control.
func (s *TenantService) DialTargets(ctx context.Context, tenantID sb.ID) (sb.DialTargets, error) {
	var d []string
	err := s.db.pool.QueryRow(ctx, "SELECT dial_targets FROM tenants WHERE id = $1", tenantID).Scan(&d)
	if err != nil {
		return nil, mapError(err, "tenant")
	}
	return sb.DialTargets(d), nil
}

var _ sb.DialPolicy = (*TenantService)(nil)

// SetServiceDesk makes the tenant the service's own support desk, or not.
// Only the service's operator calls it (the CLI): no API reaches it.
func (s *TenantService) SetServiceDesk(ctx context.Context, tenantID sb.ID, desk bool) error {
	tag, err := s.db.pool.Exec(ctx, "UPDATE tenants SET service_desk = $2 WHERE id = $1", tenantID, desk)
	if err != nil {
		return mapError(err, "tenant")
	}
	if tag.RowsAffected() == 0 {
		return sb.Errorf(sb.ENOTFOUND, "tenant not found")
	}
	return nil
}

// SetSupportPolicy changes the tenant's rule for support engineers'
// access. It runs as the system (provisioning).
func (s *TenantService) SetSupportPolicy(ctx context.Context, tenantID sb.ID, p sb.SupportPolicy) error {
	if p.MaxTTLSeconds < 60 || p.MaxTTLSeconds > 7*24*3600 {
		return sb.Errorf(sb.EINVALID, "the longest grant must be from 1 minute to 7 days")
	}
	tag, err := s.db.pool.Exec(ctx, `UPDATE tenants SET support_access = $2, grant_approval = $3, grant_max_ttl_seconds = $4,
		grant_download = $5 WHERE id = $1`, tenantID, p.Access, p.Approval, p.MaxTTLSeconds, p.Download)
	if err != nil {
		return mapError(err, "tenant")
	}
	if tag.RowsAffected() == 0 {
		return sb.Errorf(sb.ENOTFOUND, "tenant not found")
	}
	return nil
}

// Password hashing: argon2id in the PHC string format, with the OWASP
// Password Storage Cheat Sheet's configuration of 7 MiB and five passes
// (one lane), which it rates as strong as its 19 MiB with two: the
// hashes a burst of logins runs at once cost the process less than half
// the memory for the same work. Hashes stored with other parameters are
// checked with their own.
const (
	argonMemory  = 7 * 1024
	argonTime    = 5
	argonThreads = 1
	argonKeyLen  = 32
	minPassword  = 8
)

func hashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("metadata: salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// checkPassword reports whether password matches the PHC string encoded.
func checkPassword(encoded, password string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked against when a login names no user, so that a
// missing user costs as much time as a wrong password.
var dummyHash = func() string {
	h, err := hashPassword("not a real password")
	if err != nil {
		return ""
	}
	return h
}()

// hashSlots bounds how many argon2id hashes run at once in the process:
// each takes its memory parameter (7 MiB) for as long as it runs, so a
// burst of logins would otherwise cost memory without bound. A hash keeps
// one CPU busy: more at once than the process has CPUs would not end the
// burst sooner, only hold more memory.
var hashSlots = make(chan struct{}, min(runtime.GOMAXPROCS(0), 4))

func withHashSlot[T any](ctx context.Context, fn func() T) (T, error) {
	select {
	case hashSlots <- struct{}{}:
		defer func() { <-hashSlots }()
		return fn(), nil
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// UserService stores people and checks their logins.
type UserService struct{ db *DB }

var _ sb.UserService = (*UserService)(nil)

// NewUserService returns a UserService on db.
func NewUserService(db *DB) *UserService { return &UserService{db: db} }

// CreateUser stores u with an argon2id hash of password.
func (s *UserService) CreateUser(ctx context.Context, u *sb.User, password string) error {
	u.Email = strings.ToLower(strings.TrimSpace(u.Email))
	if i := strings.IndexByte(u.Email, '@'); i <= 0 || i == len(u.Email)-1 {
		return sb.Errorf(sb.EINVALID, "%q is not an email address", u.Email)
	}
	if _, err := sb.ParseRole(string(u.Role)); err != nil {
		return err
	}
	hash, err := hashInSlot(ctx, password)
	if err != nil {
		return err
	}
	if u.ID == (sb.ID{}) {
		u.ID = sb.NewID()
	}
	u.PasswordHash, u.CreatedAt = hash, s.db.now()
	_, err = s.db.pool.Exec(ctx, `INSERT INTO users (id, tenant_id, email, name, role, password_hash, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, u.ID, u.TenantID, u.Email, u.Name, u.Role, u.PasswordHash, u.CreatedAt)
	return mapError(err, "user")
}

const userColumns = "id, tenant_id, email, name, role, password_hash, created_at, disabled_at IS NOT NULL"

func scanUser(row pgx.Row) (*sb.User, error) {
	u := &sb.User{}
	err := row.Scan(&u.ID, &u.TenantID, &u.Email, &u.Name, &u.Role, &u.PasswordHash, &u.CreatedAt, &u.Disabled)
	return u, err
}

// Authenticate returns the user with that email and password, or
// EUNAUTHORIZED (no such user, or a wrong password: the same password
// work either way). A disabled user with the right password gets
// EFORBIDDEN: that it is disabled is said only to whoever knows the
// password.
func (s *UserService) Authenticate(ctx context.Context, email, password string) (*sb.User, error) {
	u, err := scanUser(s.db.pool.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE email = $1",
		strings.ToLower(strings.TrimSpace(email))))
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("metadata: authenticate: %w", err)
	}
	stored := dummyHash // a missing user costs as much time as a wrong password
	if err == nil {
		stored = u.PasswordHash
	}
	ok, werr := withHashSlot(ctx, func() bool { return checkPassword(stored, password) })
	if werr != nil {
		return nil, werr
	}
	if err != nil || !ok {
		return nil, sb.Errorf(sb.EUNAUTHORIZED, "invalid email or password")
	}
	if u.Disabled {
		// Said only to whoever knows the password.
		return nil, sb.Errorf(sb.EFORBIDDEN, "this account is disabled")
	}
	if !strings.HasPrefix(stored, hashPrefix) {
		s.rehash(ctx, u, password)
	}
	return u, nil
}

// hashPrefix starts every hash made with today's parameters.
var hashPrefix = fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$", argon2.Version, argonMemory, argonTime, argonThreads)

// rehash stores u's password hashed with today's parameters, once it was
// checked against a hash made with others: a login then costs what every
// other costs, in memory and in time (a missing user's is measured
// against today's). Best effort: the login stands if it fails.
func (s *UserService) rehash(ctx context.Context, u *sb.User, password string) {
	h, err := withHashSlot(ctx, func() hashResult {
		h, err := hashPassword(password)
		return hashResult{h, err}
	})
	if err != nil || h.err != nil {
		return
	}
	// Only over the hash just checked: a password changed meanwhile wins.
	if _, err := s.db.pool.Exec(ctx, "UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3", h.hash, u.ID, u.PasswordHash); err == nil {
		u.PasswordHash = h.hash
	}
}

type hashResult struct {
	hash string
	err  error
}

// FindUserByID returns the user in the actor's tenant, or ENOTFOUND.
func (s *UserService) FindUserByID(ctx context.Context, id sb.ID) (*sb.User, error) {
	a, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	tenant := a.TenantID
	if id == a.UserID && visiting(a) {
		tenant = a.HomeTenantID // a visiting support engineer looking at themselves
	}
	u, err := scanUser(s.db.pool.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE tenant_id = $1 AND id = $2", tenant, id))
	if err != nil {
		return nil, mapError(err, "user")
	}
	return u, nil
}

// newSecret returns a random 256-bit secret, URL-safe, and its SHA-256.
func newSecret(prefix string) (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("metadata: random: %w", err)
	}
	secret := prefix + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(secret))
	return secret, sum[:], nil
}

func hashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// APIKeyService stores API keys as hashes.
type APIKeyService struct{ db *DB }

var _ sb.APIKeyService = (*APIKeyService)(nil)

// NewAPIKeyService returns an APIKeyService on db.
func NewAPIKeyService(db *DB) *APIKeyService { return &APIKeyService{db: db} }

const apiKeyPrefix = "sbk_"

// CreateAPIKey stores a new key and returns it with its secret.
func (s *APIKeyService) CreateAPIKey(ctx context.Context, tenantID sb.ID, role sb.Role) (*sb.APIKey, string, error) {
	if _, err := sb.ParseRole(string(role)); err != nil {
		return nil, "", err
	}
	secret, hash, err := newSecret(apiKeyPrefix)
	if err != nil {
		return nil, "", err
	}
	k := &sb.APIKey{ID: sb.NewID(), TenantID: tenantID, Role: role, Prefix: secret[:12], Hash: hash, CreatedAt: s.db.now()}
	_, err = s.db.pool.Exec(ctx, "INSERT INTO api_keys (id, tenant_id, role, prefix, hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
		k.ID, k.TenantID, k.Role, k.Prefix, k.Hash, k.CreatedAt)
	if err != nil {
		return nil, "", mapError(err, "api key")
	}
	return k, secret, nil
}

// SessionService stores browser logins as token hashes.
type SessionService struct{ db *DB }

var _ sb.SessionService = (*SessionService)(nil)

// NewSessionService returns a SessionService on db.
func NewSessionService(db *DB) *SessionService { return &SessionService{db: db} }

// CreateSession starts a session for u lasting ttl.
func (s *SessionService) CreateSession(ctx context.Context, u *sb.User, ttl time.Duration) (string, *sb.Session, error) {
	token, hash, err := newSecret("")
	if err != nil {
		return "", nil, err
	}
	now := s.db.now()
	sess := &sb.Session{UserID: u.ID, TenantID: u.TenantID, Role: u.Role, ExpiresAt: now.Add(ttl)}
	_, err = s.db.pool.Exec(ctx, `INSERT INTO sessions (token_hash, user_id, tenant_id, role, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, hash, sess.UserID, sess.TenantID, sess.Role, now, sess.ExpiresAt)
	if err != nil {
		return "", nil, mapError(err, "user")
	}
	return token, sess, nil
}

// FindSession returns the live session for token, or EUNAUTHORIZED.
func (s *SessionService) FindSession(ctx context.Context, token string) (*sb.Session, error) {
	if token == "" || len(token) > 128 {
		return nil, sb.Errorf(sb.EUNAUTHORIZED, "not logged in")
	}
	sess := &sb.Session{}
	// A disabling deletes the person's sessions; the join also refuses one
	// a login in progress made meanwhile.
	err := s.db.pool.QueryRow(ctx, `SELECT s.user_id, s.tenant_id, s.role, s.expires_at FROM sessions s
		JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id AND u.disabled_at IS NULL
		WHERE s.token_hash = $1 AND s.expires_at > $2`,
		hashSecret(token), s.db.now()).Scan(&sess.UserID, &sess.TenantID, &sess.Role, &sess.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sb.Errorf(sb.EUNAUTHORIZED, "not logged in or session expired")
	} else if err != nil {
		return nil, fmt.Errorf("metadata: session: %w", err)
	}
	return sess, nil
}

// DeleteSession ends the session.
func (s *SessionService) DeleteSession(ctx context.Context, token string) error {
	if _, err := s.db.pool.Exec(ctx, "DELETE FROM sessions WHERE token_hash = $1", hashSecret(token)); err != nil {
		return fmt.Errorf("metadata: delete session: %w", err)
	}
	return nil
}

// TrunkService stores trunks and recognises them for the SIP side.
// With a sealer, digest HA1s are sealed at rest: an HA1 is all a digest
// client needs to pass as the trunk, so a database dump must not hold it.
type TrunkService struct {
	db     *DB
	sealer Sealer
}

var (
	_ sb.TrunkService   = (*TrunkService)(nil)
	_ sb.TrunkDirectory = (*TrunkService)(nil)
)

// NewTrunkService returns a TrunkService on db.
func NewTrunkService(db *DB) *TrunkService { return &TrunkService{db: db} }

// WithSealer returns the service sealing the HA1s of the trunks it
// creates, and opening sealed ones. HA1s stored before are read as they
// are.
func (s *TrunkService) WithSealer(sealer Sealer) *TrunkService {
	return &TrunkService{db: s.db, sealer: sealer}
}

// sealedPrefix marks a sealed HA1 in digest_ha1.
const sealedPrefix = "sealed:"

func (s *TrunkService) sealHA1(t *sb.Trunk) (string, error) {
	if s.sealer == nil {
		return t.DigestHA1, nil
	}
	b, err := s.sealer.Seal([]byte(t.DigestHA1), t.ID[:])
	if err != nil {
		return "", fmt.Errorf("metadata: seal digest HA1: %w", err)
	}
	return sealedPrefix + base64.StdEncoding.EncodeToString(b), nil
}

func (s *TrunkService) openHA1(t *sb.Trunk) error {
	rest, ok := strings.CutPrefix(t.DigestHA1, sealedPrefix)
	if !ok {
		return nil
	}
	if s.sealer == nil {
		t.DigestHA1 = "" // unusable here: nothing verifies against it
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(rest)
	if err == nil {
		b, err = s.sealer.Open(b, t.ID[:])
	}
	if err != nil {
		return fmt.Errorf("metadata: open trunk %s's digest HA1: %w", t.ID, err)
	}
	t.DigestHA1 = string(b)
	return nil
}

var numberRE = regexp.MustCompile(`^\+?[0-9]{1,20}$`)

// validTrunk checks a trunk as it is to be stored, trimming its name;
// password says whether digest credentials come with a password.
func validTrunk(t *sb.Trunk, password bool) error {
	t.Name = strings.TrimSpace(t.Name)
	switch {
	case t.Name == "":
		return sb.Errorf(sb.EINVALID, "a trunk needs a name")
	case (t.Username == "") == password:
		return sb.Errorf(sb.EINVALID, "digest authentication needs both a username and a password")
	case len(t.Allow) == 0 && t.Username == "":
		return sb.Errorf(sb.EINVALID, "a trunk needs allowed source addresses, digest credentials, or both")
	case len(t.Numbers) == 0:
		return sb.Errorf(sb.EINVALID, "a trunk needs at least one number")
	}
	for _, n := range t.Numbers {
		if !numberRE.MatchString(n) {
			return sb.Errorf(sb.EINVALID, "number %q must be digits, optionally with a leading +", n)
		}
	}
	return nil
}

// DigestHA1 returns MD5(username:realm:password) in hex, RFC 2617's HA1.
func DigestHA1(username, password string) string {
	sum := md5.Sum([]byte(username + ":" + sb.DigestRealm + ":" + password))
	return hex.EncodeToString(sum[:])
}

// CreateTrunk stores t with its numbers.
func (s *TrunkService) CreateTrunk(ctx context.Context, t *sb.Trunk, password string) error {
	if err := validTrunk(t, password != ""); err != nil {
		return err
	}
	if t.ID == (sb.ID{}) {
		t.ID = sb.NewID()
	}
	var username, ha1 *string
	if t.Username != "" {
		t.DigestHA1 = DigestHA1(t.Username, password)
		stored, err := s.sealHA1(t)
		if err != nil {
			return err
		}
		username, ha1 = &t.Username, &stored
	}
	allow := make([]netip.Prefix, len(t.Allow))
	for i, p := range t.Allow {
		allow[i] = p.Masked()
	}
	t.Allow = allow
	t.CreatedAt = s.db.now()
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO trunks (id, tenant_id, name, allow, username, digest_ha1, recording_consent, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, t.ID, t.TenantID, t.Name, t.Allow, username, ha1, t.RecordingConsent, t.CreatedAt); err != nil {
			return mapError(err, "trunk")
		}
		for _, n := range t.Numbers {
			if _, err := tx.Exec(ctx, "INSERT INTO trunk_numbers (number, trunk_id, tenant_id) VALUES ($1, $2, $3)", n, t.ID, t.TenantID); err != nil {
				return mapError(err, "trunk")
			}
		}
		return nil
	})
}

const trunkSelect = `SELECT t.id, t.tenant_id, t.name, t.allow, coalesce(t.username, ''), coalesce(t.digest_ha1, ''), t.recording_consent, t.created_at,
	coalesce((SELECT array_agg(n.number ORDER BY n.number) FROM trunk_numbers n WHERE n.tenant_id = t.tenant_id AND n.trunk_id = t.id), '{}'),
	x.trace_retention_days, x.trace_drop_bodies, x.trace_mask_numbers
	FROM trunks t JOIN tenants x ON x.id = t.tenant_id `

func (s *TrunkService) query(ctx context.Context, where string, args ...any) ([]*sb.Trunk, error) {
	rows, err := s.db.pool.Query(ctx, trunkSelect+where, args...)
	if err != nil {
		return nil, fmt.Errorf("metadata: trunks: %w", err)
	}
	defer rows.Close()
	var out []*sb.Trunk
	for rows.Next() {
		t := &sb.Trunk{}
		if err := rows.Scan(&t.ID, &t.TenantID, &t.Name, &t.Allow, &t.Username, &t.DigestHA1, &t.RecordingConsent, &t.CreatedAt, &t.Numbers,
			&t.Trace.RetentionDays, &t.Trace.DropBodies, &t.Trace.MaskNumbers); err != nil {
			return nil, fmt.Errorf("metadata: trunks: %w", err)
		}
		if err := s.openHA1(t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("metadata: trunks: %w", err)
	}
	return out, nil
}

// TrunksForSource returns the trunks whose allowlist contains addr.
func (s *TrunkService) TrunksForSource(ctx context.Context, addr netip.Addr) ([]*sb.Trunk, error) {
	return s.query(ctx, "WHERE $1::inet <<= ANY (t.allow) ORDER BY t.created_at", addr.Unmap())
}

// TrunkByUsername returns the trunk with that digest username, or
// ENOTFOUND.
func (s *TrunkService) TrunkByUsername(ctx context.Context, username string) (*sb.Trunk, error) {
	ts, err := s.query(ctx, "WHERE t.username = $1", username)
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, sb.Errorf(sb.ENOTFOUND, "trunk not found")
	}
	return ts[0], nil
}

// HasDigestTrunks reports whether any trunk uses digest credentials.
func (s *TrunkService) HasDigestTrunks(ctx context.Context) (bool, error) {
	var ok bool
	if err := s.db.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM trunks WHERE username IS NOT NULL)").Scan(&ok); err != nil {
		return false, fmt.Errorf("metadata: trunks: %w", err)
	}
	return ok, nil
}

// FindTrunks returns the actor's tenant's trunks.
func (s *TrunkService) FindTrunks(ctx context.Context) ([]*sb.Trunk, error) {
	a, err := staff(ctx, "listing trunks", sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	return s.query(ctx, "WHERE t.tenant_id = $1 ORDER BY t.name", a.TenantID)
}
