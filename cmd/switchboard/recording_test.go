package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/testenv"
	"github.com/switchboard-voice/switchboard/media"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/opclient"
	"github.com/switchboard-voice/switchboard/recordings"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// TestConsentedCallIsRecordedEncrypted runs calls through the whole service
// with recordings going to a real S3 server: the one with consent is
// stored encrypted and decrypts, channel by channel, to the pattern each
// side sent; the others leave nothing.
// recordingFixture is a service recording to a real S3 server, a tenant
// whose policy records calls with consent, and an available operator.
type recordingFixture struct {
	m     *Main
	f     *tenantFixture
	op    *opclient.Client
	s3    *testenv.S3
	store *recordings.S3Store
	ring  *recordings.Keyring
}

func mustRecordingFixture(t *testing.T) *recordingFixture {
	t.Helper()
	return mustRecordingFixtureWith(t, nil)
}

// mustRecordingFixtureWith is mustRecordingFixture with settings of its
// own (a ring long enough to act while a transfer rings).
func mustRecordingFixtureWith(t *testing.T, settings map[string]string) *recordingFixture {
	t.Helper()
	s3 := testenv.NewS3(t)
	keyring := "1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{42}, 32))
	values := map[string]string{
		"recordings": "s3", "keyring": keyring, "s3-endpoint": s3.Endpoint, "s3-bucket": s3.Bucket,
		"s3-access-key": s3.AccessKey, "s3-secret-key": s3.SecretKey, "s3-path-style": "true",
	}
	for k, v := range settings {
		values[k] = v
	}
	m := mustStartService(t, values)
	f := mustProvision(t, m, "Acme", "2000", 1)
	if err := metadata.NewTenantService(m.DB).SetRecordingPolicy(context.Background(), f.Tenant.ID, sb.RecordWithConsent); err != nil {
		t.Fatal(err)
	}
	store, err := recordings.NewS3Store(context.Background(), recordings.S3Config{Endpoint: s3.Endpoint, Bucket: s3.Bucket, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	ring, err := recordings.ParseKeyring(keyring)
	if err != nil {
		t.Fatal(err)
	}
	return &recordingFixture{m: m, f: f, op: mustOperator(t, m, f.Operators[0]), s3: s3, store: store, ring: ring}
}

// call places an answered call with the given X-Recording-Consent (none
// if empty). Both sides send 25 pattern frames, then after each of during
// (given the call ID) 25 more; then the caller hangs up.
func (x *recordingFixture) call(t *testing.T, consent string, during ...func(sb.ID)) sb.ID {
	t.Helper()
	hooks := make([]func(*siptest.Call, sb.ID), len(during))
	for i, d := range during {
		hooks[i] = func(_ *siptest.Call, id sb.ID) { d(id) }
	}
	return x.place(t, consent, hooks...)
}

// callWith is a call without consent whose hook acts as the caller.
func (x *recordingFixture) callWith(t *testing.T, hook func(*siptest.Call)) sb.ID {
	t.Helper()
	return x.place(t, "", func(c *siptest.Call, _ sb.ID) { hook(c) })
}

func (x *recordingFixture) place(t *testing.T, consent string, hooks ...func(*siptest.Call, sb.ID)) sb.ID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := siptest.Options{Transport: "udp"}
	if consent != "" {
		opts.Headers = map[string]string{"X-Recording-Consent": consent}
	}
	phone := mustPhone(t, opts)
	call, in := answeredCall(t, x.m, phone, x.op, "3000", "2000")
	talk := func() {
		done := make(chan struct{})
		go func() {
			defer close(done)
			sendPattern(t, 25, x.op.SendAudio)
		}()
		sendPattern(t, 25, func(p []byte) error { return call.SendRTP(p, false) })
		<-done
	}
	talk()
	for _, hook := range hooks {
		hook(call, in.CallID)
		talk()
	}
	time.Sleep(100 * time.Millisecond) // the last frames cross the bridge
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitCallEnded(t, x.m, x.f.APIKey, in.CallID)
	return in.CallID
}

// postConsent states consent through the API client; body is sent as
// it is, so that a bad one can be.
func (x *recordingFixture) postConsent(t *testing.T, key string, id sb.ID, body string) int {
	t.Helper()
	res, err := apiClient(t, x.m, key).SetCallConsentWithBodyWithResponse(apiCtx(t), id, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode()
}

// callRecording reads a call's recording through the API client: the
// record (empty unless 200) and the status.
func callRecording(tb testing.TB, m *Main, key string, id sb.ID) (*sb.Recording, int) {
	tb.Helper()
	res, err := apiClient(tb, m, key).GetCallRecordingWithResponse(apiCtx(tb), id)
	if err != nil {
		tb.Fatal(err)
	}
	if res.JSON200 == nil {
		return &sb.Recording{}, res.StatusCode()
	}
	return res.JSON200, res.StatusCode()
}

// frames decrypts the call's recording and counts intact pattern frames
// per channel; any other audio in it is an error.
func (x *recordingFixture) frames(t *testing.T, callID sb.ID, rec *sb.Recording) map[uint8]int {
	t.Helper()
	frames := map[uint8]int{}
	x.records(t, callID, rec, func(rc recordings.Record) {
		if rc.Kind != recordings.KindAudio {
			return
		}
		if _, _, ok := media.CheckPatternFrame(rc.Payload); !ok {
			t.Errorf("channel %d holds a frame that is not the pattern sent", rc.Channel)
		}
		frames[rc.Channel]++
	})
	return frames
}

// records decrypts the call's recording with the keyring and hands each
// of its records to fn, in order; the stored object must hold no pattern
// bytes in the clear.
func (x *recordingFixture) records(t *testing.T, callID sb.ID, rec *sb.Recording, fn func(recordings.Record)) {
	t.Helper()
	ctx := context.Background()
	full, err := metadata.NewRecordingStore(x.m.DB).FindRecordingByID(ctx, x.f.Tenant.ID, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	dataKey, err := x.ring.Unwrap(full.KeyVersion, full.WrappedKey, rec.ID[:])
	if err != nil {
		t.Fatal(err)
	}
	obj, err := x.store.Open(ctx, recordings.ObjectKey(x.f.Tenant.ID, rec.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if bytes.Contains(must(t, obj), media.PatternFrame(make([]byte, 160), 3, time.Unix(0, 0))[16:]) {
		t.Error("pattern bytes appear in the stored object")
	}
	r, err := recordings.NewReader(obj, obj.Size(), dataKey, recordings.Meta{TenantID: x.f.Tenant.ID, CallID: callID, RecordingID: rec.ID})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Records(func(rc recordings.Record) error {
		fn(rc)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestConsentedCallIsRecordedEncrypted runs calls through the whole service
// with recordings going to a real S3 server: the one with consent is
// stored encrypted and decrypts, channel by channel, to the pattern each
// side sent; the others leave nothing.
func TestConsentedCallIsRecordedEncrypted(t *testing.T) {
	x := mustRecordingFixture(t)
	m, f := x.m, x.f
	consented := x.call(t, "yes")
	rec, code := callRecording(t, m, f.APIKey, consented)
	if code != http.StatusOK {
		t.Fatalf("GET recording: %d", code)
	}
	if rec.Status != sb.RecordingComplete || rec.Consent.Mechanism != sb.ConsentSIPHeader || !rec.Consent.Given ||
		rec.Consent.Policy != sb.RecordWithConsent || rec.Codec != "PCMU" || rec.SizeBytes == 0 ||
		rec.RetentionUntil == nil || rec.RetentionUntil.Sub(rec.StartedAt) != 30*24*time.Hour || rec.Format != recordings.FormatVersion || rec.DurationMS < 400 {
		t.Fatalf("recording record %+v", rec)
	}
	if events := callEvents(t, m, f.APIKey, consented); !hasInOrder(events, sb.EventConsent, sb.EventAnswered, sb.EventRecordingStarted, sb.EventRecordingStored, sb.EventEnded) {
		t.Errorf("events %v lack the recording's timeline", events)
	}

	// The object decrypts, with the keyring, to what each side sent.
	frames := x.frames(t, consented, rec)
	if frames[recordings.ChannelCaller] < 22 || frames[recordings.ChannelOperator] < 22 {
		t.Errorf("recorded %d caller and %d operator frames, want about 25 each", frames[recordings.ChannelCaller], frames[recordings.ChannelOperator])
	}

	// No consent, or consent refused: no recording, no object.
	for _, consent := range []string{"", "no"} {
		id := x.call(t, consent)
		if _, code := callRecording(t, m, f.APIKey, id); code != http.StatusNotFound {
			t.Errorf("consent %q: GET recording %d, want 404", consent, code)
		}
	}
	if n := countObjects(t, filepath.Join(x.s3.Root, x.s3.Bucket, "tenants")); n != 1 {
		t.Errorf("%d objects in the bucket, want only the consented call's", n)
	}
	if n := countObjects(t, x.m.Config.RecordingSpool); n != 0 {
		t.Errorf("%d files left in the recording spool, want none", n)
	}
}

// countObjects counts the files under dir: versitygw keeps each object as
// a file at its key. A folder not made yet holds none.
func countObjects(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func must(t *testing.T, obj recordings.Object) []byte {
	t.Helper()
	b := make([]byte, obj.Size())
	if _, err := obj.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConsentDuringTheCall: consent given through the API mid-call starts
// the recording then; consent withdrawn mid-call destroys what was
// recorded, key and all.
func TestConsentDuringTheCall(t *testing.T) {
	x := mustRecordingFixture(t)
	other := mustProvision(t, x.m, "Other", "2001", 0)

	var given sb.ID
	late := x.call(t, "", func(id sb.ID) {
		given = id
		if code := x.postConsent(t, x.f.APIKey, id, `{"given":"yes"}`); code != http.StatusBadRequest {
			t.Errorf("malformed consent: %d, want 400", code)
		}
		if code := x.postConsent(t, other.APIKey, id, `{"given":true}`); code != http.StatusNotFound {
			t.Errorf("another tenant's consent: %d, want 404", code)
		}
		if code := x.postConsent(t, x.f.APIKey, id, `{"given":true}`); code != http.StatusAccepted {
			t.Fatalf("consent: %d, want 202", code)
		}
		time.Sleep(100 * time.Millisecond) // the recording starts on the call's goroutine
	})
	rec, code := callRecording(t, x.m, x.f.APIKey, late)
	if code != http.StatusOK {
		t.Fatalf("GET recording: %d", code)
	}
	if rec.Status != sb.RecordingComplete || rec.Consent.Mechanism != sb.ConsentAPI {
		t.Fatalf("recording %+v", rec)
	}
	// Only what was said after consent is in it.
	frames := x.frames(t, given, rec)
	if n := frames[recordings.ChannelCaller]; n < 20 || n > 27 {
		t.Errorf("recorded %d caller frames, want the ~25 after consent only", n)
	}
	if code := x.postConsent(t, x.f.APIKey, late, `{"given":false}`); code != http.StatusNotFound {
		t.Errorf("consent for an ended call: %d, want 404", code)
	}

	withdrawn := x.call(t, "yes", func(id sb.ID) {
		if code := x.postConsent(t, x.f.APIKey, id, `{"given":false}`); code != http.StatusAccepted {
			t.Fatalf("withdraw: %d, want 202", code)
		}
		time.Sleep(200 * time.Millisecond)
	})
	if rec, code = callRecording(t, x.m, x.f.APIKey, withdrawn); code != http.StatusOK || rec.Status != sb.RecordingDestroyed {
		t.Fatalf("withdrawn recording: %d %+v, want destroyed", code, rec)
	}
	full, err := metadata.NewRecordingStore(x.m.DB).FindRecordingByID(context.Background(), x.f.Tenant.ID, rec.ID)
	if err != nil || full.WrappedKey != nil {
		t.Errorf("withdrawn recording keeps its key: %x, %v", full.WrappedKey, err)
	}
	if _, err := x.store.Open(context.Background(), recordings.ObjectKey(x.f.Tenant.ID, rec.ID)); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("withdrawn recording's object: %v, want gone", err)
	}
	if events := callEvents(t, x.m, x.f.APIKey, withdrawn); !hasInOrder(events, sb.EventRecordingStarted, sb.EventConsent, sb.EventRecordingDestroyed, sb.EventEnded) {
		t.Errorf("events %v lack the withdrawal", events)
	}
	// A withdrawal is done first and audited after, so its entry and the
	// destruction's, written as the call takes it, come in either order.
	if got := auditActions(t, x.m, x.f.Tenant.ID); !containsInOrder(got, "consent.give", "consent.withdraw") ||
		!containsInOrder(got, "consent.give", "recording.destroy consent withdrawn") {
		t.Errorf("audit %v lacks the withdrawal and the destruction", got)
	}
	if n := countObjects(t, filepath.Join(x.s3.Root, x.s3.Bucket, "tenants")); n != 1 {
		t.Errorf("%d objects in the bucket, want only the late-consent call's", n)
	}
	if n := countObjects(t, x.m.Config.RecordingSpool); n != 0 {
		t.Errorf("%d files left in the recording spool after withdrawal, want none", n)
	}
}

// TestKeyRotation: after a new keyring version is added, `switchboard keys
// rotate` re-wraps every recording's data key with it; recordings still
// decrypt, now with the new version, and their audio was not rewritten.
func TestKeyRotation(t *testing.T) {
	x := mustRecordingFixture(t)
	id := x.call(t, "yes")
	rec, code := callRecording(t, x.m, x.f.APIKey, id)
	if code != http.StatusOK {
		t.Fatalf("GET recording: %d", code)
	}
	ctx := context.Background()
	before, err := x.store.Open(ctx, recordings.ObjectKey(x.f.Tenant.ID, rec.ID))
	if err != nil {
		t.Fatal(err)
	}
	objBefore := must(t, before)
	before.Close()

	keyring := "1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{42}, 32)) + ",2:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{43}, 32))
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"keys", "rotate", "-database-url", x.m.Config.DatabaseURL, "-keyring", keyring}, nil, &stdout, &stderr); err != nil {
		t.Fatalf("keys rotate: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "1 data keys re-wrapped and 0 secrets re-sealed with key version 2") {
		t.Errorf("keys rotate said %q", stdout.String())
	}
	full, err := metadata.NewRecordingStore(x.m.DB).FindRecordingByID(ctx, x.f.Tenant.ID, rec.ID)
	if err != nil || full.KeyVersion != 2 {
		t.Fatalf("after rotation: version %d, %v", full.KeyVersion, err)
	}
	if x.ring, err = recordings.ParseKeyring(keyring); err != nil {
		t.Fatal(err)
	}
	if frames := x.frames(t, id, rec); frames[recordings.ChannelCaller] < 22 {
		t.Errorf("after rotation the recording holds %d caller frames", frames[recordings.ChannelCaller])
	}
	after, err := x.store.Open(ctx, recordings.ObjectKey(x.f.Tenant.ID, rec.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if !bytes.Equal(must(t, after), objBefore) {
		t.Error("rotation rewrote the audio object")
	}
	// Rotating again finds nothing to do.
	stdout.Reset()
	if err := run(ctx, []string{"keys", "rotate", "-database-url", x.m.Config.DatabaseURL, "-keyring", keyring}, nil, &stdout, &stderr); err != nil || !strings.Contains(stdout.String(), "0 data keys") {
		t.Errorf("second rotation: %v, %q", err, stdout.String())
	}
	entries, err := metadata.NewAuditLog(x.m.DB).Recent(ctx, nil, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var rotations []string
	for _, e := range entries {
		if e.Action == "keys.rotate" {
			rotations = append(rotations, e.ResourceID+": "+e.Detail)
		}
	}
	if len(rotations) != 2 || rotations[1] != "2: 1 data keys re-wrapped, 0 secrets re-sealed, 0 failed" || rotations[0] != "2: 0 data keys re-wrapped, 0 secrets re-sealed, 0 failed" {
		t.Errorf("rotations audited as %q", rotations)
	}
}

// TestRetentionDestroysAndShreds: once the tenant's retention has passed,
// the sweep deletes the object, erases the wrapped key, and says so on the
// call's timeline; a recording still within retention stays.
func TestRetentionDestroysAndShreds(t *testing.T) {
	x := mustRecordingFixture(t)
	ctx := context.Background()
	records := metadata.NewRecordingStore(x.m.DB)
	if err := records.SetRecordingRetention(ctx, x.f.Tenant.ID, 1); err != nil {
		t.Fatal(err)
	}
	id := x.call(t, "yes")
	rec, code := callRecording(t, x.m, x.f.APIKey, id)
	if code != http.StatusOK {
		t.Fatalf("GET recording: %d", code)
	}

	sweep := func(at time.Time) int {
		t.Helper()
		svc := recordings.NewService(x.store, x.ring, records, recordings.WithEvents(metadata.NewCallStore(x.m.DB)),
			recordings.WithServiceClock(func() time.Time { return at }), recordings.WithAudit(metadata.NewAuditLog(x.m.DB)))
		n, err := svc.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := sweep(time.Now().Add(12 * time.Hour)); n != 0 {
		t.Fatalf("swept %d recordings within retention", n)
	}
	if n := sweep(time.Now().Add(25 * time.Hour)); n != 1 {
		t.Fatalf("swept %d recordings past retention, want 1", n)
	}
	full, err := records.FindRecordingByID(ctx, x.f.Tenant.ID, rec.ID)
	if err != nil || full.Status != sb.RecordingDestroyed || full.WrappedKey != nil {
		t.Fatalf("after retention: %+v, %v", full, err)
	}
	if _, err := x.store.Open(ctx, recordings.ObjectKey(x.f.Tenant.ID, rec.ID)); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("object after retention: %v, want gone", err)
	}
	if events := callEvents(t, x.m, x.f.APIKey, id); !hasInOrder(events, sb.EventRecordingStored, sb.EventEnded, sb.EventRecordingDestroyed) {
		t.Errorf("events %v lack the retention destruction", events)
	}
	if got := auditActions(t, x.m, x.f.Tenant.ID); !containsInOrder(got, "recording.destroy retention period ended") {
		t.Errorf("audit %v lacks the retention destruction", got)
	}
	if n := sweep(time.Now().Add(48 * time.Hour)); n != 0 {
		t.Errorf("a destroyed recording was swept again (%d)", n)
	}
}

// TestPausedRecordingKeepsNothingInTheGap: while a recording is paused
// nothing of the call is kept, and the gap is marked.
func TestPausedRecordingKeepsNothingInTheGap(t *testing.T) {
	x := mustRecordingFixture(t)
	id := x.call(t, "yes",
		func(id sb.ID) { x.recordingControl(t, id, "pause") },  // 25 frames each way, not kept
		func(id sb.ID) { x.recordingControl(t, id, "resume") }, // 25 more, kept
	)
	rec, code := callRecording(t, x.m, x.f.APIKey, id)
	if code != http.StatusOK || rec.Status != sb.RecordingComplete {
		t.Fatalf("GET recording: %d %+v", code, rec)
	}
	frames := x.frames(t, id, rec)
	if n := frames[recordings.ChannelCaller]; n < 45 || n > 55 {
		t.Errorf("recorded %d caller frames, want about 50 (25 before the pause, 25 after)", n)
	}
	if events := callEvents(t, x.m, x.f.APIKey, id); !hasInOrder(events, sb.EventRecordingStarted, sb.EventRecordingPaused, sb.EventRecordingResumed, sb.EventRecordingStored) {
		t.Errorf("events %v lack the pause", events)
	}
	// The gap is marked in the recording itself.
	if marks := x.marks(t, id, rec); len(marks) != 2 || marks[0] != recordings.KindPause || marks[1] != recordings.KindResume {
		t.Errorf("marks in the recording: %v, want pause then resume", marks)
	}
}

// marks lists the marks in the call's recording (pauses and resumes), in
// order.
func (x *recordingFixture) marks(t *testing.T, id sb.ID, rec *sb.Recording) []recordings.Kind {
	t.Helper()
	var marks []recordings.Kind
	x.records(t, id, rec, func(rc recordings.Record) {
		if rc.Kind != recordings.KindAudio {
			marks = append(marks, rc.Kind)
		}
	})
	return marks
}

// TestOperatorConfirmsConsent: the operator confirms consent after the
// announcement; the rest of the call is recorded, and the consent record
// says who and how.
func TestOperatorConfirmsConsent(t *testing.T) {
	x := mustRecordingFixture(t)
	id := x.call(t, "", func(id sb.ID) {
		if err := x.op.Consent(context.Background(), id, true); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	})
	rec, code := callRecording(t, x.m, x.f.APIKey, id)
	if code != http.StatusOK {
		t.Fatalf("GET recording: %d", code)
	}
	if rec.Consent.Mechanism != sb.ConsentOperator || rec.Consent.By != "operator "+x.f.Operators[0].ID.String() || rec.Status != sb.RecordingComplete {
		t.Errorf("recording %+v, want consent by the operator", rec)
	}
	if n := x.frames(t, id, rec)[recordings.ChannelOperator]; n < 20 || n > 27 {
		t.Errorf("recorded %d operator frames, want the ~25 after consent", n)
	}
	if got := auditActions(t, x.m, x.f.Tenant.ID); !containsInOrder(got, "consent.give") {
		t.Errorf("audit %v lacks the operator's consent", got)
	}
}

// TestCallerConsentsByKeyPress: with the tenant's consent key set (through
// `switchboard tenant set`), the caller pressing it starts the recording.
func TestCallerConsentsByKeyPress(t *testing.T) {
	x := mustRecordingFixture(t)
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"tenant", "set", "-database-url", x.m.Config.DatabaseURL, "-tenant", x.f.Tenant.ID.String(),
		"-recording-consent-key", "1", "-recording-retention-days", "7"}, nil, &out, &errOut); err != nil {
		t.Fatalf("tenant set: %v\n%s", err, errOut.String())
	}
	id := x.callWith(t, func(call *siptest.Call) {
		if err := call.SendDTMF('1'); err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond)
	})
	rec, code := callRecording(t, x.m, x.f.APIKey, id)
	if code != http.StatusOK {
		t.Fatalf("GET recording: %d", code)
	}
	if rec.Consent.Mechanism != sb.ConsentDTMF || rec.Consent.By != "caller" || rec.RetentionUntil.Sub(rec.StartedAt) != 7*24*time.Hour {
		t.Errorf("recording %+v, want consent by the caller's key and 7 days' retention", rec)
	}
	if n := x.frames(t, id, rec)[recordings.ChannelCaller]; n < 20 || n > 27 {
		t.Errorf("recorded %d caller frames, want the ~25 after the key press", n)
	}
}

// auditActions lists a tenant's audit entries oldest first, as action and
// reason.
func auditActions(t *testing.T, m *Main, tenantID sb.ID) []string {
	t.Helper()
	entries, err := metadata.NewAuditLog(m.DB).Recent(context.Background(), &tenantID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(entries) - 1; i >= 0; i-- {
		out = append(out, strings.TrimSpace(entries[i].Action+" "+entries[i].Reason))
	}
	return out
}

func containsInOrder(got []string, want ...string) bool {
	for _, g := range got {
		if len(want) > 0 && g == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}

// The S3 store stops during a consented call and stays down for the next
// one: both calls go on and end normally, their recordings wait in the
// spool (ciphertext) while /readyz names the store (and stays 200: calls
// go on); once it is back, both
// arrive, once each, and decrypt to what each side said, before and after
// the outage began.
func TestStorageDownDuringCalls(t *testing.T) {
	x := mustRecordingFixture(t)
	bucket := filepath.Join(x.s3.Root, x.s3.Bucket, "tenants")
	first := x.call(t, "yes", func(sb.ID) { x.s3.Stop() })
	second := x.call(t, "yes", func(sb.ID) {}) // as long as the first

	if n := countObjects(t, bucket); n != 0 {
		t.Fatalf("%d objects reached the stopped store", n)
	}
	if n := countObjects(t, x.m.Config.RecordingSpool); n != 2 {
		t.Errorf("%d files in the spool during the outage, want the 2 recordings", n)
	}
	waitStoreReported(t, x.m, "unavailable")

	x.s3.Start()
	deadline := time.Now().Add(20 * time.Second)
	for countObjects(t, bucket) < 2 || countObjects(t, x.m.Config.RecordingSpool) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after the store came back: %d objects, %d spool files", countObjects(t, bucket), countObjects(t, x.m.Config.RecordingSpool))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, id := range []sb.ID{first, second} {
		rec, code := callRecording(t, x.m, x.f.APIKey, id)
		if code != http.StatusOK {
			t.Fatalf("call %s: GET recording %d", id, code)
		}
		if rec.Status != sb.RecordingComplete {
			t.Errorf("call %s: recording %q, want complete", id, rec.Status)
		}
		// 25 frames a side went before the outage began: more than 40
		// means what was said during it is there too.
		frames := x.frames(t, id, rec)
		if frames[recordings.ChannelCaller] < 40 || frames[recordings.ChannelOperator] < 40 {
			t.Errorf("call %s: recorded %d caller and %d operator frames, want about 50 each", id, frames[recordings.ChannelCaller], frames[recordings.ChannelOperator])
		}
	}
	if n := countObjects(t, bucket); n != 2 {
		t.Errorf("%d objects in the bucket, want 2: one per recording", n)
	}
	if n := countCalls(t, x.m, x.f.Tenant.ID); n != 2 {
		t.Errorf("%d call records, want 2", n)
	}
}
