package recordings

import (
	"bytes"
	"context"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/testenv"
	"github.com/switchboard-voice/switchboard/metadata"
)

// testInstance is the instance the world's calls and services are on.
const testInstance = "test-instance"

// world is a recording service on a real PostgreSQL and a real S3 server
// behind a spool, a tenant whose admin may hear its recordings through
// grants, and a player.
type world struct {
	db      *metadata.DB
	s3      *testenv.S3
	backend *S3Store
	spool   *SpoolStore
	spoolAt string
	ring    *Keyring
	records *metadata.RecordingStore
	svc     *Service
	player  *Player
	tenant  *sb.Tenant
	admin   context.Context // the tenant admin's
	start   time.Time       // when the world's calls and recordings begin
	now     time.Time       // the services' clock, at start until a test moves it
}

func mustWorld(t *testing.T) *world {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	db, err := metadata.Open(ctx, testenv.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	w := &world{db: db, ring: mustKeyring(t), records: metadata.NewRecordingStore(db), spoolAt: t.TempDir(),
		start: time.Now().UTC().Truncate(time.Millisecond)}
	w.now = w.start
	w.s3, w.backend = mustS3Backend(t)
	if w.spool, err = NewSpoolStore(w.spoolAt, w.backend); err != nil {
		t.Fatal(err)
	}
	w.svc = w.service(w.spool)
	w.tenant = &sb.Tenant{Name: "Acme"}
	tenants := metadata.NewTenantService(db)
	if err := tenants.CreateTenant(ctx, w.tenant); err != nil {
		t.Fatal(err)
	}
	if err := tenants.SetRecordingPolicy(ctx, w.tenant.ID, sb.RecordWithConsent); err != nil {
		t.Fatal(err)
	}
	if err := tenants.SetSupportPolicy(ctx, w.tenant.ID, sb.SupportPolicy{Access: true, MaxTTLSeconds: 3600}); err != nil {
		t.Fatal(err)
	}
	u := &sb.User{TenantID: w.tenant.ID, Email: "admin@acme.test", Role: sb.RoleAdmin}
	if err := metadata.NewUserService(db).CreateUser(ctx, u, "long enough password"); err != nil {
		t.Fatal(err)
	}
	w.admin = sb.NewContextWithActor(ctx, &sb.Actor{TenantID: w.tenant.ID, UserID: u.ID, Role: sb.RoleAdmin, IP: "127.0.0.1"})
	w.player = NewPlayer(metadata.NewGrantStore(db), w.spool, w.ring, WithLayouts(w.records, nil))
	return w
}

// service is a recording service on store with the world's records,
// keyring and clock.
func (w *world) service(store Store, opts ...ServiceOption) *Service {
	return NewService(store, w.ring, w.records, append([]ServiceOption{WithServiceClock(func() time.Time { return w.now }), WithInstance(testInstance)}, opts...)...)
}

// begin starts recording a new call of the tenant, in codec on both sides.
func (w *world) begin(t *testing.T, codec sb.Codec) (*sb.Call, *active) {
	t.Helper()
	return w.beginWith(t, w.svc, codec)
}

// beginWith is begin with another service.
func (w *world) beginWith(t *testing.T, svc *Service, codec sb.Codec) (*sb.Call, *active) {
	t.Helper()
	c := &sb.Call{ID: sb.NewID(), TenantID: w.tenant.ID, Direction: sb.Inbound, Status: sb.CallAnswered, CreatedAt: w.start}
	if err := metadata.NewCallStore(w.db).ForInstance(testInstance).CreateCall(w.admin, c); err != nil {
		t.Fatal(err)
	}
	rec, err := svc.Begin(w.admin, c, &sb.Consent{Given: true, Mechanism: sb.ConsentAPI, At: w.start}, codec, codec)
	if err != nil || rec == nil {
		t.Fatalf("begin: %v", err)
	}
	return c, rec.(*active)
}

// talk taps frames 20 ms frames on both channels from the recording's
// start on, each frame's bytes naming its number and side (frameByte),
// waiting for the recorder to take its queue so that none is dropped.
func talk(rec *active, from, frames int, size int) {
	for i := from; i < from+frames; i++ {
		at := rec.rec.StartedAt.Add(time.Duration(i) * 20 * time.Millisecond)
		rec.Tap(true, bytes.Repeat([]byte{frameByte(i, ChannelCaller)}, size), at)
		rec.Tap(false, bytes.Repeat([]byte{frameByte(i, ChannelOperator)}, size), at)
		if i%50 == 49 { // 100 records: the recorder is woken at once
			drained(rec.r)
		}
	}
	drained(rec.r)
}

// drained waits until the recorder has taken what the taps queued.
func drained(r *Recorder) {
	for {
		r.mu.Lock()
		n := len(r.queue.recs)
		r.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// grant is the admin's grant to hear the call's recording.
func (w *world) grant(t *testing.T, callID sb.ID) *sb.AccessGrant {
	t.Helper()
	g, err := metadata.NewGrantStore(w.db).RequestGrant(w.admin, sb.GrantRequest{CallID: callID, Reason: "test", Ticket: "T-1"})
	if err != nil || g.Status != sb.GrantApproved {
		t.Fatalf("grant: %+v, %v", g, err)
	}
	return g
}

// crash stops the recorder as a dying process does: what was sealed is in
// the spool's or the folder's file, nothing is finished, no upload is
// aborted.
func crash(rec *active) {
	rec.r.stop()
	switch u := rec.r.up.(type) {
	case *spoolUpload:
		u.bw.Flush()
		u.f.Close()
	case *dirUpload:
		u.f.Close()
	}
}

// end ends the call at the world's clock.
func (w *world) end(t *testing.T, c *sb.Call) {
	t.Helper()
	at := w.now
	c.Status, c.EndedAt = sb.CallCompleted, &at
	if err := metadata.NewCallStore(w.db).UpdateCall(w.admin, c); err != nil {
		t.Fatal(err)
	}
}

// row is the recording's record as stored.
func (w *world) row(t *testing.T, id sb.ID) *sb.Recording {
	t.Helper()
	r, err := w.records.FindRecordingByID(w.admin, w.tenant.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
