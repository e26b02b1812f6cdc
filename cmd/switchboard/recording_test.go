package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/testenv"
	"github.com/switchboard-voice/switchboard/media"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/recordings"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// TestConsentedCallIsRecordedEncrypted runs calls through the whole service
// with recordings going to a real S3 server: the one with consent is
// stored encrypted and decrypts, channel by channel, to the pattern each
// side sent; the others leave nothing.
func TestConsentedCallIsRecordedEncrypted(t *testing.T) {
	s3 := testenv.NewS3(t)
	keyring := "1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{42}, 32))
	m := mustStartService(t, map[string]string{
		"recordings": "s3", "keyring": keyring, "s3-endpoint": s3.Endpoint, "s3-bucket": s3.Bucket,
		"s3-access-key": s3.AccessKey, "s3-secret-key": s3.SecretKey, "s3-path-style": "true",
	})
	f := mustProvision(t, m, "Acme", "2000", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := metadata.NewTenantService(m.DB).SetRecordingPolicy(ctx, f.Tenant.ID, sb.RecordWithConsent); err != nil {
		t.Fatal(err)
	}
	op := mustOperator(t, m, f.Operators[0])
	store, err := recordings.NewS3Store(recordings.S3Config{Endpoint: s3.Endpoint, Bucket: s3.Bucket, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	ring, err := recordings.ParseKeyring(keyring)
	if err != nil {
		t.Fatal(err)
	}

	talk := func(consent string) sb.ID {
		t.Helper()
		opts := siptest.Options{Transport: "udp"}
		if consent != "" {
			opts.Headers = map[string]string{"X-Recording-Consent": consent}
		}
		phone := mustPhone(t, opts)
		call, in := answeredCall(t, m, phone, op, "3000", "2000")
		done := make(chan struct{})
		go func() {
			defer close(done)
			sendPattern(t, 25, op.SendAudio)
		}()
		sendPattern(t, 25, func(p []byte) error { return call.SendRTP(p, false) })
		<-done
		time.Sleep(100 * time.Millisecond) // the last frames cross the bridge
		if err := call.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		waitCallEnded(t, m, f.APIKey, in.CallID)
		return in.CallID
	}

	consented := talk("yes")
	var rec sb.Recording
	if code := apiGet(t, m, f.APIKey, "/v1/calls/"+consented.String()+"/recording", &rec); code != http.StatusOK {
		t.Fatalf("GET recording: %d", code)
	}
	if rec.Status != sb.RecordingComplete || rec.Consent.Mechanism != sb.ConsentSIPHeader || !rec.Consent.Given ||
		rec.Consent.Policy != sb.RecordWithConsent || rec.Codec != "PCMU" || rec.SizeBytes == 0 {
		t.Fatalf("recording record %+v", rec)
	}
	if events := callEvents(t, m, f.APIKey, consented); !hasInOrder(events, sb.EventConsent, sb.EventAnswered, sb.EventRecordingStarted, sb.EventRecordingStored, sb.EventEnded) {
		t.Errorf("events %v lack the recording's timeline", events)
	}

	// The object decrypts, with the keyring, to what each side sent.
	full, err := metadata.NewRecordingStore(m.DB).FindRecordingByID(ctx, f.Tenant.ID, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	dataKey, err := ring.Unwrap(full.KeyVersion, full.WrappedKey, rec.ID[:])
	if err != nil {
		t.Fatal(err)
	}
	obj, err := store.Open(ctx, recordings.ObjectKey(f.Tenant.ID, rec.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if bytes.Contains(must(t, obj), media.PatternFrame(make([]byte, 160), 3, time.Unix(0, 0))[16:]) {
		t.Error("pattern bytes appear in the stored object")
	}
	r, err := recordings.NewReader(obj, obj.Size(), dataKey, recordings.Meta{TenantID: f.Tenant.ID, CallID: consented, RecordingID: rec.ID})
	if err != nil {
		t.Fatal(err)
	}
	frames := map[uint8]int{}
	if err := r.Records(func(rc recordings.Record) error {
		if rc.Kind != recordings.KindAudio {
			return nil
		}
		if _, _, ok := media.CheckPatternFrame(rc.Payload); !ok {
			t.Errorf("channel %d holds a frame that is not the pattern sent", rc.Channel)
		}
		frames[rc.Channel]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if frames[recordings.ChannelCaller] < 22 || frames[recordings.ChannelOperator] < 22 {
		t.Errorf("recorded %d caller and %d operator frames, want about 25 each", frames[recordings.ChannelCaller], frames[recordings.ChannelOperator])
	}

	// No consent, or consent refused: no recording, no object.
	for _, consent := range []string{"", "no"} {
		id := talk(consent)
		if code := apiGet(t, m, f.APIKey, "/v1/calls/"+id.String()+"/recording", nil); code != http.StatusNotFound {
			t.Errorf("consent %q: GET recording %d, want 404", consent, code)
		}
	}
	if n := countObjects(t, filepath.Join(s3.Root, s3.Bucket, "tenants")); n != 1 {
		t.Errorf("%d objects in the bucket, want only the consented call's", n)
	}
}

// countObjects counts the files under dir: versitygw keeps each object as
// a file at its key.
func countObjects(t *testing.T, dir string) int {
	t.Helper()
	n := 0
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
