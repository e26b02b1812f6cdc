package metadata

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"golang.org/x/crypto/argon2"
	"net/netip"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

func TestTenants(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	now := time.Date(2026, 3, 4, 5, 6, 7, 890123000, time.UTC)
	db.Now = func() time.Time { return now }
	tenants := NewTenantService(db)

	tenant := &sb.Tenant{Name: "Acme"}
	if err := tenants.CreateTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	if tenant.ID == (sb.ID{}) || !tenant.CreatedAt.Equal(now) {
		t.Fatalf("CreateTenant set id %s, created_at %s; want a new id and %s", tenant.ID, tenant.CreatedAt, now)
	}
	got, err := tenants.FindTenantByID(ctx, tenant.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != tenant.ID || got.Name != "Acme" || !got.CreatedAt.Equal(now) || got.RecordingPolicy != tenant.RecordingPolicy {
		t.Errorf("FindTenantByID = %+v, want %+v", got, tenant)
	}
	if _, err := tenants.FindTenantByID(ctx, sb.NewID()); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("unknown tenant: %v, want not found", err)
	}
	if err := tenants.CreateTenant(ctx, &sb.Tenant{Name: "  "}); sb.ErrorCode(err) != sb.EINVALID {
		t.Errorf("blank name: %v, want invalid", err)
	}
	if err := tenants.CreateTenant(ctx, &sb.Tenant{ID: tenant.ID, Name: "Again"}); sb.ErrorCode(err) != sb.ECONFLICT {
		t.Errorf("same id twice: %v, want conflict", err)
	}
}

func TestUserValidationAndScope(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	tenant := mustTenant(t, db, "Acme")
	users := NewUserService(db)
	for _, tc := range []struct {
		name, email, password string
		role                  sb.Role
	}{
		{"no at", "acme.test", "long enough", sb.RoleAdmin},
		{"empty", "  ", "long enough", sb.RoleAdmin},
		{"nothing before at", "@acme.test", "long enough", sb.RoleAdmin},
		{"seven characters", "a@acme.test", "1234567", sb.RoleAdmin},
		{"unknown role", "b@acme.test", "long enough", "owner"},
	} {
		err := users.CreateUser(ctx, &sb.User{TenantID: tenant.ID, Email: tc.email, Role: tc.role}, tc.password)
		if sb.ErrorCode(err) != sb.EINVALID {
			t.Errorf("%s: %v, want invalid", tc.name, err)
		}
	}

	u := &sb.User{TenantID: tenant.ID, Email: "admin@acme.test", Name: "Ada", Role: sb.RoleAdmin}
	if err := users.CreateUser(ctx, u, "12345678"); err != nil {
		t.Fatalf("eight characters: %v", err)
	}
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=7168,t=5,p=1$") || strings.Contains(u.PasswordHash, "12345678") {
		t.Errorf("password hash %q is not argon2id with OWASP's parameters", u.PasswordHash)
	}
	if !checkPassword(u.PasswordHash, "12345678") || checkPassword(u.PasswordHash, "12345679") || checkPassword("garbage", "12345678") {
		t.Error("checkPassword does not tell right from wrong")
	}

	if _, err := users.FindUserByID(ctx, u.ID); sb.ErrorCode(err) != sb.EUNAUTHORIZED {
		t.Errorf("no actor: %v, want unauthorized", err)
	}
	asAcme := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: tenant.ID, Role: sb.RoleSupervisor})
	got, err := users.FindUserByID(asAcme, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != u.ID || got.TenantID != tenant.ID || got.Email != u.Email || got.Name != "Ada" || got.Role != sb.RoleAdmin ||
		got.PasswordHash != u.PasswordHash || !got.CreatedAt.Equal(u.CreatedAt) {
		t.Errorf("FindUserByID = %+v, want %+v", got, u)
	}
	if _, err := users.FindUserByID(asAcme, sb.NewID()); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("unknown user: %v, want not found", err)
	}
}

func TestAPIKeys(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	tenant := mustTenant(t, db, "Acme")
	keys := NewAPIKeyService(db)
	k, secret, err := keys.CreateAPIKey(ctx, tenant.ID, sb.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(secret))
	if !strings.HasPrefix(secret, "sbk_") || len(secret) != len("sbk_")+43 || k.Prefix != secret[:12] || string(k.Hash) != string(sum[:]) {
		t.Errorf("secret %q, prefix %q: want sbk_ and 43 base64url characters, the first 12 as prefix, and its SHA-256 stored", secret, k.Prefix)
	}
	var stored []byte
	if err := db.pool.QueryRow(ctx, "SELECT hash FROM api_keys WHERE id = $1", k.ID).Scan(&stored); err != nil || string(stored) != string(sum[:]) {
		t.Errorf("stored hash %x (%v), want the secret's SHA-256", stored, err)
	}
	got, err := keys.AuthenticateAPIKey(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != k.ID || got.TenantID != tenant.ID || got.Role != sb.RoleAdmin || got.Prefix != k.Prefix || !got.CreatedAt.Equal(k.CreatedAt) {
		t.Errorf("AuthenticateAPIKey = %+v, want %+v", got, k)
	}
	other := "A" // the last character changed, to one it is not
	if strings.HasSuffix(secret, other) {
		other = "B"
	}
	for _, bad := range []string{"", "sbk_", k.Prefix, "xyz_" + secret[4:], secret[:len(secret)-1] + other, secret + strings.Repeat("a", 200)} {
		if _, err := keys.AuthenticateAPIKey(ctx, bad); sb.ErrorCode(err) != sb.EUNAUTHORIZED {
			t.Errorf("AuthenticateAPIKey(%q): %v, want unauthorized", bad, err)
		}
	}
	if _, _, err := keys.CreateAPIKey(ctx, sb.NewID(), sb.RoleAdmin); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("key for unknown tenant: %v, want not found", err)
	}
	if _, _, err := keys.CreateAPIKey(ctx, tenant.ID, "root"); sb.ErrorCode(err) != sb.EINVALID {
		t.Errorf("key with unknown role: %v, want invalid", err)
	}
}

func TestSessionsStoreOnlyAHash(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	tenant := mustTenant(t, db, "Acme")
	u := &sb.User{TenantID: tenant.ID, Email: "op@acme.test", Role: sb.RoleOperator}
	if err := NewUserService(db).CreateUser(ctx, u, "long enough"); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	db.Now = func() time.Time { return now }
	sessions := NewSessionService(db)
	token, s, err := sessions.CreateSession(ctx, u, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(token) != 43 || !s.ExpiresAt.Equal(now.Add(time.Hour)) || s.TenantID != tenant.ID {
		t.Errorf("token %q, session %+v: want 43 base64url characters, expiry in an hour", token, s)
	}
	var n int
	sum := sha256.Sum256([]byte(token))
	if err := db.pool.QueryRow(ctx, "SELECT count(*) FROM sessions WHERE token_hash = $1", sum[:]).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d sessions stored under the token's SHA-256 (%v), want 1", n, err)
	}
	// Just before expiry the session is live; at expiry it is not.
	now = now.Add(time.Hour - time.Microsecond)
	if got, err := sessions.FindSession(ctx, token); err != nil || got.UserID != u.ID || !got.ExpiresAt.Equal(s.ExpiresAt) {
		t.Errorf("FindSession before expiry = %+v, %v", got, err)
	}
	now = now.Add(time.Microsecond)
	if _, err := sessions.FindSession(ctx, token); sb.ErrorCode(err) != sb.EUNAUTHORIZED {
		t.Errorf("FindSession at expiry: %v, want unauthorized", err)
	}
	for _, bad := range []string{"", "nope", strings.Repeat("a", 500)} {
		if _, err := sessions.FindSession(ctx, bad); sb.ErrorCode(err) != sb.EUNAUTHORIZED {
			t.Errorf("FindSession(%q): %v, want unauthorized", bad, err)
		}
	}
	if err := sessions.DeleteSession(ctx, "never issued"); err != nil {
		t.Errorf("deleting an unknown session: %v", err)
	}
	// A session for a user that does not exist in that tenant is refused
	// by the foreign key, with a message that names the user.
	_, _, err = sessions.CreateSession(ctx, &sb.User{ID: sb.NewID(), TenantID: tenant.ID, Role: sb.RoleOperator}, time.Hour)
	if sb.ErrorCode(err) != sb.ENOTFOUND || sb.ErrorMessage(err) != "user not found" {
		t.Errorf("session for unknown user: %v, want not found: user not found", err)
	}
}

func TestTrunkCredentialsAndScope(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	a, b := mustTenant(t, db, "A"), mustTenant(t, db, "B")
	trunks := NewTrunkService(db)
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

	ip := &sb.Trunk{TenantID: a.ID, Name: "pbx", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}, Numbers: []string{"+4930100", "101"}, RecordingConsent: true}
	if err := trunks.CreateTrunk(ctx, ip, ""); err != nil {
		t.Fatal(err)
	}
	if ip.Allow[0] != loopback[0] {
		t.Errorf("allow stored as %v, want the masked prefix %v", ip.Allow, loopback)
	}
	got, err := trunks.TrunksForSource(ctx, netip.MustParseAddr("127.0.0.1"))
	if err != nil || len(got) != 1 {
		t.Fatalf("TrunksForSource(127.0.0.1) = %v, %v; want the pbx trunk", got, err)
	}
	g := got[0]
	if g.ID != ip.ID || g.TenantID != a.ID || g.Name != "pbx" || len(g.Allow) != 1 || g.Allow[0] != loopback[0] || !g.RecordingConsent ||
		strings.Join(g.Numbers, ",") != "+4930100,101" || g.Username != "" || g.DigestHA1 != "" || !g.CreatedAt.Equal(ip.CreatedAt) {
		t.Errorf("TrunksForSource = %+v, want %+v", g, ip)
	}
	if got, err := trunks.TrunksForSource(ctx, netip.MustParseAddr("::ffff:127.0.0.1")); err != nil || len(got) != 1 {
		t.Errorf("an IPv4-mapped source matched %d trunks (%v), want 1", len(got), err)
	}
	if got, err := trunks.TrunksForSource(ctx, netip.MustParseAddr("10.0.0.1")); err != nil || len(got) != 0 {
		t.Errorf("10.0.0.1 matched %d trunks (%v), want none", len(got), err)
	}

	for _, tc := range []struct {
		name     string
		trunk    *sb.Trunk
		password string
	}{
		{"username without password", &sb.Trunk{TenantID: a.ID, Name: "x1", Username: "u1", Numbers: []string{"301"}}, ""},
		{"password without username", &sb.Trunk{TenantID: a.ID, Name: "x2", Allow: loopback, Numbers: []string{"302"}}, "secret"},
		{"neither allowlist nor username", &sb.Trunk{TenantID: a.ID, Name: "x3", Numbers: []string{"303"}}, ""},
		{"no name", &sb.Trunk{TenantID: a.ID, Allow: loopback, Numbers: []string{"304"}}, ""},
		{"no numbers", &sb.Trunk{TenantID: a.ID, Name: "x5", Allow: loopback}, ""},
		{"letters in number", &sb.Trunk{TenantID: a.ID, Name: "x6", Allow: loopback, Numbers: []string{"30a"}}, ""},
		{"plus inside number", &sb.Trunk{TenantID: a.ID, Name: "x7", Allow: loopback, Numbers: []string{"30+6"}}, ""},
		{"empty number", &sb.Trunk{TenantID: a.ID, Name: "x8", Allow: loopback, Numbers: []string{""}}, ""},
	} {
		if err := trunks.CreateTrunk(ctx, tc.trunk, tc.password); sb.ErrorCode(err) != sb.EINVALID {
			t.Errorf("%s: %v, want invalid", tc.name, err)
		}
	}

	digest := &sb.Trunk{TenantID: b.ID, Name: "carrier", Username: "carrier-b", Numbers: []string{"200"}}
	if err := trunks.CreateTrunk(ctx, digest, "s3cret"); err != nil {
		t.Fatal(err)
	}
	// RFC 2617: HA1 = MD5(username ":" realm ":" password).
	if want := md5hex("carrier-b:switchboard:s3cret"); digest.DigestHA1 != want || DigestHA1("carrier-b", "s3cret") != want {
		t.Errorf("HA1 %q, want %q", digest.DigestHA1, want)
	}
	d, err := trunks.TrunkByUsername(ctx, "carrier-b")
	if err != nil || d.ID != digest.ID || d.TenantID != b.ID || d.DigestHA1 != digest.DigestHA1 || len(d.Allow) != 0 || !d.HasNumber("200") {
		t.Errorf("TrunkByUsername = %+v, %v", d, err)
	}
	if _, err := trunks.TrunkByUsername(ctx, "nobody"); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("unknown username: %v, want not found", err)
	}

	// Usernames and numbers are global; a failed trunk leaves nothing.
	for _, tc := range []struct {
		name  string
		trunk *sb.Trunk
		msg   string
	}{
		{"taken username", &sb.Trunk{TenantID: a.ID, Name: "dup-user", Username: "carrier-b", Numbers: []string{"401"}}, "a trunk with that username already exists"},
		{"number taken by another tenant", &sb.Trunk{TenantID: a.ID, Name: "dup-number", Username: "fresh", Numbers: []string{"402", "200"}}, "a number is already assigned to a trunk"},
		{"taken name", &sb.Trunk{TenantID: a.ID, Name: "pbx", Username: "fresh2", Numbers: []string{"403"}}, "a trunk with that name already exists"},
	} {
		err := trunks.CreateTrunk(ctx, tc.trunk, "pw")
		if sb.ErrorCode(err) != sb.ECONFLICT || sb.ErrorMessage(err) != tc.msg {
			t.Errorf("%s: %v, want conflict: %s", tc.name, err, tc.msg)
		}
	}
	var n int
	if err := db.pool.QueryRow(ctx, "SELECT count(*) FROM trunk_numbers WHERE number IN ('401', '402', '403')").Scan(&n); err != nil || n != 0 {
		t.Errorf("%d numbers of failed trunks were kept (%v)", n, err)
	}
	if err := trunks.CreateTrunk(ctx, &sb.Trunk{TenantID: sb.NewID(), Name: "orphan", Allow: loopback, Numbers: []string{"404"}}, ""); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("trunk for unknown tenant: %v, want not found", err)
	}

	if _, err := trunks.FindTrunks(ctx); sb.ErrorCode(err) != sb.EUNAUTHORIZED {
		t.Errorf("FindTrunks without actor: %v", err)
	}
	asB := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: b.ID, Role: sb.RoleAdmin})
	if list, err := trunks.FindTrunks(asB); err != nil || len(list) != 1 || list[0].ID != digest.ID {
		t.Errorf("tenant B's trunks = %v, %v; want only the carrier", list, err)
	}
}

// A password stored with older argon2id parameters (19 MiB, two passes)
// still logs in, and is stored again with today's: every later login
// costs what the others cost. A wrong password changes nothing.
func TestLoginRehashesOldParameters(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	tenant := mustTenant(t, db, "Acme")
	users := NewUserService(db)
	u := &sb.User{TenantID: tenant.ID, Email: "old@acme.test", Role: sb.RoleOperator}
	if err := users.CreateUser(ctx, u, "correct horse"); err != nil {
		t.Fatal(err)
	}
	salt := []byte("0123456789abcdef")
	old := fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, 19*1024, 2, 1,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(argon2.IDKey([]byte("correct horse"), salt, 2, 19*1024, 1, 32)))
	if _, err := db.pool.Exec(ctx, "UPDATE users SET password_hash = $1 WHERE id = $2", old, u.ID); err != nil {
		t.Fatal(err)
	}
	stored := func() string {
		var h string
		if err := db.pool.QueryRow(ctx, "SELECT password_hash FROM users WHERE id = $1", u.ID).Scan(&h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	if _, err := users.Authenticate(ctx, u.Email, "wrong horse"); sb.ErrorCode(err) != sb.EUNAUTHORIZED || stored() != old {
		t.Fatalf("a wrong password: %v; the hash must stay as it was", err)
	}
	if _, err := users.Authenticate(ctx, u.Email, "correct horse"); err != nil {
		t.Fatalf("login with the old hash: %v", err)
	}
	now := stored()
	if !strings.HasPrefix(now, hashPrefix) || now == old || !checkPassword(now, "correct horse") {
		t.Fatalf("after the login the stored hash is %q, want today's parameters (%s…) for the same password", now, hashPrefix)
	}
	if _, err := users.Authenticate(ctx, u.Email, "correct horse"); err != nil || stored() != now {
		t.Errorf("a second login: %v; the hash must not change again", err)
	}
}
